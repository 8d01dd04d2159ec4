"""The two pages SecureShare is compared with: a bare Flask page, and snappass's secret preview on its own Redis."""

import json
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from tests.benchmarks import load
from tests.benchmarks.client import Browser
from tests.benchmarks.servers import REPO, Gunicorn, Redis

BENCH_VENV = REPO / "test-artifacts" / "bench-venv"
SNAPPASS_REQUIREMENTS = Path(__file__).with_name("snappass-requirements.txt")


class BarePage:
    """Flask + Flask-SQLAlchemy: one Jinja page reading one row, under the same gunicorn settings."""

    label = "bare Flask page"

    def __init__(self, run_dir: Path):
        self.env = {"BARE_DATABASE_URL": f"sqlite:///{run_dir / 'bare.db'}"}
        self.log = run_dir / "bare.log"
        self.server: Gunicorn | None = None

    def start(self) -> None:
        self.server = Gunicorn(Path(sys.executable).parent / "gunicorn", "tests.benchmarks.bare_app:app", self.env, self.log)

    def stop(self) -> None:
        self.server.stop()

    def page(self) -> load.Load:
        return load.Load("/")


def install_snappass() -> Path:
    """Install snappass and its pinned Flask into the bench's own venv (once); return its gunicorn."""
    stamp = BENCH_VENV / ".installed"
    if not stamp.exists() or stamp.read_text() != SNAPPASS_REQUIREMENTS.read_text():
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
        pip = [str(BENCH_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, "-r", str(SNAPPASS_REQUIREMENTS)], check=True)
        stamp.write_text(SNAPPASS_REQUIREMENTS.read_text())
    return BENCH_VENV / "bin" / "gunicorn"


class Snappass:
    """snappass from PyPI under the same gunicorn settings, on a redis-server of its own."""

    label = "snappass preview"

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.gunicorn = install_snappass()
        self.redis: Redis | None = None
        self.server: Gunicorn | None = None
        self.preview_path = ""

    def start(self) -> None:
        self.redis = Redis(self.run_dir / "redis.log")
        port = str(self.redis.port)
        env = {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": port, "SECRET_KEY": secrets.token_hex(32), "NO_SSL": "True"}
        # Its own folder as the working directory, so it never imports SecureShare's modules by accident.
        self.server = Gunicorn(self.gunicorn, "snappass.main:app", env, self.run_dir / "snappass.log", cwd=self.run_dir)
        self.preview_path = self._store_a_password()

    def _store_a_password(self) -> str:
        body = urlencode({"password": "correct-horse-battery-staple", "ttl": "week"}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        status, _, text, _ = Browser(self.server.url).request("POST", "/", body, headers)
        if status != 200:
            raise SystemExit(f"bench: snappass answered {status} when storing a password")
        return urlsplit(json.loads(text)["link"]).path

    def stop(self) -> None:
        self.server.stop()
        self.redis.stop()

    def page(self) -> load.Load:
        return load.Load(self.preview_path)
