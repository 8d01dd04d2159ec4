"""gunicorn settings for SecureShare: `gunicorn -c gunicorn.conf.py app:app`. Each can be set from the environment.

Loaded by gunicorn's master process before any worker, so it must not import the app.
"""

import os
import re
from urllib.parse import quote

from gunicorn.glogging import Logger

# The container sets 0.0.0.0:8000; on a host, nginx in front reaches the app on loopback.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Each unlock derives a key with 64 MiB of memory (at most KDF_MAX_CONCURRENT at once per worker): size workers to RAM.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# An unlock waits at most 10 s for a derivation slot, so a worker silent for this long is stuck.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# On SIGTERM, requests in flight get this long to finish.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = 5

# Take X-Forwarded-Proto only from the one proxy in front: nginx on this host by default. In a container, set
# FORWARDED_ALLOW_IPS to the proxy's address. The app reads the client address itself (PROXY_COUNT).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

accesslog = "-"
errorlog = "-"
# Nothing here uses gunicornc; its socket would sit in $HOME, which the container's user does not have, and
# several servers on one host would fight over it.
control_socket_disable = True

# A share id in a path is a working link: the segment after these prefixes is never logged.
SHARE_ID_SEGMENT_RE = re.compile(r"(/(?:view|secrets|api/secrets)/)[^/]+", re.IGNORECASE)


def redact_path(path: str) -> str:
    """Return `path` (as the app routes it, decoded) with share ids replaced, percent-encoded again for the log."""
    return quote(SHARE_ID_SEGMENT_RE.sub(r"\1[id]", path), safe="/[]-._~")


class RedactingLogger(Logger):
    """Access log lines without links: share ids cut from the path; query string (`next=`) and referrer dropped."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        path = redact_path(environ.get("PATH_INFO", ""))
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
