"""`make test` finds PostgreSQL and Redis on their default ports, and says at the end which suites skipped and why."""

import os
import subprocess
import sys
from pathlib import Path

from tests import services
from tests.helpers import free_port

REPO = Path(__file__).resolve().parents[1]


def test_a_service_that_answers_is_used_and_one_that_does_not_is_explained(monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setitem(services.DEFAULTS, "REDIS_URL", ("Redis", f"redis://127.0.0.1:{free_port()}/15"))
    missing = services.find("REDIS_URL")
    assert missing.url is None and "nothing usable at redis://127.0.0.1:" in missing.how
    assert "REDIS_URL" not in os.environ


def test_a_set_variable_is_kept_even_empty(monkeypatch):
    monkeypatch.setenv("POSTGRES_URL", "")
    assert services.find("POSTGRES_URL").url is None
    monkeypatch.setenv("POSTGRES_URL", "postgresql+psycopg://elsewhere/db")
    assert services.find("POSTGRES_URL").url == "postgresql+psycopg://elsewhere/db"


def test_the_default_address_is_taken_when_it_answers(monkeypatch):
    found = os.environ.get("REDIS_URL")
    if not found:
        return  # nothing to find on this machine; the other tests cover the refusal
    monkeypatch.delenv("REDIS_URL")
    monkeypatch.setitem(services.DEFAULTS, "REDIS_URL", ("Redis", found))
    assert services.find("REDIS_URL").url == found
    assert os.environ["REDIS_URL"] == found


def test_the_run_ends_with_the_skipped_suites_and_why():
    env = {**os.environ, "POSTGRES_URL": "", "SECURESHARE_REQUIRE_SERVICES": ""}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_postgres.py", "-k", "purge"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    summary = run.stdout.split("services and skipped suites", 1)[1]
    assert "PostgreSQL: POSTGRES_URL is empty" in summary
    assert "skipped (tests/test_postgres.py): set POSTGRES_URL to run against a real PostgreSQL" in summary
