"""Container health check: exit 0 when gunicorn answers /healthz with 200 (python's urllib: the image has no curl).

Asks with a Host the app trusts (TRUSTED_HOSTS, else PUBLIC_BASE_URL's host and port), on the port gunicorn binds
(GUNICORN_BIND).
"""

import os
import sys
import urllib.request
from urllib.parse import urlsplit


def trusted_host() -> str:
    hosts = [host.strip() for host in os.environ.get("TRUSTED_HOSTS", "").split(",") if host.strip()]
    return hosts[0] if hosts else urlsplit(os.environ.get("PUBLIC_BASE_URL", "")).netloc or "localhost"


def main() -> int:
    port = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000").rsplit(":", 1)[1]
    request = urllib.request.Request(f"http://127.0.0.1:{port}/healthz", headers={"Host": trusted_host()})
    try:
        with urllib.request.urlopen(request, timeout=4) as response:  # noqa: S310 - a fixed loopback URL  # nosec B310
            return 0 if response.status == 200 else 1
    except OSError as error:
        print(f"healthcheck: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
