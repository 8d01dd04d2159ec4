"""cli.py, and the curl examples of docs/api.md, run as subprocesses against the app served by gunicorn on 127.0.0.1.

Each run gets a new session (no controlling terminal), so cli.py reads the password from the first line of
standard input, as documented; the token and server come from the environment or the config file only.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from app import create_app, db
from config import TestingConfig
from tests.helpers import SECRET_CONTENT, SECRET_PASSWORD, AuthActions, free_port, serving_the_test_app
from tests.test_api import issue_token

REPO = Path(__file__).resolve().parents[1]
LINK_RE = re.compile(r"^http://127\.0\.0\.1:\d+/view/([A-Za-z0-9_-]{22,43})$", re.MULTILINE)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Serve the app (tests/browser/serve.py) with gunicorn on 127.0.0.1; yield its address and its database URL."""
    run_dir = tmp_path_factory.mktemp("cli")
    with serving_the_test_app(run_dir) as url:
        yield {"url": url, "database": f"sqlite:///{run_dir / 'secureshare.db'}"}


@pytest.fixture(scope="module")
def token(server):
    """An API token of a user registered through the real routes, on the served database."""
    settings = {"SQLALCHEMY_DATABASE_URI": server["database"], "LOG_FILE": None}
    app = create_app(type("CliTestConfig", (TestingConfig,), settings))
    with app.app_context():
        db.create_all()  # the worker may not have imported the app yet
    client = app.test_client()
    assert AuthActions(client).register(username="carol", email="carol@example.org").status_code == 302
    issued = issue_token(client)
    with app.app_context():
        db.engine.dispose()
    return issued


@pytest.fixture
def home(tmp_path):
    """An empty home directory, so no real config file is ever read."""
    return tmp_path


def run_cli(*args, stdin: str = "", env: dict | None = None, home: Path) -> subprocess.CompletedProcess:
    base = {"PATH": os.environ["PATH"], "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    return subprocess.run(
        [sys.executable, str(REPO / "cli.py"), *args],
        input=stdin,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,  # no controlling terminal: the password comes from standard input
        check=False,
    )


@pytest.fixture
def cli(server, token, home):
    env = {"SECURESHARE_URL": server["url"], "SECURESHARE_TOKEN": token}
    return lambda *args, stdin="": run_cli(*args, stdin=stdin, env=env, home=home)


def share(cli, *options, content=SECRET_CONTENT) -> str:
    result = cli("share", *options, stdin=f"{SECRET_PASSWORD}\n{content}")
    assert result.returncode == 0, result.stderr
    return LINK_RE.search(result.stdout).group(0)


def test_share_then_open_prints_the_content_and_burns_the_last_view(cli):
    link = share(cli, "--title", "Deploy key", "--expires", "1h", "--max-views", "1")
    opened = cli("open", link, stdin=f"{SECRET_PASSWORD}\n")
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout == SECRET_CONTENT
    assert "Deploy key: view 1 of 1" in opened.stderr
    again = cli("open", link, stdin=f"{SECRET_PASSWORD}\n")
    assert again.returncode == 1
    assert "no longer available" in again.stderr
    assert again.stdout == ""


def test_wrong_password_says_how_many_tries_are_left_and_prints_nothing(cli):
    link = share(cli)
    result = cli("open", link, stdin="not-the-password\n")
    assert result.returncode == 1
    assert "4 tries left" in result.stderr
    assert result.stdout == ""
    assert SECRET_CONTENT not in result.stderr


def test_share_from_a_file_with_a_qr_code_then_list_and_delete(cli, tmp_path):
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("line one\nline two\n", encoding="utf-8")
    result = cli("share", "--file", str(secret_file), "--title", "Two lines", "--qr", stdin=f"{SECRET_PASSWORD}\n")
    assert result.returncode == 0, result.stderr
    unique_id = LINK_RE.search(result.stdout).group(1)
    assert "█" in result.stdout or "▀" in result.stdout  # the QR code, drawn with block characters
    assert SECRET_PASSWORD not in result.stdout + result.stderr

    listed = cli("list")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith(unique_id))
    assert "active" in row and row.endswith("Two lines")

    deleted = cli("delete", unique_id)
    assert deleted.returncode == 0, deleted.stderr
    assert unique_id in cli("list", "--status", "deleted").stdout
    assert unique_id not in cli("list", "--status", "active").stdout


def test_qr_without_segno_is_refused_before_anything_is_created(server, token, home, cli, tmp_path):
    blocked = tmp_path / "no-segno"
    blocked.mkdir()
    (blocked / "segno.py").write_text("raise ImportError('segno is not installed here')\n", encoding="utf-8")
    env = {"SECURESHARE_URL": server["url"], "SECURESHARE_TOKEN": token, "PYTHONPATH": str(blocked)}
    stdin = f"{SECRET_PASSWORD}\n{SECRET_CONTENT}"
    result = run_cli("share", "--title", "Never made", "--qr", stdin=stdin, env=env, home=home)
    assert result.returncode == 2
    assert "pip install segno" in result.stderr
    assert result.stdout == ""  # no link: no secret was made
    assert "Never made" not in cli("list").stdout


def test_delete_of_an_ended_record_says_it_is_gone(cli):
    link = share(cli, "--max-views", "1")
    assert cli("open", link, stdin=f"{SECRET_PASSWORD}\n").returncode == 0  # the one view: the secret ends
    deleted = cli("delete", link)
    assert deleted.returncode == 0, deleted.stderr
    assert "Deleted: the record is gone (it had already ended)." in deleted.stderr
    assert LINK_RE.search(link).group(1) not in cli("list").stdout


def test_list_columns_line_up_under_their_headings(cli):
    unique_id = LINK_RE.search(share(cli, "--title", "Aligned title")).group(1)
    header, *rows = cli("list").stdout.splitlines()
    row = next(line for line in rows if line.startswith(unique_id))
    assert row.index("Aligned title") == header.index("TITLE")


def test_titles_cannot_send_escape_codes_to_the_terminal(cli):
    link = share(cli, "--title", "Title \x1b]0;pwned\x07 here")
    opened = cli("open", link, stdin=f"{SECRET_PASSWORD}\n")
    assert opened.returncode == 0, opened.stderr
    assert "\x1b" not in opened.stderr and "Title ?]0;pwned? here" in opened.stderr


def test_delete_of_an_unknown_secret_is_a_refusal(cli):
    result = cli("delete", "A" * 22)
    assert result.returncode == 1
    assert "nothing at this address" in result.stderr.lower()


def test_config_file_must_be_private(server, token, home):
    config = home / ".config" / "secureshare" / "config"
    config.parent.mkdir(parents=True)
    config.write_text(f"url = {server['url']}\ntoken = {token}\n", encoding="utf-8")
    config.chmod(0o644)
    refused = run_cli("list", home=home)
    assert refused.returncode == 2
    assert "chmod 600" in refused.stderr
    config.chmod(0o600)
    accepted = run_cli("list", home=home)
    assert accepted.returncode == 0, accepted.stderr


def test_without_settings_it_says_what_to_set(home):
    result = run_cli("list", home=home)
    assert result.returncode == 2
    assert "SECURESHARE_URL" in result.stderr and "SECURESHARE_TOKEN" in result.stderr


def test_token_is_never_an_argument(cli):
    assert cli("list", "--token", "ss_x").returncode == 2


def test_plain_http_to_another_machine_is_refused_before_connecting(home):
    env = {"SECURESHARE_URL": "http://secrets.example.org", "SECURESHARE_TOKEN": "ss_x"}
    result = run_cli("list", env=env, home=home)
    assert result.returncode == 2
    assert "https" in result.stderr


def test_unreachable_server_is_its_own_exit_status(home):
    env = {"SECURESHARE_URL": f"http://127.0.0.1:{free_port()}", "SECURESHARE_TOKEN": "ss_x"}
    result = run_cli("list", env=env, home=home)
    assert result.returncode == 3
    assert "cannot reach" in result.stderr


def test_wrong_token_is_a_refusal(server, home):
    env = {"SECURESHARE_URL": server["url"], "SECURESHARE_TOKEN": "ss_wrong"}
    result = run_cli("list", env=env, home=home)
    assert result.returncode == 1
    assert "Sign in or send an API token" in result.stderr


def test_api_doc_curl_examples_work(server, token, home):
    """The curl block of docs/api.md, run as written, with only the address and the token put in."""
    api_doc = (REPO / "docs" / "api.md").read_text(encoding="utf-8")
    block = re.search(r"With `make run` going.*?```sh\n(.*?)```", api_doc, re.DOTALL).group(1)
    script = block.replace("http://127.0.0.1:5000", server["url"]).replace("ss_paste-your-token-here", token)
    env = {"PATH": os.environ["PATH"], "HOME": str(home)}
    command = ["bash", "-euo", "pipefail", "-c", script]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    listed, unlocked, deleted = (json.loads(line) for line in result.stdout.splitlines() if line.strip())
    assert listed["secrets"][0]["title"] == "Deploy key"  # newest first
    assert unlocked["secret"]["content"] == "hunter2"
    assert deleted == {"success": True, "secret": None}  # an ended record is removed, not marked
