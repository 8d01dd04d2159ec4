"""gunicorn settings for SecureShare: `gunicorn -c gunicorn.conf.py 'app:create_app()'`. Each can be set from the
environment.

Loaded by gunicorn's master process before any worker, so it must not import the app: it takes only redaction.py,
the one rule that cuts share ids out of every log line (the app's own log uses it too).
"""

import logging
import os
import sys
from pathlib import Path
from urllib.parse import unquote

from dotenv import load_dotenv
from gunicorn.glogging import Logger

sys.path.insert(0, str(Path(__file__).resolve().parent))  # gunicorn reads this file before it adds the app's folder
from redaction import redact, redact_path

# The settings below may sit in .env like the app's own (config.py reads it too, but only in the workers).
load_dotenv()


def _env_count(name: str, default: int) -> int:
    """Return a positive whole number from the environment, or refuse to start saying which variable is wrong."""
    value = os.environ.get(name, str(default))
    if not value.isdigit() or int(value) < 1:
        raise SystemExit(f"gunicorn.conf.py: {name} must be a whole number of 1 or more, not {value!r}.")
    return int(value)


# The container sets 0.0.0.0:8000; on a host, nginx in front reaches the app on loopback.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Each unlock derives a key with 64 MiB of memory (at most KDF_MAX_CONCURRENT at once per worker): size workers to RAM.
workers = _env_count("WEB_CONCURRENCY", 2)
threads = _env_count("GUNICORN_THREADS", 4)
# An unlock waits at most 10 s for a derivation slot, so a worker silent for this long is stuck.
timeout = _env_count("GUNICORN_TIMEOUT", 30)
# On SIGTERM, requests in flight get this long to finish.
graceful_timeout = _env_count("GUNICORN_GRACEFUL_TIMEOUT", 20)
keepalive = 5

# Take X-Forwarded-Proto only from the one proxy in front: nginx on this host by default. In a container, set
# FORWARDED_ALLOW_IPS to the proxy's address. The app reads the client address itself (PROXY_COUNT).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

accesslog = "-"
errorlog = "-"
# Nothing here uses gunicornc; its socket would sit in $HOME, which the container's user does not have, and
# several servers on one host would fight over it.
control_socket_disable = True


class _RedactShareIds(logging.Filter):
    """For gunicorn's own messages that quote a request ("Error handling request GET /view/...")."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), ()
        return True


class RedactingLogger(Logger):
    """Log lines without links: share ids cut from paths; the query string (`next=`) and referrer dropped."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        if not any(isinstance(known, _RedactShareIds) for known in self.error_log.filters):  # setup runs again on HUP
            self.error_log.addFilter(_RedactShareIds())

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        # The path as the app routes it (decoded); a request gunicorn refused has only the raw one.
        path = redact_path(environ.get("PATH_INFO") or unquote(environ.get("RAW_URI", "").partition("?")[0]))
        query = "?[query]" if environ.get("QUERY_STRING") else ""
        atoms.update(
            {
                "r": f"{atoms['m']} {path}{query} {atoms['H']}",
                "U": path,
                "q": "",
                "f": "-",
                "{referer}i": "-",
            }
        )
        return atoms


logger_class = RedactingLogger
