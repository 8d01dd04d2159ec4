#!/usr/bin/env python3
"""SecureShare from the command line: share, open, list and delete secrets through the JSON API.

Standard library only (segno, when installed, draws the QR code for `share --qr`).

    cli.py share [--file PATH]... [--text-file PATH] [--title T] [--expires 24h] [--max-views N] [--blur N] [--qr]
    cli.py open [--raw] [--out DIR] URL
    cli.py list [--status STATUS]
    cli.py delete ID_OR_URL

The server address and API token come from SECURESHARE_URL and SECURESHARE_TOKEN, or from the config file
($XDG_CONFIG_HOME or ~/.config)/secureshare/config with `url = …` and `token = …` lines, which must be private to
you (mode 0600). Never from arguments: those show in `ps` and shell history. `open` needs neither: the link says
where the secret is, and opening it needs only its password.

Passwords are asked on the terminal without echo (twice for `share`). Without a terminal (a pipe, a CI job), the
password is the first line of standard input, read once; `share` then reads the secret's text from --text-file or
from the rest of standard input. `--file` attaches a file (repeat it for more); with files the text may be empty,
and on a terminal it is not asked for. `open --out DIR` saves the secret's files in DIR, under names cleaned of
anything but a plain file name, never over an existing file.

Everything a server sends is shown with its control and invisible characters spelled out (^[ for ESC, <U+202E>
for a right-to-left override): a link may point to anyone's server, and escape sequences would drive the terminal
(set the clipboard, the window title, clear the screen). `open` keeps the content's line breaks and tabs, and spells
out the rest wherever its output goes (a pipe often ends on a terminal); `open --raw` writes the exact content, for
scripts, and refuses a terminal.

Exit status: 0 done, 1 the server refused (wrong password, gone, not found...), 2 bad usage or configuration,
3 the server could not be reached.
"""

import argparse
import getpass
import ipaddress
import json
import os
import re
import secrets
import stat
import sys
import unicodedata
import urllib.error
import urllib.request
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit

EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 3
TIMEOUT_SECONDS = 60
SHARE_LINK_RE = re.compile(r"/view/([A-Za-z0-9_-]{22,43})/?")  # the path of a share link
SHARE_ID_RE = re.compile(r"[A-Za-z0-9_-]{22,43}")
DURATION_RE = re.compile(r"([0-9]+)([smhd]?)")
DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
TIME_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60))
EXPIRES_WIDTH = len("2026-01-31 09:30 CEST, 23 hours ago")
# Whose expiry `list` shows: a secret that was used up, destroyed or deleted ended before it, like the dashboard's "—".
TIMED_STATUSES = {"active", "expired"}
# What a terminal obeys or hides rather than shows: controls (Cc: C0, DEL, C1 such as CSI 0x9b), format characters
# (Cf: bidi overrides and isolates that reorder the text around them, zero-width characters), line and paragraph
# separators, and lone surrogates (not text at all).
HIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}
# A secret's layout: line breaks (a CR only in CRLF, as browsers send textareas; alone it overwrites the line) and tabs.
LAYOUT_RE = re.compile(r"(\r?\n|\t)")
MALFORMED_ANSWER = "the server's answer is not a SecureShare answer"
# The API's 401 says "Sign in or send an API token", which puzzles someone who did send one.
UNAUTHORIZED_ANSWER = (
    "the server refused the token: it is mistyped, expired or revoked (a password reset revokes every token). "
    "Make a new one on the Account page, under API tokens."
)
JSON_PART = "secret"  # a create with files: the JSON fields are this part, each file a part named "files"
FILE_NAME_LIMIT = 200
DOWNLOAD_CHUNK = 64 * 1024


class CliError(Exception):
    """A failure to report in one line, with the exit status it ends the program with."""

    def __init__(self, message: str, status: int = EXIT_REFUSED):
        super().__init__(message)
        self.status = status


# --- settings ---------------------------------------------------------------------------------------------------


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "secureshare" / "config"


def _read_config_file(path: Path) -> dict[str, str]:
    """Read `key = value` lines from the config file, which must be yours and private (it holds a token)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return {}
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO) or info.st_uid != os.getuid():
        raise CliError(f"{path} must be yours and private: run chmod 600 {path}", EXIT_USAGE)
    settings = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, separator, value = line.partition("=")
        if separator and not key.strip().startswith("#"):
            settings[key.strip().lower()] = value.strip()
    return settings


def _require_safe_origin(url: str, what: str) -> str:
    """Return `url` without a trailing slash; refuse plain http except to this machine (tokens and passwords ride along)."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise CliError(f"{what} must be an http(s) address, got {url!r}", EXIT_USAGE)
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise CliError(f"{what} must use https (plain http is allowed only to this machine)", EXIT_USAGE)
    return f"{parts.scheme}://{parts.netloc}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def server_settings() -> tuple[str, str]:
    """Return (server address, token) from the environment, else from the config file."""
    stored = _read_config_file(config_path())
    url = os.environ.get("SECURESHARE_URL") or stored.get("url")
    token = os.environ.get("SECURESHARE_TOKEN") or stored.get("token")
    if not url or not token:
        raise CliError(
            f"set SECURESHARE_URL and SECURESHARE_TOKEN, or write url = … and token = … into {config_path()} (mode 0600); "
            "the token comes from your Account page",
            EXIT_USAGE,
        )
    return _require_safe_origin(url, "SECURESHARE_URL"), token


# --- HTTP -------------------------------------------------------------------------------------------------------


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: it would carry the token or the password to another address."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise CliError(f"the server answered with a redirect to {newurl}; check SECURESHARE_URL or the link")


_opener = urllib.request.build_opener(_NoRedirects)


def call(method: str, url: str, token: str | None = None, body: dict | None = None, files: tuple[Path, ...] = ()) -> dict:
    """Call the API and return its JSON answer; with `files`, the body is multipart (the JSON as one part).

    :raise CliError: with the server's own words when it refuses, or EXIT_UNREACHABLE when it cannot be reached.
    """
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data, headers["Content-Type"] = (
            _multipart(body, files) if files else (json.dumps(body).encode("utf-8"), "application/json")
        )
    with _opened(urllib.request.Request(url, data=data, headers=headers, method=method)) as response:  # noqa: S310 - http(s) only
        answer = response.read()
    try:
        return json.loads(answer)
    except (ValueError, RecursionError):  # RecursionError: brackets nested past Python's parser
        raise CliError(MALFORMED_ANSWER) from None


def _require_openable(origin: str, unique_id: str) -> None:
    """Ask the share page (a HEAD: no view, no try) whether the secret is still there. :raise CliError: when not;
    any other answer leaves it to the unlock to say."""
    request = urllib.request.Request(f"{origin}/view/{quote(unique_id)}", method="HEAD")  # noqa: S310 - http(s) only
    try:
        with _opener.open(request, timeout=TIMEOUT_SECONDS):
            return
    except urllib.error.HTTPError as refusal:
        if refusal.code in (404, 410):
            raise CliError("this secret is no longer available (or the link is wrong): there is nothing to open") from None
    except (urllib.error.URLError, OSError) as failure:
        raise _unreachable(origin, failure) from None


def _unreachable(url: str, failure: OSError) -> CliError:
    return CliError(f"cannot reach {urlsplit(url).netloc}: {getattr(failure, 'reason', failure)}", EXIT_UNREACHABLE)


@contextmanager
def _opened(request: urllib.request.Request):
    """Open a request; its refusals and failures are CliErrors."""
    try:
        response = _opener.open(request, timeout=TIMEOUT_SECONDS)
    except urllib.error.HTTPError as refusal:
        raise CliError(_refusal_text(refusal)) from None
    except (urllib.error.URLError, OSError) as failure:
        raise _unreachable(request.full_url, failure) from None
    with response:
        yield response


def _multipart(body: dict, files: tuple[Path, ...]) -> tuple[bytes, str]:
    """Encode a create with files: the JSON fields as the part "secret", each file as a part "files"."""
    boundary = "secureshare-" + secrets.token_hex(16)
    parts = [_form_part(boundary, f'name="{JSON_PART}"', "application/json", json.dumps(body).encode("utf-8"))]
    for path in files:
        disposition = f'name="files"; filename="{quote(path.name, safe=" ._-()")}"'
        parts.append(_form_part(boundary, disposition, "application/octet-stream", _read_bytes(path)))
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _form_part(boundary: str, disposition: str, content_type: str, content: bytes) -> bytes:
    head = f"--{boundary}\r\nContent-Disposition: form-data; {disposition}\r\nContent-Type: {content_type}\r\n\r\n"
    return head.encode("utf-8") + content + b"\r\n"


def _refusal_text(refusal: urllib.error.HTTPError) -> str:
    """Return the server's own words (main() cleans them); only the status when they are not shaped as ours."""
    try:
        error = json.load(refusal)["error"]
        if error.get("reason") == "unauthorized":
            return UNAUTHORIZED_ANSWER
        fields = "; ".join(f"{name}: {' '.join(problems)}" for name, problems in (error.get("fields") or {}).items())
        return error["message"] + (f" ({fields})" if fields else "")
    except (ValueError, RecursionError, KeyError, TypeError, AttributeError):
        return f"the server answered {refusal.code}"


def _part(record, name: str, kind: type | tuple[type, ...]):
    """Return `record[name]` when it has the type a SecureShare server sends; the server may be anyone's."""
    if not isinstance(record, dict) or not isinstance(record.get(name), kind):
        raise CliError(MALFORMED_ANSWER)
    return record[name]


# --- input ------------------------------------------------------------------------------------------------------


def _has_terminal() -> bool:
    """Tell whether a terminal can be asked (getpass talks to it directly, even when stdin is a pipe)."""
    try:
        with open("/dev/tty", "rb"):
            return True
    except OSError:
        return False


def ask_password(prompt: str, confirm: bool = False) -> str:
    """Ask for a password without echo; without a terminal, take the first line of standard input."""
    if not _has_terminal():
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(prompt)
        if confirm and getpass.getpass("Repeat it: ") != password:
            raise CliError("the passwords don't match", EXIT_USAGE)
    if not password:
        raise CliError("no password given", EXIT_USAGE)
    return password


def read_secret(path: str | None, with_files: bool) -> str:
    """Return the secret's text: from `path`, else standard input (not asked on a terminal when files carry it)."""
    if path:
        try:
            return Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as failure:
            raise CliError(f"cannot read {path}: {failure}", EXIT_USAGE) from None
    if sys.stdin.isatty():
        if with_files:
            return ""
        print("Type or paste the secret, then press Ctrl-D:", file=sys.stderr)
    return sys.stdin.read()


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as failure:
        raise CliError(f"cannot read {path}: {failure.strerror}", EXIT_USAGE) from None


def attachable(text: str) -> Path:
    """An argparse type: a readable, non-empty regular file."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text} is not a file")
    if path.stat().st_size == 0:
        raise argparse.ArgumentTypeError(f"{text} is empty")
    return path


def output_folder(text: str) -> Path:
    """An argparse type: an existing folder to save files in (checked before the unlock, which uses a view)."""
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is not a folder")
    return path


def seconds(text: str) -> int:
    """Parse a duration: 3600, 90m, 24h, 7d."""
    match = DURATION_RE.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError("use a number of seconds, or a number with s, m, h or d (e.g. 90m, 24h, 7d)")
    return int(match.group(1)) * DURATION_UNITS[match.group(2)]


def share_id(text: str) -> str:
    """Return the share id of a share link, or `text` itself when it is one."""
    if match := SHARE_LINK_RE.fullmatch(urlsplit(text).path):
        return match.group(1)
    if SHARE_ID_RE.fullmatch(text):
        return text
    raise CliError("that is neither a share link (…/view/<id>) nor a share id", EXIT_USAGE)


def shown(value, keep_layout: bool = False) -> str:
    """Return a value from a server as text a terminal shows and never obeys: hidden characters spelled out.

    Every server string goes through here before it is printed. JSON that is not a string (a number, an object
    where a string belongs) is shown as JSON. `keep_layout` keeps a secret's line breaks and tabs.
    """
    text = value if isinstance(value, str) else json.dumps(value)
    if keep_layout:
        return "".join(part if LAYOUT_RE.fullmatch(part) else shown(part) for part in LAYOUT_RE.split(text))
    return "".join(_spelled(char) if unicodedata.category(char) in HIDDEN_CATEGORIES else char for char in text)


def expiry(value) -> str:
    """Return an API timestamp as local time with how far off it is ("2026-12-08 14:30 CET, in 3 hours")."""
    try:
        moment = datetime.fromisoformat(value).astimezone()
    except (TypeError, ValueError):
        return shown(value)
    return f"{moment:%Y-%m-%d %H:%M %Z}, {_from_now(moment - datetime.now(UTC))}"


def _from_now(delta: timedelta) -> str:
    seconds_off = abs(delta.total_seconds())
    unit, size = next(((unit, size) for unit, size in TIME_UNITS if seconds_off >= size), (None, 0))
    if unit is None:
        return "now"
    count = round(seconds_off / size)
    amount = f"{count} {unit}{'' if count == 1 else 's'}"
    return f"in {amount}" if delta.total_seconds() > 0 else f"{amount} ago"


def _spelled(char: str) -> str:
    """Return caret notation for a C0 control or DEL (^[ is ESC), else the code point (<U+009B>)."""
    code = ord(char)
    if code < 0x20 or code == 0x7F:
        return "^" + chr(code ^ 0x40)
    return f"<U+{code:04X}>"


# --- commands ---------------------------------------------------------------------------------------------------


def command_share(args) -> None:
    segno = _import_segno() if args.qr else None  # before anything is created: no secret is left without its QR
    server, token = server_settings()
    password = ask_password("Password for this secret: ", confirm=True)
    files = tuple(args.file or ())
    content = read_secret(args.text_file, with_files=bool(files))
    if not content.strip() and not files:
        raise CliError("the secret is empty", EXIT_USAGE)
    body = {"title": args.title, "content": content, "password": password, "blur_level": args.blur}
    if args.expires is not None:
        body["expires_in"] = args.expires
    if args.max_views is not None:
        body["max_views"] = args.max_views
    secret = _part(call("POST", f"{server}/api/secrets", token, body, files), "secret", dict)
    link = shown(_part(secret, "url", str))
    print(link)
    if segno:
        segno.make(link, error="m", micro=False).terminal(out=sys.stdout, compact=True)
    expires = expiry(secret.get("expires_at"))
    print(f"Expires {expires}. Send the password another way: a call, a chat, in person.", file=sys.stderr)


def _import_segno():
    """Return the segno module, which draws the QR code of `share --qr`."""
    try:
        import segno
    except ImportError:
        raise CliError(
            "--qr needs segno: pip install segno, or run cli.py with the Python of SecureShare's .venv", EXIT_USAGE
        ) from None
    return segno


def command_open(args) -> None:
    if args.raw and sys.stdout.isatty():  # before the unlock, which uses a view
        raise CliError(
            "--raw writes control characters as they are, and a terminal would obey them: send the output to a file or a pipe",
            EXIT_USAGE,
        )
    origin = _require_safe_origin(args.url, "the link")
    unique_id = share_id(args.url)
    _require_openable(origin, unique_id)  # before asking for a password that could not open anything
    password = ask_password("Password: ")
    # No token here: the link's host may be anyone's, and opening a secret needs only its password.
    answer = call("POST", f"{origin}/api/secrets/{quote(unique_id)}/unlock", body={"password": password})
    secret = _part(answer, "secret", dict)
    content = _part(secret, "content", str)
    if args.raw:
        sys.stdout.flush()
        sys.stdout.buffer.write(content.encode("utf-8", "surrogatepass"))  # exactly what the server holds
    else:
        sys.stdout.write(shown(content, keep_layout=True))
        if sys.stdout.isatty() and not content.endswith("\n"):
            sys.stdout.write("\n")
    view_count, max_views = shown(secret.get("view_count")), secret.get("max_views")
    views = f"{view_count} of {shown(max_views)}" if max_views else view_count
    print(f"{shown(secret.get('title'))}: view {views}, expires {expiry(secret.get('expires_at'))}", file=sys.stderr)
    files = _part(secret, "files", list) if "files" in secret else []
    if files and args.out is None:
        print(f"It has {len(files)} file(s): open it with --out DIR to save them.", file=sys.stderr)
    for file in files if args.out is not None else ():
        _save_file(origin, file, args.out)


def _save_file(origin: str, file, folder: Path) -> None:
    """Download one of the secret's files into `folder`: from the link's own server only, never over a file."""
    url = urljoin(origin + "/", _part(file, "url", str))
    if urlsplit(url)[:2] != urlsplit(origin)[:2]:
        raise CliError(f"a file's link points to another server ({shown(urlsplit(url).netloc)}); nothing saved from it")
    target, out = _new_file(folder, safe_file_name(_part(file, "name", str)))
    with _opened(urllib.request.Request(url, headers={"Accept": "*/*"})) as response, out:  # noqa: S310
        while chunk := response.read(DOWNLOAD_CHUNK):
            out.write(chunk)
    print(f"Saved {shown(str(target))} ({target.stat().st_size} bytes)", file=sys.stderr)


def safe_file_name(name: str) -> str:
    """Return a server's file name as a plain name in a folder: no folders, no hidden or invisible characters."""
    plain = shown(name.replace("/", "_").replace("\\", "_")).replace("^", "_")
    plain = plain.lstrip(". ")[:FILE_NAME_LIMIT].strip()
    return plain or "file"


def _new_file(folder: Path, name: str):
    """Create `name` in `folder`, private to the user ("name (2)" and so on when it exists); return it, open to write."""
    stem, dot, suffix = name.rpartition(".") if "." in name else (name, "", "")
    for number in range(1, 1000):
        candidate = folder / (name if number == 1 else f"{stem} ({number}){dot}{suffix}")
        try:
            return candidate, os.fdopen(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")
        except FileExistsError:
            continue
    raise CliError(f"too many files named {name} in {folder}", EXIT_USAGE)


def command_list(args) -> None:
    server, token = server_settings()
    page, rows = 1, []
    while True:
        query = f"?page={page}&per_page=100" + (f"&status={quote(args.status)}" if args.status else "")
        answer = call("GET", f"{server}/api/secrets{query}", token)
        rows += _part(answer, "secrets", list)
        if page >= _part(answer, "pages", int):
            break
        page += 1
    if not all(isinstance(row, dict) for row in rows):
        raise CliError(MALFORMED_ANSWER)
    if not rows:
        print("No secrets yet.", file=sys.stderr)
        return
    print(f"{'ID':<24} {'STATUS':<10} {'VIEWS':<9} {'EXPIRES':<{EXPIRES_WIDTH}} TITLE")
    for secret in rows:
        views = f"{shown(secret.get('view_count'))}/{shown(secret.get('max_views') or '∞')}"
        identity, status = shown(secret.get("id")), shown(secret.get("status"))
        expires = expiry(secret.get("expires_at")) if secret.get("status") in TIMED_STATUSES else "-"
        print(f"{identity:<24} {status:<10} {views:<9} {expires:<{EXPIRES_WIDTH}} {shown(secret.get('title'))}")


def command_delete(args) -> None:
    server, token = server_settings()
    answer = call("DELETE", f"{server}/api/secrets/{quote(share_id(args.secret))}", token)
    secret = _part(answer, "secret", (dict, type(None)))
    if secret is None:  # the API removes an ended record instead of marking it
        print("Deleted: the record is gone (it had already ended).", file=sys.stderr)
        return
    print(f"Deleted {shown(secret.get('id'))} ({shown(secret.get('title'))}): its link no longer works.", file=sys.stderr)


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="cli.py",
        description="Share secrets by link through a SecureShare server.",
        epilog="Server and token: SECURESHARE_URL and SECURESHARE_TOKEN, or the config file (mode 0600). "
        "Without a terminal, the password is the first line of standard input.",
    )
    commands = main.add_subparsers(dest="command", required=True)
    share = commands.add_parser("share", help="create a secret and print its link")
    share.add_argument(
        "--file", type=attachable, action="append", help="attach this file (repeat for more; the text may then be empty)"
    )
    share.add_argument("--text-file", help="read the secret's text from this file (default: standard input)")
    share.add_argument("--title", default="Shared from the command line", help="a title only you will see")
    share.add_argument("--expires", type=seconds, help="how long it lasts: seconds, or 90m, 24h, 7d (default 24h)")
    share.add_argument("--max-views", type=int, help="burn after this many views (default: unlimited)")
    share.add_argument("--blur", type=int, default=10, help="blur on the recipient's page, 0-20 px (default 10)")
    share.add_argument("--qr", action="store_true", help="also print the link as a QR code")
    share.set_defaults(run=command_share)
    open_ = commands.add_parser(
        "open",
        help="open a secret from its link and print its content",
        description="Print a secret's content, with control and invisible characters spelled out (^[ for ESC, "
        "<U+202E> for a right-to-left override); line breaks and tabs stay as they are.",
    )
    open_.add_argument("url", help="the share link")
    open_.add_argument(
        "--raw",
        action="store_true",
        help="write the content's exact bytes, control characters included, for a script or a file "
        "(refused when standard output is a terminal, which would obey them)",
    )
    open_.add_argument("--out", type=output_folder, help="save the secret's files in this folder")
    open_.set_defaults(run=command_open)
    list_ = commands.add_parser("list", help="list your secrets")
    list_.add_argument("--status", choices=["active", "expired", "used_up", "destroyed", "deleted"])
    list_.set_defaults(run=command_list)
    delete = commands.add_parser("delete", help="delete a secret (its content is erased at once)")
    delete.add_argument("secret", help="the share id or link")
    delete.set_defaults(run=command_delete)
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except CliError as error:  # its words may be the server's
        print(f"cli.py: {shown(str(error))}", file=sys.stderr)
        return error.status
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
