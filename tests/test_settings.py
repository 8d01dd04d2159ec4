"""Settings are checked at start: a value that would break every request refuses to start, in one line."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import create_app
from tests.helpers import make_config

REPO = Path(__file__).resolve().parents[1]
START = "SecureShare will not start: "


@pytest.mark.parametrize(
    ("setting", "value", "advice"),
    [
        ("PUBLIC_BASE_URL", "secrets.example.org", "PUBLIC_BASE_URL must be the site's address with scheme and host"),
        ("PUBLIC_BASE_URL", "https://", "PUBLIC_BASE_URL must be"),
        ("PUBLIC_BASE_URL", "ftp://secrets.example.org", "PUBLIC_BASE_URL must be"),
        ("PUBLIC_BASE_URL", "https://secrets.example.org/share", "PUBLIC_BASE_URL must be"),
        ("PUBLIC_BASE_URL", "https://secrets.example.org?x=1", "PUBLIC_BASE_URL must be"),
        ("PUBLIC_BASE_URL", "https://user@secrets.example.org", "PUBLIC_BASE_URL must be"),
        ("PUBLIC_BASE_URL", "https://.example.org", "PUBLIC_BASE_URL must be"),
        ("TRUSTED_HOSTS", ["https://secrets.example.org"], "TRUSTED_HOSTS must list host names"),
        ("TRUSTED_HOSTS", ["secrets.example.org", "bad host"], "not 'bad host'"),
        ("TRUSTED_HOSTS", ["secrets.example.org/"], "TRUSTED_HOSTS must list host names"),
        ("TRUSTED_HOSTS", ["-secrets.example.org"], "TRUSTED_HOSTS must list host names"),
        ("PROXY_COUNT", "two", "PROXY_COUNT must be how many reverse proxies stand in front, 0 to 5."),
        ("PROXY_COUNT", "-1", "PROXY_COUNT must be"),
        ("PROXY_COUNT", "6", "PROXY_COUNT must be"),
        ("PROXY_COUNT", "1.0", "PROXY_COUNT must be"),
        ("PROXY_COUNT", "\u0661", "PROXY_COUNT must be"),  # an Arabic-Indic digit: int() would take it
    ],
)
def test_bad_setting_refuses_to_start_saying_what_to_fix(tmp_path, clock, setting, value, advice):
    with pytest.raises(SystemExit) as refusal:
        create_app(make_config(tmp_path, clock, **{setting: value}))
    message = str(refusal.value)
    assert message.startswith(START)
    assert advice in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("PUBLIC_BASE_URL", "https://secrets.example.org"),
        ("PUBLIC_BASE_URL", "http://127.0.0.1:8443"),
        ("PUBLIC_BASE_URL", "https://[::1]:8443"),
        ("TRUSTED_HOSTS", ["secrets.example.org", "localhost:8443", ".example.org", "127.0.0.1", "[::1]"]),
        ("PROXY_COUNT", "0"),
        ("PROXY_COUNT", " 2 "),
        ("PROXY_COUNT", 5),
    ],
)
def test_good_settings_start(tmp_path, clock, setting, value):
    started = create_app(make_config(tmp_path, clock, **{setting: value}))
    assert (started.trusted_hosts if setting == "TRUSTED_HOSTS" else started.config[setting]) is not None


def test_proxy_count_is_a_number_once_started(tmp_path, clock):
    assert create_app(make_config(tmp_path, clock, PROXY_COUNT="2")).config["PROXY_COUNT"] == 2


def test_from_the_environment_the_refusal_is_one_line_and_no_traceback():
    """Before this check a PROXY_COUNT of "two" was a ValueError traceback from config.py's import."""
    env = {
        **os.environ,
        "APP_CONFIG": "production",
        "SECRET_KEY": "x" * 64,
        "ENCRYPTION_KEYS": "k1:" + "A" * 43 + "=",
        "PUBLIC_BASE_URL": "https://secrets.example.org",
        "PROXY_COUNT": "two",
    }
    command = [sys.executable, "-c", "import app; app.create_app()"]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [START + "PROXY_COUNT must be how many reverse proxies stand in front, 0 to 5."]


def test_production_refuses_a_short_secret_key(tmp_path, clock):
    from tests.helpers import production_config

    with pytest.raises(SystemExit, match="SECRET_KEY must be at least 32 characters"):
        create_app(production_config(tmp_path, clock, SECRET_KEY="x"))
    assert create_app(production_config(tmp_path, clock, SECRET_KEY="x" * 32)).secret_key == "x" * 32
