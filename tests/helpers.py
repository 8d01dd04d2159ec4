"""Test helpers: a frozen clock, CSRF-aware form posts, and sign-up/sign-in through the real routes."""

import base64
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from config import TestingConfig
from schema import Base, User

# A signed-in page's meta tag, or the hidden field of the page's form (anonymous pages have no meta tag).
CSRF_TOKEN_RE = re.compile(r'<meta name="csrf-token" content="([^"]+)">|<input[^>]*name="csrf_token"[^>]*value="([^"]+)"')
PASSWORD = "violet-harbor-trumpet-42"
OTHER_PASSWORD = "quiet-lantern-meadow-77"
MAIL_SENDER = "SecureShare <secrets@example.org>"


class FrozenClock:
    """A clock that only moves when a test moves it."""

    def __init__(self, start: datetime):
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta) -> None:
        self.current += timedelta(**delta)


def csrf_token(client, path: str = "/login") -> str:
    """Return the CSRF token a real page hands this client."""
    page = client.get(path)
    match = CSRF_TOKEN_RE.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1) or match.group(2)


def post_form(client, path: str, data: dict, token_page: str | None = None, **kwargs):
    """POST a form the way a browser does: with the token from a page of this session."""
    token = csrf_token(client, token_page or path)
    return client.post(path, data={"csrf_token": token, **data}, **kwargs)


class AuthActions:
    """Register, sign in and sign out through the real routes."""

    def __init__(self, client):
        self.client = client

    def register(self, username="alice", email="alice@example.org", password=PASSWORD, confirm=None):
        return post_form(
            self.client,
            "/register",
            {"username": username, "email": email, "password": password, "confirm": confirm or password},
        )

    def login(self, login="alice", password=PASSWORD, remember=False, next_=None):
        path = "/login" + (f"?next={next_}" if next_ else "")
        data = {"login": login, "password": password}
        if remember:
            data["remember"] = "y"
        return post_form(self.client, path, data, token_page="/login")

    def logout(self):
        return post_form(self.client, "/logout", {}, token_page="/dashboard")


CHEAP_HASHING = ("PASSWORD_HASH_MEMORY_KIB", "PASSWORD_HASH_TIME_COST", "PASSWORD_HASH_PARALLELISM", "KDF_MEMORY_KIB")


def make_config(tmp_path, clock, base=TestingConfig, **overrides):
    """Return a config class (testing by default) for one test: its own database file, log file, QR folder and clock."""
    settings = {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'secureshare.db'}",
        "LOG_FILE": tmp_path / "logs" / "app.log",
        "CLOCK": clock,
        **overrides,
    }
    return type("PerTestConfig", (base,), settings)


# Every spelling of a path that carries a share id ({id}; {encoded} is it percent-encoded), as sent, and as both
# logs must show it: gunicorn's access log and the development server's request lines share redaction.py's rule.
LOG_SPELLINGS = [
    ("/view/{id}", "/view/[id]"),
    ("/view//{id}", "/view//[id]"),
    ("/view/./{id}", "/view/./[id]"),
    ("/view%3Bx/{id}", "/view[id]/[id]"),
    ("/view%3B{id}", "/view[id]"),
    ("/%76iew/{id}", "/view/[id]"),
    ("/VIEW/{id}", "/VIEW/[id]"),
    ("/view%2F{id}", "/view/[id]"),
    ("/view/{encoded}", "/view/[id]"),
    ("/secrets/{id}/qr.png?x=1", "/secrets/[id]/qr.png?[query]"),
    ("/login?next=/secrets/{id}/edit", "/login?[query]"),
    ("/api/secrets/{id}", "/api/secrets/[id]"),
    ("/api//secrets/{id}/../view/{id}", "/api//secrets/[id]/../[id]/[id]"),
    ("/password/reset/{id}", "/password/reset/[id]"),
    ("/password//reset/./{id}", "/password//reset/./[id]"),
    ("/email/verify/{id}", "/email/verify/[id]"),
    ("/email/%76erify/{id}", "/email/verify/[id]"),
    ("/invite/{id}", "/invite/[id]"),
    ("/view/{id}/files/{id}/0", "/view/[id]/[id]/[id]/[id]"),  # a download link carries the files' key
    ("/%69nvite/{id}", "/invite/[id]"),
    ("/manage/{id}", "/manage/[id]"),
    ("/manage/{id}/delete", "/manage/[id]/delete"),
]


def log_spellings(share_id: str) -> list[tuple[str, str]]:
    """Return LOG_SPELLINGS for one share id: (path to send, the path both logs must show)."""
    encoded = "".join(f"%{byte:02X}" for byte in share_id.encode())
    return [(sent.format(id=share_id, encoded=encoded), shown) for sent, shown in LOG_SPELLINGS]


SECRET_PASSWORD = "open-sesame-42"
SECRET_CONTENT = "db-password: CANARY-5f1e9c-hunter2"


def secret_form(**fields) -> dict:
    """Return a valid create form, with `fields` changed (the confirmation follows the password)."""
    return {
        "title": "Office Wi-Fi",
        "content": SECRET_CONTENT,
        "password": SECRET_PASSWORD,
        "confirm": fields.get("password", SECRET_PASSWORD),
        "expiration": "24h",
        "custom_unit": "hours",
        "blur_level": "10",
        "max_views": "",
        **fields,
    }


def create_secret(client, **fields) -> str:
    """Create a secret through the form and return its share id."""
    response = post_form(client, "/create", secret_form(**fields))
    assert response.status_code == 302, response.text
    return response.headers["Location"].rsplit("/", 1)[1]


def recipient_form_token(app, unique_id: str) -> str:
    """Return the token the secret's page hands out now, as a recipient holding the form has it (even once it ends)."""
    from guards import unlock_form_token

    with app.test_request_context(f"/view/{unique_id}"):
        return unlock_form_token(unique_id)


def unlock(client, unique_id: str, password: str = SECRET_PASSWORD):
    """Submit the recipient's password form."""
    token = recipient_form_token(client.application, unique_id)
    return client.post(f"/view/{unique_id}", data={"csrf_token": token, "password": password})


def load_secret(app, unique_id: str):
    """Return the secret row as stored now."""
    from app import db
    from schema import Secret

    with app.app_context():
        secret = db.session.execute(Secret.by_share_id(unique_id)).scalar_one()
        db.session.expunge(secret)
        secret.unique_id = unique_id
        return secret


def database_snapshot(app) -> dict:
    """Every row of every table, to show that a refused request changed nothing."""
    from app import db

    with app.app_context():
        return {
            table.name: sorted(tuple(map(repr, row)) for row in db.session.execute(table.select()).all())
            for table in db.metadata.sorted_tables
        }


@contextmanager
def sqlite_schema(path: Path) -> Iterator[Engine]:
    """An engine on a new SQLite file at `path` with every table, for the Flask-free cores' tests."""
    engine = create_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


def add_alice_and_bob(session) -> None:
    """The two accounts (ids 1 and 2) the cores' tests act as and against."""
    for user_id, name in ((1, "alice"), (2, "bob")):
        session.add(User(id=user_id, username=name, email=f"{name}@example.org", password_hash="x"))
    session.commit()


# The Flask-free cores' fixtures (a test module takes them with `engine, session = helpers.engine, helpers.session`).
@pytest.fixture
def engine(tmp_path):
    with sqlite_schema(tmp_path / "core.db") as engine:
        yield engine


@pytest.fixture
def session(engine):
    with Session(engine) as session:
        add_alice_and_bob(session)
        yield session


@contextmanager
def own_postgres_schema(prefix: str) -> Iterator[tuple[Engine, str]]:
    """An engine on a schema of its own in the PostgreSQL database named by POSTGRES_URL, with the schema's tables,
    and the schema's name. Dropped afterwards: runs side by side (the mutants of `make mutation`) never share a table.
    """
    url = service_url("POSTGRES_URL", "PostgreSQL")
    schema = f"{prefix}_{os.urandom(8).hex()}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    engine = create_engine(url, connect_args={"options": f"-c search_path={schema}"})
    try:
        Base.metadata.create_all(engine)
        yield engine, schema
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def service_url(variable: str, service: str) -> str:
    """Return the URL of a service a test needs; skip without it, but fail where CI requires every service."""
    url = os.environ.get(variable)
    if not url:
        if os.environ.get("SECURESHARE_REQUIRE_SERVICES"):
            pytest.fail(f"{variable} is required here")
        pytest.skip(f"set {variable} to run against a real {service}")
    return url


def production_config(tmp_path, clock, **overrides):
    """Return the production settings for one test, with its own files and keys and the cheapest hashing."""
    import base64

    from config import ProductionConfig

    settings = {
        "SECRET_KEY": os.urandom(32).hex(),
        "ENCRYPTION_KEYS": "k1:" + base64.b64encode(os.urandom(32)).decode(),
        "TRUSTED_HOSTS": ["localhost"],
        "RATELIMIT_ENABLED": False,
        **{name: getattr(TestingConfig, name) for name in CHEAP_HASHING},
        **overrides,
    }
    return make_config(tmp_path, clock, **settings, base=ProductionConfig)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving_the_test_app(run_dir: Path) -> Iterator[str]:
    """Serve tests/browser/serve.py with gunicorn on 127.0.0.1 (1 worker, 4 threads), files in `run_dir`; yield its URL."""
    port = free_port()
    env = {
        **os.environ,
        "SECURESHARE_TEST_DIR": str(run_dir),
        "SECURESHARE_TEST_HOST": f"127.0.0.1:{port}",
        "SECRET_KEY": secrets.token_hex(32),
        "ENCRYPTION_KEYS": "k1:" + base64.b64encode(os.urandom(32)).decode(),
    }
    gunicorn = Path(sys.executable).parent / "gunicorn"
    command = [gunicorn, "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4", "tests.browser.serve:application"]
    repo = Path(__file__).resolve().parents[1]
    process = subprocess.Popen(command, cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in process.stderr:  # gunicorn says when its worker is up
        if "Booting worker" in line:
            break
    else:
        process.wait()
        process.stderr.close()
        pytest.fail("gunicorn exited before serving the app")
    drain = threading.Thread(target=process.stderr.read, daemon=True)  # a full pipe would stall the server
    drain.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        drain.join(timeout=10)
        process.stderr.close()
