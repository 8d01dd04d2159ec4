"""Disclosure: after a full session, no password, content, cookie, token or share id is in the logs, the
database files or the QR folder; no stack trace, debugger or version banner reaches a client."""

import logging
import os
import re
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError
from werkzeug.serving import make_server

from app import db
from schema import User, new_unique_id
from tests.helpers import AuthActions, create_secret, csrf_token, free_port, log_spellings, post_form, unlock
from tests.test_api import NEW_SECRET, issue_token

REPO = Path(__file__).resolve().parents[2]


def scripted_session(app) -> set[str]:
    """Do everything a user does once; return every sensitive string the session handled."""
    owner = app.test_client()
    auth = AuthActions(owner)
    account_password, new_password = "first-pass-phrase-zebra", "second-pass-phrase-otter"
    auth.register(username="carol", email="carol@example.org", password=account_password)
    sensitive = {account_password, new_password, owner.get_cookie("session").value}
    secrets_made = [
        ("Title-LEAK-1", "Content-LEAK-1 recovery codes", "secret-pass-LEAK-1"),
        ("Title-LEAK-2", "Content-LEAK-2 api key", "secret-pass-LEAK-2"),
    ]
    for index, (title, content, password) in enumerate(secrets_made):
        unique_id = create_secret(owner, title=title, content=content, password=password, max_views=str(index + 1))
        reader = app.test_client()
        unlock(reader, unique_id, "a-wrong-guess-LEAK")
        unlock(reader, unique_id, password)
        sensitive |= {content, password, unique_id}
        assert reader.get_cookie("session") is None  # a recipient gets no session at all (issue 12)
    token = issue_token(owner, password=account_password)
    with owner.session_transaction() as current:
        sensitive.add(current["_user_id"])  # the raw session token: the database keeps only its hash
    created = owner.application.test_client().post(
        "/api/secrets", json={**NEW_SECRET, "content": "Content-LEAK-3"}, headers={"Authorization": f"Bearer {token}"}
    )
    sensitive |= {token, "Content-LEAK-3", created.json["secret"]["id"], csrf_token(owner, "/dashboard")}
    post_form(
        owner,
        "/account/password",
        {"current_password": account_password, "password": new_password, "confirm": new_password},
        token_page="/account",
    )
    auth.logout()
    auth.login(login="carol", password="not-my-password-LEAK")
    auth.login(login="carol", password=new_password, remember=True)
    sensitive |= {"not-my-password-LEAK", "a-wrong-guess-LEAK", owner.get_cookie("remember_token").value}
    return sensitive


def files_at_rest(app) -> list[Path]:
    database = Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))
    candidates = [database, Path(f"{database}-wal"), Path(f"{database}-shm"), Path(app.config["LOG_FILE"])]
    return [path for path in candidates if path.exists()]


def test_nothing_sensitive_is_logged_or_stored(app, log_text):
    sensitive = scripted_session(app)
    assert "sign-in failed for carol" in log_text()
    for path in files_at_rest(app):
        data = path.read_bytes()
        for needle in sensitive:
            assert needle.encode() not in data, (path.name, needle[:12])


def test_500_shows_no_trace_and_gives_a_reference(app, client):
    app.add_url_rule("/explode", "explode", lambda: 1 / 0)
    response = client.get("/explode")
    page = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "ZeroDivisionError" not in page and "Traceback" not in page and "Werkzeug" not in page
    assert response.headers["X-Request-ID"] in page


def fetch(url: str):
    try:
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - loopback only; a worker may still be importing the app
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def test_gunicorn_shows_no_versions_and_no_debugger(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "APP_CONFIG": "production",
        "SECRET_KEY": "s" * 64,
        "ENCRYPTION_KEYS": "k1:" + "B" * 43 + "=",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.db'}",
        "TRUSTED_HOSTS": f"127.0.0.1:{port}",
        "FLASK_DEBUG": "",
    }
    bin_dir = Path(sys.executable).parent
    subprocess.run([bin_dir / "flask", "--app", "app", "init-db"], cwd=REPO, env=env, check=True, capture_output=True)
    server = subprocess.Popen(
        [bin_dir / "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1", "app:create_app()"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in server.stderr:  # gunicorn says when its worker is up; no polling, no sleeping
            if "Booting worker" in line:
                break
        else:
            pytest.fail("gunicorn exited before serving the app")
        status, headers, page = fetch(f"http://127.0.0.1:{port}/")
        assert status == 200
        assert headers["Server"] == "gunicorn"
        assert not re.search(r"\d+\.\d+", headers["Server"])
        for path in ("/no/such/page", "/console", "/?__debugger__=yes&cmd=resource&f=style.css"):
            status, headers, page = fetch(f"http://127.0.0.1:{port}{path}")
            assert "Werkzeug" not in page and "Traceback" not in page, path
            # Our own page (its footer's menu keeps the query, __debugger__ too, escaped), never the debugger's files.
            assert headers["Content-Type"].startswith("text/html") and "SecureShare" in page, path
    finally:
        server.terminate()
        server.communicate(timeout=10)


def test_request_lines_of_the_development_server_carry_no_share_ids(app):
    """The development server (`make run`) logs each request line through the app's filter: every spelling redacted."""
    records = []
    catcher = logging.Handler()
    catcher.emit = records.append
    werkzeug_logger = logging.getLogger("werkzeug")
    werkzeug_logger.addHandler(catcher)
    werkzeug_logger.setLevel(logging.INFO)
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    share_id = new_unique_id()
    spellings = log_spellings(share_id)
    try:
        for sent, _shown in spellings:
            with socket.create_connection(("127.0.0.1", server.port), timeout=30) as raw:
                raw.sendall(f"GET {sent} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
                while raw.recv(65536):
                    pass
    finally:
        server.shutdown()
        serving.join(timeout=10)
        werkzeug_logger.removeHandler(catcher)
    lines = [record.getMessage() for record in records]
    assert len(lines) == len(spellings)
    assert not any(share_id in line or spellings[8][0].removeprefix("/view/") in line for line in lines), lines
    for line, (_sent, shown) in zip(lines, spellings, strict=True):
        assert f"GET {shown} HTTP/1.1" in line, line  # the development server may colour the line


def test_database_errors_carry_no_row_values(app):
    with app.app_context():
        db.session.add(User(username="twin", email="one@example.org", password_hash="HASH-VALUE-LEAK-1"))
        db.session.commit()
        db.session.add(User(username="TWIN", email="two@example.org", password_hash="HASH-VALUE-LEAK-2"))
        with pytest.raises(IntegrityError) as error:
            db.session.commit()
        db.session.rollback()
    assert "HASH-VALUE-LEAK" not in str(error.value)
    assert "two@example.org" not in str(error.value)
