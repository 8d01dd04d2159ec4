"""Two-factor sign-in: enrolment, the code step, clock skew, replay, recovery codes, and turning it off."""

import os
import re
from datetime import timedelta

import pyotp
import pytest

from app import db
from schema import RecoveryCode, User
from tests.helpers import CSRF_TOKEN_RE, OTHER_PASSWORD, PASSWORD, AuthActions, database_snapshot, post_form
from tests.test_accounts import get_user
from tests.test_qr import files_under

KEY_RE = re.compile(r'id="totp-key" aria-label="Key">([A-Z2-7]+)<')
RECOVERY_RE = re.compile(r"<li>([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4})</li>")


def code_at(key: str, clock, steps: int = 0) -> str:
    """Return the code an authenticator app shows `steps` time steps away from the frozen clock."""
    return pyotp.TOTP(key).at(clock() + timedelta(seconds=30 * steps))


def enrolment_key(client) -> str:
    page = client.get("/account/two-factor")
    assert page.status_code == 200
    return KEY_RE.search(page.text).group(1)


def turn_on(client, clock) -> tuple[str, list[str]]:
    """Turn two-factor on through the page; return the key and the recovery codes shown once."""
    key = enrolment_key(client)
    page = post_form(client, "/account/two-factor", {"current_password": PASSWORD, "code": code_at(key, clock)})
    assert page.status_code == 200, page.text
    codes = RECOVERY_RE.findall(page.text)
    assert len(codes) == 10
    clock.advance(seconds=30)  # the next code belongs to a new step
    return key, codes


@pytest.fixture
def two_factor(logged_in_client, clock):
    return turn_on(logged_in_client, clock)


def sign_in_with_code(client, auth, code: str):
    """Sign out, enter the password, then `code` on the second page; return the code page's answer."""
    auth.logout()
    first = auth.login()
    assert first.status_code == 302 and first.headers["Location"] == "/login/code"
    return post_form(client, "/login/code", {"code": code})


def test_enrolment_refuses_a_wrong_code_then_takes_the_right_one(app, logged_in_client, clock):
    key = enrolment_key(logged_in_client)
    assert enrolment_key(logged_in_client) == key  # a reload shows the same key, so a scanned QR stays valid
    wrong_code = "000000" if code_at(key, clock) != "000000" else "111111"
    wrong = post_form(logged_in_client, "/account/two-factor", {"current_password": PASSWORD, "code": wrong_code})
    assert wrong.status_code == 400
    assert "That code didn" in wrong.text
    assert not get_user(app).two_factor_on
    right = post_form(logged_in_client, "/account/two-factor", {"current_password": PASSWORD, "code": code_at(key, clock)})
    assert right.status_code == 200
    assert len(RECOVERY_RE.findall(right.text)) == 10
    assert get_user(app).two_factor_on
    assert "10 recovery codes left" in logged_in_client.get("/account").text
    assert not RECOVERY_RE.findall(logged_in_client.get("/account/two-factor").text)  # shown once only


def test_turning_on_needs_the_password(app, logged_in_client, clock):
    """Fault: a stolen session could turn two-factor on with the key it read, and lock the owner out."""
    key = enrolment_key(logged_in_client)
    for password in ({}, {"current_password": "not-it-at-all"}):
        refused = post_form(logged_in_client, "/account/two-factor", {**password, "code": code_at(key, clock)})
        assert refused.status_code == 400
        assert not RECOVERY_RE.findall(refused.text)
        assert not get_user(app).two_factor_on
    assert 'name="current_password"' in refused.text


def test_turning_on_signs_out_every_other_device(app, logged_in_client, clock):
    other = app.test_client()
    AuthActions(other).login()
    assert other.get("/dashboard").status_code == 200
    page = post_form(
        logged_in_client,
        "/account/two-factor",
        {"current_password": PASSWORD, "code": code_at(enrolment_key(logged_in_client), clock)},
    )
    assert "Every other device has been signed out" in page.text
    assert other.get("/dashboard").status_code == 302
    assert logged_in_client.get("/dashboard").status_code == 200
    # The page's forms carry the new session's CSRF token: its "Sign out" button works.
    token = CSRF_TOKEN_RE.search(page.text).group(1)
    assert logged_in_client.post("/logout", data={"csrf_token": token}).status_code == 302


def test_a_thiefs_view_of_the_pending_key_is_not_the_owners_next_key(app, logged_in_client):
    """Fault: the pending key lived on the account and survived a password change: a thief who saw it knew the
    owner's future key."""
    thief = app.test_client()
    AuthActions(thief).login()
    seen = enrolment_key(thief)
    changed = post_form(
        logged_in_client,
        "/account/password",
        {"current_password": PASSWORD, "password": OTHER_PASSWORD, "confirm": OTHER_PASSWORD},
        token_page="/account",
    )
    assert changed.status_code == 302
    assert enrolment_key(logged_in_client) != seen


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/account/password", {"current_password": PASSWORD, "password": OTHER_PASSWORD, "confirm": OTHER_PASSWORD}),
        ("/account/email", {"email-email": "new@example.org", "email-current_password": PASSWORD}),
        ("/account/sessions", {"everywhere-current_password": PASSWORD}),
    ],
)
def test_a_pending_key_is_forgotten_after_a_change_of_the_account(logged_in_client, path, fields):
    seen = enrolment_key(logged_in_client)
    assert post_form(logged_in_client, path, fields, token_page="/account").status_code == 302
    assert enrolment_key(logged_in_client) != seen


def test_enrolment_page_draws_the_qr_inline_and_writes_nothing(app, logged_in_client, tmp_path):
    before = files_under(tmp_path, app.static_folder)
    page = logged_in_client.get("/account/two-factor").text
    assert 'src="data:image/svg+xml' in page
    assert {os.path.basename(path) for path in files_under(tmp_path, app.static_folder) - before} <= {"secureshare.db-wal"}


def test_key_and_recovery_codes_are_not_stored_in_clear(app, two_factor):
    key, codes = two_factor
    stored = repr(database_snapshot(app))
    assert key not in stored and key.lower() not in stored
    for code in codes:
        assert code not in stored and code.replace("-", "") not in stored
    assert get_user(app).totp_key_sealed


def test_sign_in_needs_the_code(app, client, auth, two_factor, clock):
    key, _codes = two_factor
    auth.logout()
    assert auth.login().headers["Location"] == "/login/code"
    assert client.get("/dashboard").status_code == 302  # the password alone signs nobody in
    assert client.get("/login/code").status_code == 200
    response = post_form(client, "/login/code", {"code": code_at(key, clock)})
    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard"
    assert client.get("/dashboard").status_code == 200


def test_a_code_works_only_once(client, auth, two_factor, clock):
    key, _codes = two_factor
    code = code_at(key, clock)
    assert sign_in_with_code(client, auth, code).status_code == 302
    replay = sign_in_with_code(client, auth, code)
    assert replay.status_code == 400
    assert client.get("/dashboard").status_code == 302


def test_one_step_of_skew_is_accepted_and_two_are_refused(client, auth, two_factor, clock):
    key, _codes = two_factor
    clock.advance(minutes=10)
    assert sign_in_with_code(client, auth, code_at(key, clock, -2)).status_code == 400
    assert post_form(client, "/login/code", {"code": code_at(key, clock, -1)}).status_code == 302
    assert sign_in_with_code(client, auth, code_at(key, clock, 2)).status_code == 400
    assert post_form(client, "/login/code", {"code": code_at(key, clock, 1)}).status_code == 302


def test_recovery_codes_work_once_in_the_code_field(app, client, auth, two_factor):
    _key, codes = two_factor
    assert sign_in_with_code(client, auth, codes[0].upper()).status_code == 302
    flashed = "You signed in with a recovery code, which now no longer works. You have 9 recovery codes left"
    assert flashed in client.get("/dashboard").text
    assert "9 recovery codes left" in client.get("/account").text
    assert sign_in_with_code(client, auth, codes[0]).status_code == 400


def test_the_code_step_expires_and_needs_a_password_first(client, auth, two_factor, clock):
    key, _codes = two_factor
    auth.logout()
    no_password = post_form(client, "/login/code", {"code": code_at(key, clock)}, token_page="/login")
    assert no_password.status_code == 302 and no_password.headers["Location"] == "/login"
    auth.login()
    clock.advance(minutes=6)
    late = post_form(client, "/login/code", {"code": code_at(key, clock)}, token_page="/login")
    assert late.status_code == 302 and late.headers["Location"] == "/login"
    assert client.get("/dashboard").status_code == 302


def test_new_recovery_codes_need_password_and_code_and_replace_the_old(app, logged_in_client, two_factor, clock):
    key, old_codes = two_factor
    refused = post_form(logged_in_client, "/account/two-factor/recovery-codes", {"current_password": PASSWORD})
    assert refused.status_code == 400
    assert not RECOVERY_RE.findall(refused.text)
    page = post_form(
        logged_in_client, "/account/two-factor/recovery-codes", {"current_password": PASSWORD, "code": code_at(key, clock)}
    )
    new_codes = RECOVERY_RE.findall(page.text)
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(RecoveryCode.id))) == 10


def test_turning_off_needs_password_and_code(app, logged_in_client, two_factor, clock):
    key, _codes = two_factor
    wrong_password = {"off-current_password": "not-it-at-all", "off-code": code_at(key, clock)}
    wrong = post_form(logged_in_client, "/account/two-factor/disable", wrong_password)
    assert wrong.status_code == 400
    assert get_user(app).two_factor_on
    right = post_form(
        logged_in_client, "/account/two-factor/disable", {"off-current_password": PASSWORD, "off-code": code_at(key, clock)}
    )
    assert right.status_code == 302
    user = get_user(app)
    assert not user.two_factor_on and user.totp_key_sealed is None
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(RecoveryCode.id))) == 0


def test_a_key_sealed_under_a_retired_server_key_fails_closed(app, client, auth, two_factor, clock):
    key, _codes = two_factor
    with app.app_context():
        db.session.execute(db.update(User).values(totp_key_id="gone"))
        db.session.commit()
    assert sign_in_with_code(client, auth, code_at(key, clock)).status_code == 400
