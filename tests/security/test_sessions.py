"""Sessions: one per sign-in, on the server; fixation, idle and absolute limits, and copied or remembered cookies."""

import hashlib
from dataclasses import replace
from datetime import timedelta

import pytest

from app import db
from schema import ApiToken, UserSession
from tests.helpers import OTHER_PASSWORD, PASSWORD, AuthActions, database_snapshot, post_form
from tests.test_account_settings import token_works
from tests.test_accounts import get_user
from tests.test_api import issue_token


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
    response = post_form(client, "/account/sessions", {"everywhere-current_password": PASSWORD}, token_page="/account")
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


def test_signing_out_ends_this_session_only(app, client, auth):
    """Fault: signing out on one device signed out every device (the one per-user token was rotated)."""
    auth.register()
    phone = app.test_client()
    type(auth)(phone).login()
    auth.logout()
    assert client.get("/dashboard").status_code == 302
    assert phone.get("/dashboard").status_code == 200


def test_kept_signed_in_session_still_ends_when_idle(app, client, auth, clock):
    """Fault: after the idle limit signed a person out, the remember cookie signed them back in with a fresh lifetime."""
    app.session_limits = replace(app.session_limits, idle=timedelta(minutes=1), remembered_idle=timedelta(minutes=1))
    auth.register()
    auth.logout()
    auth.login(remember=True)
    assert client.get("/dashboard").status_code == 200
    clock.advance(seconds=70)
    assert client.get("/dashboard").status_code == 302
    assert client.get("/dashboard").status_code == 302  # the remember cookie brings nothing back
    assert client.get("/api/auth/check").status_code == 401


def test_kept_signed_in_lasts_at_most_14_days_on_the_server(app, client, auth, clock):
    auth.register()
    auth.logout()
    auth.login(remember=True)
    for _ in range(13):
        clock.advance(days=1)
        assert client.get("/dashboard").status_code == 200
    clock.advance(days=1)
    assert client.get("/dashboard").status_code == 302


def test_remember_cookie_is_dead_after_sign_out(app, client, auth):
    auth.register()
    auth.logout()
    auth.login(remember=True)
    remembered = client.get_cookie("remember_token").value
    auth.logout()
    thief = app.test_client()
    thief.set_cookie("remember_token", remembered)
    assert thief.get("/dashboard").status_code == 302
    assert thief.get("/api/auth/check").status_code == 401


ANDROID_CHROME = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari"
WINDOWS_FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"


def test_sessions_are_listed_and_ended_one_by_one(app, client, auth):
    auth.register()
    phone = AuthActions(app.test_client())
    phone.client.environ_base.update(HTTP_USER_AGENT=ANDROID_CHROME, REMOTE_ADDR="2001:db8:1:2:aaaa::7")
    phone.login()
    laptop = AuthActions(app.test_client())
    laptop.client.environ_base["HTTP_USER_AGENT"] = WINDOWS_FIREFOX
    laptop.login()
    page = client.get("/account/sessions").text
    assert "Chrome on Android" in page and "Firefox on Windows" in page and "This device" in page
    assert "2001:db8:1:2::/64" in page and "2001:db8:1:2:aaaa::7" not in page
    with app.app_context():
        phone_session = db.session.execute(db.select(UserSession).filter_by(device="Chrome on Android")).scalar_one()
    assert "Sign out Chrome on Android?" in client.get(f"/account/sessions/{phone_session.id}/end").text
    response = post_form(client, f"/account/sessions/{phone_session.id}/end", {"current_password": PASSWORD})
    assert response.status_code == 302
    assert phone.client.get("/dashboard").status_code == 302
    assert laptop.client.get("/dashboard").status_code == 200
    assert client.get("/dashboard").status_code == 200
    assert "Chrome on Android" not in client.get("/account/sessions").text


def test_nobody_ends_another_account_s_session(app, client, auth):
    auth.register()
    with app.app_context():
        alice_session = db.session.execute(db.select(UserSession)).scalar_one()
    mallory = AuthActions(app.test_client())
    mallory.register(username="mallory", email="mallory@example.org")
    response = post_form(mallory.client, f"/account/sessions/{alice_session.id}/end", {}, token_page="/account/sessions")
    assert response.status_code == 404
    assert client.get("/dashboard").status_code == 200


def test_ending_this_session_from_the_list_signs_out_here(app, client, auth):
    auth.register()
    with app.app_context():
        here = db.session.execute(db.select(UserSession)).scalar_one()
    response = post_form(client, f"/account/sessions/{here.id}/end", {}, token_page="/account/sessions")
    assert response.headers["Location"] == "/login?signed_out=1"
    assert client.get("/dashboard").status_code == 302


@pytest.mark.parametrize(
    ("user_agent", "device"),
    [
        (ANDROID_CHROME, "Chrome on Android"),
        (WINDOWS_FIREFOX, "Firefox on Windows"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile Safari/604.1",
         "Safari on iPhone"),
        ("Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/131.0 Safari/537.36 Edg/131.0", "Edge on Windows"),
        ("curl/8.5.0", "Unknown device"),
        ("", "Unknown device"),
    ],
)
def test_device_names_are_coarse(user_agent, device):
    from accounts import device_name

    assert device_name(user_agent) == device


@pytest.mark.parametrize("change", ["sign out everywhere", "end one session", "revoke one token"])
def test_a_copied_session_cookie_alone_cannot_sign_the_owner_out_or_revoke_tokens(app, client, auth, change):
    """Fault: with only a session cookie (copied, or a browser left open) anyone could end the owner's other sessions
    and revoke every API token. Each asks for the password now, like the other account changes."""
    auth.register()
    token = issue_token(client)
    phone = AuthActions(app.test_client())
    phone.login()
    with app.app_context():
        phone_session = db.session.execute(db.select(UserSession).order_by(UserSession.id.desc())).scalars().first()
        token_id = db.session.execute(db.select(ApiToken.id)).scalar_one()
    path, password_field = {
        "sign out everywhere": ("/account/sessions", "everywhere-current_password"),
        "end one session": (f"/account/sessions/{phone_session.id}/end", "current_password"),
        "revoke one token": (f"/account/tokens/{token_id}/revoke", "current_password"),
    }[change]
    before = database_snapshot(app)
    for guess in ({}, {password_field: OTHER_PASSWORD}):
        refused = post_form(client, path, guess, token_page="/account/sessions")
        assert refused.status_code == 400
        assert database_snapshot(app) == before
    assert phone.client.get("/dashboard").status_code == 200
    assert token_works(app, token)
    assert post_form(client, path, {password_field: PASSWORD}, token_page="/account/sessions").status_code == 302
    assert database_snapshot(app) != before
