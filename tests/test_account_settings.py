"""Account settings that need the password again: API tokens, email, password; and what each one ends."""

import re

from app import db
from schema import ApiToken
from tests.helpers import OTHER_PASSWORD, PASSWORD, AuthActions, post_form
from tests.test_accounts import get_user
from tests.test_api import bearer, issue_token
from tests.test_two_factor import code_at, turn_on


def token_works(app, token: str) -> bool:
    return app.test_client().get("/api/auth/check", headers=bearer(token)).status_code == 200


def change_password(client, keep_tokens: bool = False):
    data = {"current_password": PASSWORD, "password": OTHER_PASSWORD, "confirm": OTHER_PASSWORD}
    if keep_tokens:
        data["keep_tokens"] = "y"
    return post_form(client, "/account/password", data, token_page="/account")


def test_a_stolen_session_cannot_mint_an_api_token(app, logged_in_client):
    """Fault: an API token could be minted from a stolen session without the password."""
    for password in ("", "a-guess-at-the-password"):
        page = post_form(logged_in_client, "/account/tokens", {"name": "x", "lifetime": "30d", "current_password": password})
        assert page.status_code == 400
        assert 'id="api-token"' not in page.text
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(ApiToken.id))) == 0


def test_token_needs_the_code_too_when_two_factor_is_on(app, logged_in_client, clock):
    key, _codes = turn_on(logged_in_client, clock)
    fields = {"name": "ci", "lifetime": "30d", "current_password": PASSWORD}
    assert post_form(logged_in_client, "/account/tokens", fields).status_code == 400
    page = post_form(logged_in_client, "/account/tokens", {**fields, "code": code_at(key, clock)})
    assert page.status_code == 200 and 'id="api-token"' in page.text


def test_password_change_revokes_tokens_unless_kept(app, logged_in_client):
    """Fault: API tokens survived a password change."""
    token = issue_token(logged_in_client)
    assert change_password(logged_in_client).status_code == 302
    assert not token_works(app, token)


def test_password_change_can_keep_tokens(app, logged_in_client):
    token = issue_token(logged_in_client)
    assert change_password(logged_in_client, keep_tokens=True).status_code == 302
    assert token_works(app, token)


def test_sign_out_everywhere_revokes_tokens_and_says_so(app, logged_in_client):
    """Fault: API tokens survived 'sign out everywhere'."""
    token = issue_token(logged_in_client)
    assert "revoke API tokens" in logged_in_client.get("/account/sessions").text
    everywhere = {"everywhere-current_password": PASSWORD}
    assert post_form(logged_in_client, "/account/sessions", everywhere, token_page="/account/sessions").status_code == 302
    assert not token_works(app, token)
    assert logged_in_client.get("/dashboard").status_code == 200


def test_tokens_are_listed_and_revoked_one_by_one(app, logged_in_client):
    first = issue_token(logged_in_client, name="backup script")
    second = issue_token(logged_in_client, name="ci deploy")
    token_works(app, first)
    page = logged_in_client.get("/account/tokens").text
    assert "backup script" in page and "ci deploy" in page
    assert first not in page and second not in page
    first_id = re.search(r'data-token-id="(\d+)"[^<]*<h3>backup script', page).group(1)
    confirm = logged_in_client.get(f"/account/tokens/{first_id}/revoke")
    assert "Revoke the token “backup script”?" in confirm.text
    revoked = post_form(logged_in_client, f"/account/tokens/{first_id}/revoke", {"current_password": PASSWORD})
    assert revoked.status_code == 302
    assert not token_works(app, first)
    assert token_works(app, second)


def test_nobody_revokes_another_account_s_token(app, logged_in_client):
    token = issue_token(logged_in_client)
    with app.app_context():
        token_id = db.session.execute(db.select(ApiToken.id)).scalar_one()
    mallory = AuthActions(app.test_client())
    mallory.register(username="mallory", email="mallory@example.org")
    response = post_form(mallory.client, f"/account/tokens/{token_id}/revoke", {}, token_page="/account/tokens")
    assert response.status_code == 404
    assert token_works(app, token)


def test_tokens_expire_and_record_their_last_use(app, logged_in_client, clock):
    token = issue_token(logged_in_client, lifetime="30d")
    clock.advance(days=29, hours=23)
    assert token_works(app, token)
    with app.app_context():
        row = db.session.execute(db.select(ApiToken)).scalar_one()
        assert row.last_used_at == clock()
    clock.advance(hours=1)
    assert not token_works(app, token)
    assert logged_in_client.get("/account/tokens").status_code == 302  # the browser session ran out long ago
    AuthActions(logged_in_client).login()
    assert "Expired" in logged_in_client.get("/account/tokens").text


def test_email_change_needs_the_password(app, logged_in_client):
    fields = {"email-email": "alice@new.example.org", "email-current_password": "not-my-password"}
    refused = post_form(logged_in_client, "/account/email", fields, token_page="/account")
    assert refused.status_code == 400
    assert "That isn&#39;t your current password." in refused.text
    assert get_user(app).email == "alice@example.org"
    fields["email-current_password"] = PASSWORD
    assert post_form(logged_in_client, "/account/email", fields, token_page="/account").status_code == 302
    assert get_user(app).email == "alice@new.example.org"


def test_email_change_is_unique_in_any_case(app, logged_in_client):
    AuthActions(app.test_client()).register(username="bob", email="bob@example.org")
    fields = {"email-email": "BOB@example.org", "email-current_password": PASSWORD}
    refused = post_form(logged_in_client, "/account/email", fields, token_page="/account")
    assert refused.status_code == 400
    assert "already has an account" in refused.text
    assert get_user(app).email == "alice@example.org"
