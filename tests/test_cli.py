"""cli.py, and the curl examples of docs/api.md, run as subprocesses against the app served by gunicorn on 127.0.0.1.

Each run gets a new session (no controlling terminal), so cli.py reads the password from the first line of
standard input, as documented; the token and server come from the environment or the config file only.
"""

import json
import os
import pty
import re
import select
import subprocess
import sys
import threading
import tty
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


def run_cli(*args, stdin: str = "", env: dict | None = None, home: Path, text=True, stdout=subprocess.PIPE):
    """Run cli.py; its output as text, or as the exact bytes with text=False."""
    base = {"PATH": os.environ["PATH"], "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    return subprocess.run(
        [sys.executable, str(REPO / "cli.py"), *args],
        input=stdin if text else stdin.encode(),
        env={**base, **(env or {})},
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=text,
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
    result = cli("share", "--text-file", str(secret_file), "--title", "Two lines", "--qr", stdin=f"{SECRET_PASSWORD}\n")
    assert result.returncode == 0, result.stderr
    unique_id = LINK_RE.search(result.stdout).group(1)
    assert "█" in result.stdout or "▀" in result.stdout  # the QR code, drawn with block characters
    assert SECRET_PASSWORD not in result.stdout + result.stderr

    listed = cli("list")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith(unique_id))
    assert "active" in row and row.endswith("Two lines") and ", in " in row

    deleted = cli("delete", unique_id)
    assert deleted.returncode == 0, deleted.stderr
    ended = next(line for line in cli("list", "--status", "deleted").stdout.splitlines() if line.startswith(unique_id))
    assert not re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", ended) and " - " in ended  # it ended: no expiry to show
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
    assert "\x1b" not in opened.stderr and "Title ^[]0;pwned^G here" in opened.stderr


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
    assert "the server refused the token" in result.stderr and "under API tokens" in result.stderr


def test_api_doc_curl_examples_work(server, token, home):
    """The curl block of docs/api.md, run as written, with only the address and the token put in."""
    api_doc = (REPO / "docs" / "api.md").read_text(encoding="utf-8")
    block = re.search(r"With `make run` going.*?```sh\n(.*?)```", api_doc, re.DOTALL).group(1)
    script = block.replace("http://127.0.0.1:5000", server["url"]).replace("ss_paste-your-token-here", token)
    env = {"PATH": os.environ["PATH"], "HOME": str(home)}
    (home / "id_ed25519").write_text("a key file\n")  # the file the block attaches, in the folder it runs in
    command = ["bash", "-euo", "pipefail", "-c", script]
    result = subprocess.run(command, env=env, cwd=home, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    listed, unlocked, deleted, with_file = (json.loads(line) for line in result.stdout.splitlines() if line.strip())
    assert listed["secrets"][0]["title"] == "Deploy key"  # newest first
    assert unlocked["secret"]["content"] == "hunter2"
    assert deleted == {"success": True, "secret": None}  # an ended record is removed, not marked
    assert LINK_RE.fullmatch(with_file["secret"]["url"])


# --- a hostile server: what a link may point to ------------------------------------------------------------------

# An OSC 52 clipboard write, a window title, a screen clear, a C1 CSI (0x9b, ESC [ in one byte), a backspace, a CR
# that would overwrite the line, and a right-to-left override.
ESCAPES = "\x1b]52;c;aGFja2Vk\x07\x1b]0;pwned\x07\x1b[2J\x9b31m\b\r\u202e"
ESCAPES_SHOWN = "^[]52;c;aGFja2Vk^G^[]0;pwned^G^[[2J<U+009B>31m^H^M<U+202E>"
HOSTILE_CONTENT = f"line one {ESCAPES}\n\tline two\r\n"  # a CRLF, as browsers send a textarea's lines
HOSTILE_CONTENT_SHOWN = f"line one {ESCAPES_SHOWN}\n\tline two\r\n"
# What must never reach a terminal: C0 controls but tab and line feed, a CR outside CRLF, DEL, C1, bidi controls.
RAW_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]|\r(?!\n)")
OPENABLE, REFUSED, MALFORMED = "O" * 22, "R" * 22, "M" * 22
FIELDS = ("id", "status", "view_count", "max_views", "expires_at", "title")
OPENED = {
    "content": HOSTILE_CONTENT,
    "title": ESCAPES,
    "view_count": ESCAPES,
    "max_views": {"n": ESCAPES},
    "expires_at": [ESCAPES],
}
HOSTILE_ANSWERS = {  # (method, path): (status, JSON, or bytes sent as they are); anything else is a 404 of escapes
    ("POST", f"/api/secrets/{OPENABLE}/unlock"): (200, {"secret": OPENED}),
    ("POST", f"/api/secrets/{REFUSED}/unlock"): (403, {"error": {"message": ESCAPES, "fields": {ESCAPES: [ESCAPES]}}}),
    ("POST", f"/api/secrets/{MALFORMED}/unlock"): (200, {"secret": ESCAPES}),
    ("POST", "/api/secrets"): (201, {"secret": {"url": f"https://example.org/view/{ESCAPES}", "expires_at": ESCAPES}}),
    ("GET", "/api/secrets?page=1&per_page=100"): (200, {"secrets": [dict.fromkeys(FIELDS, ESCAPES)], "pages": 1}),
    ("GET", "/api/secrets?page=1&per_page=100&status=active"): (200, {"secrets": [ESCAPES], "pages": 1}),
    ("GET", "/api/secrets?page=1&per_page=100&status=expired"): (200, {"secrets": [], "pages": ESCAPES}),
    ("GET", "/api/secrets?page=1&per_page=100&status=deleted"): (200, ESCAPES.encode()),
    ("DELETE", f"/api/secrets/{OPENABLE}"): (200, {"secret": {"id": ESCAPES, "title": {"nested": ESCAPES}}}),
    ("DELETE", f"/api/secrets/{MALFORMED}"): (200, ESCAPES),
}


class HostileHandler(BaseHTTPRequestHandler):
    def answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append((self.command, self.path))
        status, body = HOSTILE_ANSWERS.get((self.command, self.path), (404, ESCAPES.encode()))
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = answer

    def log_message(self, *args) -> None:
        """Keep the test's output quiet."""


@pytest.fixture(scope="module")
def hostile_server():
    """A server on 127.0.0.1 that answers cli.py with escape sequences in every string (HOSTILE_ANSWERS)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), HostileHandler)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


@pytest.fixture
def hostile_cli(hostile_server, home):
    """Run cli.py against the hostile server; its output as bytes (text mode would turn a lone CR into a newline)."""
    url = f"http://127.0.0.1:{hostile_server.server_port}"
    env = {"SECURESHARE_URL": url, "SECURESHARE_TOKEN": "ss_any"}

    def run(*args, **options):
        args = [arg.format(server=url) for arg in args]
        return run_cli(*args, env=env, home=home, text=False, **options)

    return run


def run_cli_on_a_terminal(hostile_cli, *args, stdin: str) -> tuple[subprocess.CompletedProcess, bytes]:
    """Run cli.py with its standard output on a pseudo-terminal; return the run and the bytes the terminal got."""
    terminal, cli_side = pty.openpty()
    tty.setraw(cli_side)  # no output processing: the terminal gets exactly what cli.py writes
    try:
        result = hostile_cli(*args, stdin=stdin, stdout=cli_side)
    finally:
        os.close(cli_side)
    received = b""
    while select.select([terminal], [], [], 0)[0]:  # cli.py has exited: all it wrote is waiting
        try:
            chunk = os.read(terminal, 65536)
        except OSError:  # EIO: the other side is closed and drained
            break
        if not chunk:
            break
        received += chunk
    os.close(terminal)
    return result, received


@pytest.mark.parametrize(
    ("args", "stdin", "status", "expected"),
    [
        (("open", f"{{server}}/view/{OPENABLE}"), "pw\n", 0, f"{ESCAPES_SHOWN}: view {ESCAPES_SHOWN} of {{"),
        (("open", f"{{server}}/view/{REFUSED}"), "pw\n", 1, f"cli.py: {ESCAPES_SHOWN} ({ESCAPES_SHOWN}: {ESCAPES_SHOWN})"),
        (("open", f"{{server}}/view/{MALFORMED}"), "pw\n", 1, "cli.py: the server's answer is not a SecureShare answer"),
        (("share",), "pw\ncontent", 0, f"https://example.org/view/{ESCAPES_SHOWN}\n"),
        (("share",), "pw\ncontent", 0, f"Expires {ESCAPES_SHOWN}."),
        (("list",), "", 0, f"{ESCAPES_SHOWN} {ESCAPES_SHOWN}"),
        (("list", "--status", "active"), "", 1, "the server's answer is not a SecureShare answer"),
        (("list", "--status", "expired"), "", 1, "the server's answer is not a SecureShare answer"),
        (("list", "--status", "deleted"), "", 1, "the server's answer is not a SecureShare answer"),
        (("delete", OPENABLE), "", 0, f"Deleted {ESCAPES_SHOWN} ("),
        (("delete", MALFORMED), "", 1, "the server's answer is not a SecureShare answer"),
        (("delete", REFUSED), "", 1, "cli.py: the server answered 404"),
    ],
    ids=[
        "open",
        "refusal",
        "open-malformed",
        "share-link",
        "share-expiry",
        "list",
        "list-rows-not-objects",
        "list-pages-not-a-number",
        "list-not-json",
        "delete",
        "delete-not-an-object",
        "delete-not-json",
    ],
)
def test_nothing_a_server_sends_reaches_the_terminal_raw(hostile_cli, args, stdin, status, expected):
    result = hostile_cli(*args, stdin=stdin)
    output = result.stdout.decode() + result.stderr.decode()
    assert result.returncode == status, output
    assert not RAW_CONTROL_RE.search(output), output
    assert "Traceback" not in output
    assert expected in output


def test_open_spells_out_control_characters_in_the_content_wherever_it_goes(hostile_cli):
    result = hostile_cli("open", f"{{server}}/view/{OPENABLE}", stdin="pw\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == HOSTILE_CONTENT_SHOWN  # a pipe too: it often ends on a terminal


def test_open_raw_writes_the_exact_content(hostile_cli):
    result = hostile_cli("open", "--raw", f"{{server}}/view/{OPENABLE}", stdin="pw\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == HOSTILE_CONTENT.encode()
    assert not RAW_CONTROL_RE.search(result.stderr.decode())  # the title line is still cleaned


def test_open_on_a_terminal_shows_control_characters_visibly(hostile_cli):
    result, shown = run_cli_on_a_terminal(hostile_cli, "open", f"{{server}}/view/{OPENABLE}", stdin="pw\n")
    assert result.returncode == 0, result.stderr
    assert shown.decode() == HOSTILE_CONTENT_SHOWN
    assert b"\x1b" not in shown and b"\x07" not in shown and b"\xc2\x9b" not in shown


def test_open_raw_refuses_a_terminal_before_using_a_view(hostile_cli, hostile_server):
    seen = len(hostile_server.seen)
    result, shown = run_cli_on_a_terminal(hostile_cli, "open", "--raw", f"{{server}}/view/{OPENABLE}", stdin="pw\n")
    assert result.returncode == 2
    assert "send the output to a file or a pipe" in result.stderr.decode()
    assert shown == b""
    assert hostile_server.seen[seen:] == []  # never asked the server: no view spent


DEEP_JSON = b"[" * 100_000


class DeepJsonHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(DEEP_JSON)))
        self.end_headers()
        self.wfile.write(DEEP_JSON)

    def log_message(self, *args) -> None:
        """Keep the test's output quiet."""


@pytest.fixture
def deep_json_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), DeepJsonHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


def test_deeply_nested_json_is_a_refusal_not_a_traceback(deep_json_server, home):
    """Fault: JSON nested past Python's parser raised RecursionError, which the client showed as a traceback."""
    result = run_cli("open", f"{deep_json_server}/view/{'A' * 22}", stdin="pw\n", home=home)
    assert "Traceback" not in result.stderr
    assert result.returncode == 1


def test_open_says_a_secret_is_gone_before_asking_for_the_password(cli, server):
    gone = cli("open", f"{server['url']}/view/{'G' * 22}", stdin="")  # no password given: it is never asked for
    assert gone.returncode == 1
    assert "no longer available" in gone.stderr and "Password" not in gone.stderr


def test_expiries_print_as_local_time_and_how_far_off():
    import cli as cli_module

    in_three_hours = datetime.now(UTC) + timedelta(hours=3, seconds=30)
    local = in_three_hours.astimezone()
    assert cli_module.expiry(in_three_hours.isoformat()) == f"{local:%Y-%m-%d %H:%M %Z}, in 3 hours"
    assert cli_module.expiry(["not a time"]) == '["not a time"]'


# --- files -------------------------------------------------------------------------------------------------------------


def test_share_files_then_open_saves_them_byte_for_byte_never_over_a_file(cli, tmp_path):
    key, notes = tmp_path / "id_ed25519", tmp_path / "notes.txt"
    key.write_bytes(b"-----BEGIN OPENSSH PRIVATE KEY-----\n\x00\xff binary\n")
    notes.write_text("second file\n")
    result = cli("share", "--file", str(key), "--file", str(notes), "--max-views", "2", stdin=f"{SECRET_PASSWORD}\n")
    assert result.returncode == 0, result.stderr
    link = LINK_RE.search(result.stdout).group(0)
    out = tmp_path / "out"
    out.mkdir()
    for _ in range(2):
        opened = cli("open", "--out", str(out), link, stdin=f"{SECRET_PASSWORD}\n")
        assert opened.returncode == 0, opened.stderr
    assert (out / "id_ed25519").read_bytes() == (out / "id_ed25519 (2)").read_bytes() == key.read_bytes()
    assert (out / "notes.txt").read_text() == (out / "notes (2).txt").read_text() == "second file\n"
    assert oct((out / "id_ed25519").stat().st_mode & 0o777) == "0o600"
    assert SECRET_PASSWORD not in opened.stderr and link not in opened.stderr


def test_open_without_out_says_there_are_files(cli, tmp_path):
    attached = tmp_path / "cert.pem"
    attached.write_text("certificate\n")
    link = share(cli, "--file", str(attached), content="")
    opened = cli("open", link, stdin=f"{SECRET_PASSWORD}\n")
    assert opened.returncode == 0, opened.stderr
    assert "It has 1 file(s): open it with --out DIR to save them." in opened.stderr


def test_share_refuses_a_missing_or_empty_file_and_open_a_missing_folder(cli, tmp_path):
    empty = tmp_path / "empty"
    empty.touch()
    for path in (tmp_path / "missing", empty):
        refused = cli("share", "--file", str(path), stdin=f"{SECRET_PASSWORD}\n")
        assert refused.returncode == 2 and "--file" in refused.stderr
    refused = cli("open", "--out", str(tmp_path / "nowhere"), "http://127.0.0.1:1/view/" + "a" * 22, stdin="pw\n")
    assert refused.returncode == 2 and "is not a folder" in refused.stderr


@pytest.mark.parametrize(
    ("name", "saved"),
    [
        ("../../.bashrc", "_.._.bashrc"),
        ("/etc/passwd", "_etc_passwd"),
        ("..\\..\\boot.ini", "_.._boot.ini"),
        ("\x1b]52;c;aGk=\x07.txt", "_[]52;c;aGk=_G.txt"),
        (".hidden", "hidden"),
        ("...", "file"),
        ("a" * 1000, "a" * 200),
        ("report\u202efdp.exe", "report<U+202E>fdp.exe"),
    ],
)
def test_a_servers_file_name_becomes_a_plain_name_in_the_folder(name, saved):
    import cli as cli_module

    assert cli_module.safe_file_name(name) == saved


def test_a_file_link_to_another_server_is_refused_before_connecting(tmp_path):
    import cli as cli_module

    elsewhere = {"name": "x", "size": 1, "url": "http://203.0.113.9/view/x/files/t/0"}
    with pytest.raises(cli_module.CliError, match="points to another server"):
        cli_module._save_file("http://127.0.0.1:1", elsewhere, tmp_path)
    assert list(tmp_path.iterdir()) == []
