"""Session attacks: fixation, and replaying a copied cookie after logout, password change or 'sign out everywhere'."""

import hashlib

from app import db
from schema import UserSession
from tests.helpers import OTHER_PASSWORD, PASSWORD, database_snapshot, post_form
from tests.test_accounts import get_user


def _session_cookie(client) -> str:
    return client.get_cookie("session").value


def test_replayed_cookie_after_logout_is_refused(app, client, auth):
    auth.register()
    stolen = _session_cookie(client)
    auth.logout()
    attacker = app.test_client()
    attacker.set_cookie("session", stolen)
    response = attacker.get("/dashboard")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_replayed_cookie_after_password_change_is_refused(app, client, auth):
    auth.register()
    stolen = _session_cookie(client)
    response = post_form(
        client,
        "/account/password",
        {"current_password": PASSWORD, "password": OTHER_PASSWORD, "confirm": OTHER_PASSWORD},
        token_page="/account",
    )
    assert response.status_code == 302
    assert client.get("/dashboard").status_code == 200  # this browser stays signed in
    attacker = app.test_client()
    attacker.set_cookie("session", stolen)
    assert attacker.get("/dashboard").status_code == 302
    auth.logout()
    assert auth.login(password=PASSWORD).status_code == 400
    assert auth.login(password=OTHER_PASSWORD).status_code == 302


def test_sign_out_everywhere_ends_other_sessions_and_remember_cookies(app, client, auth):
    auth.register()
    other = app.test_client()
    other_auth = type(auth)(other)
    other_auth.login(remember=True)
    assert other.get("/dashboard").status_code == 200
    response = post_form(client, "/account/sessions", {}, token_page="/account")
    assert response.status_code == 302
    assert client.get("/dashboard").status_code == 200
    assert other.get("/dashboard").status_code == 302


def test_login_starts_a_fresh_session(client, auth):
    auth.register()
    auth.logout()
    with client.session_transaction() as planted:
        planted["planted"] = "attacker-value"
    auth.login()
    with client.session_transaction() as current:
        assert "planted" not in current
        assert "_user_id" in current


def test_session_token_is_stored_only_as_a_hash(app, client, auth):
    """Fault: session tokens were stored in clear, so a copy of the database was a key to every account."""
    auth.register()
    with client.session_transaction() as current:
        token = current["_user_id"]
    assert token != str(get_user(app).id)
    assert token not in repr(database_snapshot(app))
    with app.app_context():
        stored = db.session.execute(db.select(UserSession.token_hash)).scalar_one()
    assert stored == hashlib.sha256(token.encode()).hexdigest()
