"""Verified addresses, through a real SMTP server: sign-up sends a link, GET only asks and POST confirms, an email
change waits for the new address (and tells the old one), and under EMAIL_VERIFICATION=required an unconfirmed
account signs in and confirms but creates no secrets (page and API)."""

import pytest
from sqlalchemy import select

from app import create_app, db
from schema import User
from tests.helpers import PASSWORD, AuthActions, create_secret, make_config, post_form, secret_form
from tests.mailbox import confirm_address, deliver, link_path, only_message


@pytest.fixture
def config_overrides(mail_settings):
    return {**mail_settings, "EMAIL_VERIFICATION": "required"}


def stored_user(app) -> User:
    with app.app_context():
        user = db.session.execute(select(User)).scalar_one()
        db.session.expunge(user)
        return user


def test_sign_up_sends_a_link_that_asks_before_it_confirms(app, logged_in_client, mailbox):
    deliver(app)
    message = only_message(mailbox, "alice@example.org")
    assert message.subject == "Confirm your email address for SecureShare"
    path = link_path(message, "/email/verify/")
    page = logged_in_client.get(path)
    assert page.status_code == 200 and "Confirm alice@example.org" in page.text
    assert stored_user(app).email_verified_at is None  # a mail scanner opening the link confirms nothing
    assert post_form(logged_in_client, path, {}).status_code == 302
    assert stored_user(app).email_verified_at is not None
    assert logged_in_client.get(path).status_code == 410  # used


def test_required_verification_blocks_creating_secrets_until_confirmed(app, logged_in_client, mailbox):
    page = logged_in_client.get("/create")
    assert page.status_code == 200 and "First, confirm your email address" in page.text
    refused = post_form(logged_in_client, "/create", secret_form(), token_page="/dashboard")
    assert refused.status_code == 403
    body = {"title": "Deploy key", "content": "hunter2", "password": "open-sesame-42", "expires_in": 3600, "blur_level": 10}
    api = logged_in_client.post("/api/secrets", json=body, headers={"X-CSRFToken": csrf_of(logged_in_client)})
    assert api.status_code == 403 and api.json["error"]["reason"] == "email_unverified"
    confirm_address(logged_in_client, app, mailbox)
    assert create_secret(logged_in_client)


def csrf_of(client) -> str:
    from tests.helpers import csrf_token

    return csrf_token(client, "/dashboard")


def test_the_account_page_shows_the_state_and_resends(app, logged_in_client, mailbox):
    assert "Not confirmed" in logged_in_client.get("/account").text
    assert post_form(logged_in_client, "/account/email/verification", {}, token_page="/account").status_code == 302
    deliver(app)
    first, second = mailbox.to("alice@example.org")
    assert link_path(first, "/email/verify/") != link_path(second, "/email/verify/")
    assert logged_in_client.get(link_path(first, "/email/verify/")).status_code == 410  # only the newest link works
    confirm_address(logged_in_client, app, mailbox)
    assert "Confirmed" in logged_in_client.get("/account").text


def test_an_email_change_waits_for_the_new_address_and_tells_the_old_one(app, logged_in_client, mailbox):
    confirm_address(logged_in_client, app, mailbox)
    mailbox.received.clear()
    fields = {"email-email": "alice@new.example.org", "email-current_password": PASSWORD}
    response = post_form(logged_in_client, "/account/email", fields, token_page="/account")
    assert response.status_code == 302
    assert stored_user(app).email == "alice@example.org"  # not yet
    deliver(app)
    notice = only_message(mailbox, "alice@example.org")
    assert notice.subject == "Your SecureShare email is about to change"
    assert "alice@new.example.org" in notice.body
    assert "Waiting for alice@new.example.org to be confirmed" in logged_in_client.get("/account").text
    confirm_address(logged_in_client, app, mailbox, "alice@new.example.org")
    user = stored_user(app)
    assert (user.email, user.email_verified_at is not None) == ("alice@new.example.org", True)


def test_an_address_taken_meanwhile_is_not_switched_to(app, logged_in_client, mailbox):
    fields = {"email-email": "bob@example.org", "email-current_password": PASSWORD}
    post_form(logged_in_client, "/account/email", fields, token_page="/account")
    deliver(app)
    path = link_path(only_message(mailbox, "bob@example.org"), "/email/verify/")
    AuthActions(app.test_client()).register(username="bob", email="bob@example.org")
    refused = post_form(logged_in_client, path, {})
    assert refused.status_code == 400 and "That address now belongs to another account" in refused.text
    assert stored_user_named(app, "alice").email == "alice@example.org"


def stored_user_named(app, username: str) -> User:
    with app.app_context():
        return db.session.execute(select(User).filter_by(username=username)).scalar_one()


def test_an_unconfirmed_address_gets_no_security_notices(app, logged_in_client, mailbox):
    post_form(logged_in_client, "/account/tokens", {"name": "ci", "lifetime": "30d", "current_password": PASSWORD})
    deliver(app)
    assert [m.subject for m in mailbox.to("alice@example.org")] == ["Confirm your email address for SecureShare"]


def test_resending_is_limited_to_three_an_hour(tmp_path, clock, mail_settings, mailbox):
    settings = {**mail_settings, "EMAIL_VERIFICATION": "required", "RATELIMIT_ENABLED": True}
    limited = create_app(make_config(tmp_path, clock, **settings))
    with limited.app_context():
        db.create_all()
    client = limited.test_client()
    AuthActions(client).register()
    resend = [post_form(client, "/account/email/verification", {}, token_page="/account").status_code for _ in range(4)]
    assert resend == [302, 302, 302, 429]
    deliver(limited)
    assert len(mailbox.to("alice@example.org")) == 4  # the sign-up's link and three more
