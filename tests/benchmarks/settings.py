"""The settings SecureShare is benchmarked with: the shipped costs, a database in the run's folder, limits never hit.

Read from the environment the runner sets, so gunicorn's workers (serve.py) and the runner's own in-process app
(seeding, purge, profile) agree on one database and one set of keys.
"""

import os
from pathlib import Path

from config import DevelopmentConfig

# Rate limits stay on (their cost is part of every request) but are set far above any load the bench makes.
UNREACHABLE_LIMIT = "1000000 per minute"


def bench_config(run_dir: Path, database_url: str, base_url: str, secret_key: str, encryption_keys: str) -> type:
    """Return a config class: development costs (the shipped KDF and password hashing), HSTS on, its own files."""
    limits = {
        name: UNREACHABLE_LIMIT
        for name in dir(DevelopmentConfig)
        if name.startswith("RATELIMIT_") and " per " in str(getattr(DevelopmentConfig, name))
    }
    settings = {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "LOG_FILE": run_dir / "app.log",
        "KEY_DIR": None,
        "SECRET_KEY": secret_key,
        "ENCRYPTION_KEYS": encryption_keys,
        "PUBLIC_BASE_URL": base_url,
        "TRUSTED_HOSTS": None,  # PUBLIC_BASE_URL's host and port
        "RATELIMIT_STORAGE_URI": "memory://",
        "HSTS": True,
        **limits,
    }
    return type("BenchConfig", (DevelopmentConfig,), settings)


def config_from_environment() -> type:
    """Return the bench config the runner described in BENCH_* variables."""
    return bench_config(
        Path(os.environ["BENCH_RUN_DIR"]),
        os.environ["BENCH_APP_DATABASE_URL"],
        os.environ["BENCH_BASE_URL"],
        os.environ["BENCH_SECRET_KEY"],
        os.environ["BENCH_ENCRYPTION_KEYS"],
    )
