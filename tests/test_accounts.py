"""Accounts: sign-up, sign-in, sign-out, sessions, account settings."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from app import create_app, db
from config import DevelopmentConfig
from schema import Secret, User
from tests.helpers import OTHER_PASSWORD, PASSWORD, create_secret, csrf_token, post_form, unlock

REPO = Path(__file__).resolve().parent.parent


def user_count(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count(User.id)))


def get_user(app, username="alice") -> User:
    with app.app_context():
        return db.session.execute(db.select(User).filter_by(username=username)).scalar_one()


def test_register_signs_in_and_hashes_with_argon2id(app, client, auth):
    response = auth.register()
    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard"
    assert client.get("/dashboard").status_code == 200
    stored = get_user(app).password_hash
    assert stored.startswith("$argon2id$")
    memory = int(stored.split("m=")[1].split(",")[0])
    passes = int(stored.split("t=")[1].split(",")[0])
    assert memory >= 19456 and passes >= 2
    assert PASSWORD not in stored


@pytest.mark.parametrize(
    ("username", "email"),
    [("ALICE", "other@example.org"), ("bob", "Alice@Example.ORG")],
)
def test_duplicate_username_or_email_in_any_case(app, auth, client, username, email):
    auth.register()
    client.post("/logout", data={"csrf_token": csrf_token(client, "/dashboard")})
    response = auth.register(username=username, email=email)
    assert response.status_code == 400
    assert "already has an account" in response.text or "username is taken" in response.text
    assert user_count(app) == 1


def test_addresses_python_and_postgresql_fold_differently_never_answer_500(app, auth, client):
    """Fault (on PostgreSQL): İris1@ passed the uniqueness check (Python's lower()) and hit the unique index
    (PostgreSQL's lower()): a 500. One canonical spelling, folded in Python, is compared by both now."""
    auth.register(username="iris", email="iris1@example.org")
    client.post("/logout", data={"csrf_token": csrf_token(client, "/dashboard")})
    assert auth.register(username="iris2", email="\u0130ris1@example.org").status_code == 302  # another address
    client.post("/logout", data={"csrf_token": csrf_token(client, "/dashboard")})
    taken = auth.register(username="finn", email="\uff29RIS1@example.org")  # a fullwidth I: the same address
    assert taken.status_code == 400
    assert "That email already has an account" in taken.text
    assert user_count(app) == 2


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("username", "ab", "Use 3 to 32 characters."),
        ("username", "a" * 33, "Use 3 to 32 characters."),
        ("username", "bad name!", "Use only letters, digits"),
        ("username", "CLI", "That username is reserved."),  # the audit log's name for the command line
        ("email", "not-an-email", "Enter a valid email address."),
        ("password", "short", "Use 12 to 128 characters."),
        ("password", "x" * 129, "Use 12 to 128 characters."),
        ("password", "password1234", "Too easy to guess. This is a very common password."),
        ("password", "qwertyuiopas", "Too easy to guess."),
        ("password", "alice1234567", "Too easy to guess."),
    ],
)
def test_register_rejects_bad_input_next_to_the_field(app, auth, field, value, message):
    data = {"username": "alice", "email": "alice@example.org", "password": PASSWORD}
    data[field] = value
    response = auth.register(**data)
    assert response.status_code == 400
    assert message in response.text
    assert 'aria-invalid="true"' in response.text
    assert user_count(app) == 0


def test_register_keeps_what_was_typed_but_never_the_password(auth):
    response = auth.register(username="alice", email="alice@example.org", password="password1234")
    assert 'value="alice@example.org"' in response.text
    assert "password1234" not in response.text.replace("Too easy", "")


def test_mismatched_confirmation(app, auth):
    response = auth.register(confirm="something-else-entirely-9")
    assert response.status_code == 400
    assert "The passwords don&#39;t match." in response.text
    assert user_count(app) == 0


@pytest.mark.parametrize("login", ["alice", "ALICE", "alice@example.org", "Alice@Example.org"])
def test_login_by_username_or_email(client, auth, login):
    auth.register()
    auth.logout()
    response = auth.login(login=login)
    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard"
    assert client.get("/api/auth/check").json["user"]["username"] == "alice"


def test_logout_is_post_only_and_clears_the_session_cookies_by_name(client, auth):
    auth.register()
    auth.logout()
    auth.login(remember=True)
    assert client.get("/logout").status_code == 405
    response = auth.logout()
    assert response.status_code == 302
    assert response.headers["Clear-Site-Data"] == '"cache", "storage"'
    cleared = [header for header in response.headers.getlist("Set-Cookie") if "Max-Age=0" in header]
    assert {header.split("=", 1)[0] for header in cleared} == {"session", "remember_token"}
    assert client.get_cookie("remember_token") is None
    assert client.get_cookie("device") is not None  # the device cookie survives sign-out
    assert client.get("/dashboard").status_code == 302


def test_password_change_needs_the_current_password(client, auth):
    auth.register()
    response = post_form(
        client,
        "/account/password",
        {"current_password": "wrong-wrong-wrong", "password": OTHER_PASSWORD, "confirm": OTHER_PASSWORD},
        token_page="/account",
    )
    assert response.status_code == 400
    assert "That isn&#39;t your current password." in response.text


def test_remember_cookie_lasts_at_most_14_days(client, auth):
    auth.register()
    auth.logout()
    auth.login(remember=True)
    cookie = client.get_cookie("remember_token")
    assert cookie is not None and cookie.http_only
    lifetime = cookie.expires.timestamp() - __import__("time").time()
    assert 13 * 86400 < lifetime <= 14 * 86400 + 60


def test_idle_timeout_signs_out(client, auth, clock):
    auth.register()
    clock.advance(minutes=59)
    assert client.get("/dashboard").status_code == 200
    clock.advance(minutes=59)
    assert client.get("/dashboard").status_code == 200
    clock.advance(minutes=61)
    response = client.get("/dashboard")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


SIGNED_OUT = "You were signed out to keep your account safe."


def test_a_session_that_ran_out_still_sees_the_pages_anyone_may_see(client, auth, clock):
    """The owner's old cookie must not send them (or a colleague on their browser) to sign in before a share link."""
    auth.register()
    unique_id = create_secret(client)
    clock.advance(minutes=61)
    page = client.get(f"/view/{unique_id}")
    assert page.status_code == 200 and SIGNED_OUT in page.text  # said once, on the page they opened
    assert unlock(client, unique_id).status_code == 200  # the password typed is not lost to a sign-in detour
    assert client.get("/dashboard").headers["Location"] == "/login?next=/dashboard"
    login = client.get("/login").text
    assert "Please sign in to continue." in login and SIGNED_OUT not in login


def test_a_session_that_ran_out_asks_to_sign_in_once_on_an_account_page(client, auth, clock):
    auth.register()
    clock.advance(minutes=61)
    assert client.get("/dashboard?page=2").headers["Location"] == "/login?next=/dashboard?page%3D2"
    login = client.get("/login").text
    assert SIGNED_OUT in login and "Please sign in to continue." not in login
    assert client.get("/api/secrets").status_code == 401  # the API's own answer for a call that needs an account


def test_absolute_lifetime_signs_out_even_when_active(client, auth, clock):
    auth.register()
    for _ in range(13):  # 13 x 55 min = 11 h 55 min: active all along, within 12 h
        clock.advance(minutes=55)
        assert client.get("/dashboard").status_code == 200
    clock.advance(minutes=55)
    assert client.get("/dashboard").status_code == 302


def test_login_rehashes_when_parameters_rise(app, auth):
    auth.register()
    auth.logout()
    app.passwords.hasher = PasswordHasher(time_cost=3, memory_cost=19456, parallelism=1)
    auth.login()
    assert "t=3" in get_user(app).password_hash


def test_delete_account_removes_everything_it_owns(app, client, auth):
    auth.register()
    unique_id = create_secret(client)
    wrong = post_form(client, "/account/delete", {"delete-current_password": "nope-nope-nope"}, token_page="/account")
    assert wrong.status_code == 400
    assert user_count(app) == 1
    response = post_form(client, "/account/delete", {"delete-current_password": PASSWORD}, token_page="/account")
    assert response.status_code == 302
    assert user_count(app) == 0
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Secret.id))) == 0
    assert app.test_client().get(f"/view/{unique_id}").status_code == 404
    assert auth.login().status_code == 400


def test_auth_check_both_ways(client, auth):
    response = client.get("/api/auth/check")
    assert response.status_code == 401
    assert response.json["success"] is False
    assert response.json["error"]["reason"] == "unauthorized"
    auth.register()
    body = client.get("/api/auth/check").json
    assert body["success"] is True
    assert set(body["user"]) == {"id", "username", "email"}
    assert body["user"]["email"] == "alice@example.org"


def test_logs_record_account_events_without_passwords(auth, log_text):
    auth.register()
    auth.logout()
    auth.login(password="typed-the-wrong-thing-1")
    auth.login(login="ghost-user", password="typed-the-wrong-thing-2")
    text = log_text()
    assert "registered user 1 (alice)" in text
    assert "signed out alice" in text
    assert "sign-in failed for alice" in text
    assert "sign-in failed for an unknown account" in text
    for leaked in (PASSWORD, "typed-the-wrong-thing-1", "typed-the-wrong-thing-2", "ghost-user"):
        assert leaked not in text


def test_development_generates_keys_once_with_mode_0600(tmp_path, clock):
    config = type(
        "DevConfig",
        (DevelopmentConfig,),
        {
            "KEY_DIR": tmp_path,
            "SECRET_KEY": None,
            "ENCRYPTION_KEYS": None,
            "LOG_FILE": None,
            "SQLALCHEMY_DATABASE_URI": "sqlite://",
            "CLOCK": clock,
        },
    )
    first = create_app(config)
    second = create_app(config)
    for name in ("secret_key", "encryption_keys"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    assert first.secret_key == second.secret_key
    assert first.config["ENCRYPTION_KEYS"] == second.config["ENCRYPTION_KEYS"]


def _start_production(env_overrides: dict, code: str = "import app; app.create_app()") -> subprocess.CompletedProcess:
    env = {**os.environ, "APP_CONFIG": "production", "PUBLIC_BASE_URL": "https://secrets.example.org", **env_overrides}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_production_refuses_to_start_without_secret_key():
    result = _start_production({"SECRET_KEY": "", "ENCRYPTION_KEYS": "k1:" + "A" * 43 + "="})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines == ["SecureShare will not start: set SECRET_KEY in the environment (see README)."]


def test_production_refuses_to_start_without_encryption_keys():
    result = _start_production({"SECRET_KEY": "x" * 64, "ENCRYPTION_KEYS": ""})
    assert result.returncode != 0
    assert "set ENCRYPTION_KEYS" in result.stderr


def test_production_refuses_to_start_without_a_known_host():
    keys = {"SECRET_KEY": "x" * 64, "ENCRYPTION_KEYS": "k1:" + "A" * 43 + "="}
    result = _start_production({**keys, "PUBLIC_BASE_URL": "", "TRUSTED_HOSTS": ""})
    assert result.returncode != 0
    assert result.stderr.strip() == (
        "SecureShare will not start: set PUBLIC_BASE_URL or TRUSTED_HOSTS in the environment (see README)."
    )
    derived = _start_production(keys, code="from app import create_app; print(create_app().trusted_hosts)")
    assert derived.stdout.strip() == "('secrets.example.org',)"


def test_production_cookies_are_secure_with_host_prefix(tmp_path):
    result = _start_production(
        {"SECRET_KEY": "x" * 64, "ENCRYPTION_KEYS": "k1:" + "A" * 43 + "=", "DATABASE_URL": f"sqlite:///{tmp_path}/p.db"},
        code="from app import create_app; c = create_app().config; "
        "print(c['SESSION_COOKIE_NAME'], c['SESSION_COOKIE_SECURE'], c['REMEMBER_COOKIE_NAME'], c['REMEMBER_COOKIE_SECURE'])",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["__Host-session", "True", "__Host-remember_token", "True"]
