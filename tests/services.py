"""Find PostgreSQL and Redis on their default local ports when POSTGRES_URL / REDIS_URL are unset, so `make test` on
a machine that runs both needs no variables. A variable set to anything, even empty, is left as it is (empty: skip
that service's tests)."""

import os
from collections import defaultdict
from dataclasses import dataclass

DEFAULTS = {
    "POSTGRES_URL": ("PostgreSQL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    "REDIS_URL": ("Redis", "redis://127.0.0.1:6379/15"),
}
PROBE_SECONDS = 1


@dataclass(frozen=True)
class Finding:
    variable: str
    service: str
    url: str | None  # what the tests use; None when they skip
    how: str  # for the summary: where it came from, or why there is none


def _answers(url: str) -> str | None:
    """Return None when the service at `url` takes a connection and a trivial command, else why not."""
    try:
        if url.startswith("redis"):
            import redis

            redis.Redis.from_url(url, socket_connect_timeout=PROBE_SECONDS, socket_timeout=PROBE_SECONDS).ping()
        else:
            import psycopg

            with psycopg.connect(url.replace("+psycopg", ""), connect_timeout=PROBE_SECONDS) as connection:
                connection.execute("SELECT 1")
    except Exception as error:  # any failure means "not there"; the reason goes to the summary
        first_line = (str(error).strip().splitlines() or ["no answer"])[0]
        return f"{type(error).__name__}: {first_line}"
    return None


def find(variable: str) -> Finding:
    """Use `variable` as set, or the service's default address when it answers there (setting the variable)."""
    service, default = DEFAULTS[variable]
    if variable in os.environ:
        url = os.environ[variable] or None
        return Finding(variable, service, url, f"from {variable}" if url else f"{variable} is empty")
    if (why_not := _answers(default)) is not None:
        return Finding(variable, service, None, f"{variable} unset and nothing usable at {default} ({why_not})")
    os.environ[variable] = default
    return Finding(variable, service, default, f"found at {default} ({variable} was unset)")


def skipped_suites(reports) -> list[str]:
    """One line per skip reason: how many tests, in which files, and the reason."""
    files_by_reason: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for report in reports:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        files_by_reason[reason.removeprefix("Skipped: ")][report.nodeid.split("::")[0]] += 1
    return [
        f"{sum(files.values())} skipped ({', '.join(sorted(files))}): {reason}"
        for reason, files in sorted(files_by_reason.items())
    ]
