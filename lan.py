"""`make run-lan`: the development server on this machine's LAN address, so a phone on the same network can follow a
share link or scan its QR code. Sets PUBLIC_BASE_URL and TRUSTED_HOSTS to that address, prints it and a terminal QR
code of it, then runs `flask run` there. LAN_ADDRESS and PORT override what it finds."""

import os
import socket
import sys
from pathlib import Path

import segno

DEFAULT_PORT = 5000
UNROUTED_PROBE = ("192.0.2.1", 9)  # TEST-NET-1: a UDP "connect" only picks the route; no packet is sent


def lan_address() -> str:
    """Return the address this machine reaches its network from. :raise SystemExit: when it has no route."""
    if chosen := os.environ.get("LAN_ADDRESS"):
        return chosen
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(UNROUTED_PROBE)
        except OSError:
            sys.exit("run-lan: this machine has no network route to share; use `make run`.")
        return probe.getsockname()[0]


def main() -> None:
    address, port = lan_address(), int(os.environ.get("PORT", DEFAULT_PORT))
    url = f"http://{address}:{port}"
    os.environ.update(PUBLIC_BASE_URL=url, TRUSTED_HOSTS=f"{address}:{port}")
    print(f"SecureShare on your network: {url}/  (phones on the same Wi-Fi can open it; scan this)")
    segno.make(f"{url}/", error="m").terminal(compact=True)
    sys.stdout.flush()
    flask = str(Path(sys.executable).parent / "flask")
    os.execv(flask, [flask, "--app", "app", "run", "--host", address, "--port", str(port)])  # noqa: S606 - our own venv's flask


if __name__ == "__main__":
    main()
