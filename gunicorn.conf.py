"""gunicorn settings for SecureShare: `gunicorn -c gunicorn.conf.py app:app`. Each can be set from the environment.

Loaded by gunicorn's master process before any worker, so it must not import the app.
"""

import logging
import os
import re
from urllib.parse import quote, unquote

from dotenv import load_dotenv
from gunicorn.glogging import Logger

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

# A share id in a path is a working link: after these prefixes only the routes' own words are logged, whatever
# the spelling (/view//<id> and /view/./<id> reach the same page through a redirect).
SHARE_PATH_RE = re.compile(r"(/(?:view|secrets|api/+secrets))(/[^\s'\"?#]*)", re.IGNORECASE)
ROUTE_WORDS = {"", ".", "..", "edit", "delete", "card", "qr.png", "qr.svg", "events", "unlock"}


def redact(text: str) -> str:
    """Return `text` with every path segment after /view, /secrets or /api/secrets replaced, but the routes' words."""
    return SHARE_PATH_RE.sub(_redact_segments, text)


def _redact_segments(match: re.Match) -> str:
    segments = match.group(2).split("/")
    return match.group(1) + "/".join(part if part.lower() in ROUTE_WORDS else "[id]" for part in segments)


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
        path = environ.get("PATH_INFO") or unquote(environ.get("RAW_URI", "").partition("?")[0])
        path = quote(redact(path), safe="/[]-._~")  # encoded again: no control characters reach the log
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
