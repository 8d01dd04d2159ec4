"""`make run-lan`: the address it prints answers, with its host trusted, and the QR code beside it encodes it."""

import base64
import os
import re
import secrets
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.helpers import free_port

REPO = Path(__file__).resolve().parents[1]


def test_the_printed_address_answers(tmp_path):
    port = free_port()  # not 5000: the development default hosts would refuse it, so a 200 proves TRUSTED_HOSTS was set
    env = {
        **os.environ,
        "LAN_ADDRESS": "127.0.0.1",  # tests bind loopback only; lan_address() finds the real one otherwise
        "PORT": str(port),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'lan.db'}",
        "SECRET_KEY": secrets.token_hex(32),
        "ENCRYPTION_KEYS": "k1:" + base64.b64encode(os.urandom(32)).decode(),
    }
    env.pop("APP_CONFIG", None)
    lan = subprocess.Popen(
        [sys.executable, "lan.py"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        printed = lan.stdout.readline()
        qr_lines = [lan.stdout.readline() for _ in range(3)]
        for line in lan.stderr:  # Flask says when it listens
            if "Running on" in line:
                break
        address = re.search(r"http://\S+/", printed).group(0)
        assert address == f"http://127.0.0.1:{port}/"
        assert all("█" in line for line in qr_lines)
        with urllib.request.urlopen(address, timeout=10) as answer:  # noqa: S310 - our own loopback server
            assert answer.status == 200
            assert b"SecureShare" in answer.read()
    finally:
        lan.terminate()
        lan.wait(timeout=10)
        lan.stdout.close()
        lan.stderr.close()
