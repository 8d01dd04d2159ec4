"""Forgot password (OWASP's Forgot Password cheat sheet), through a real SMTP server: the same answer for every
spelling, a random single-use link for 30 minutes stored as a digest, the sign-up rules for the new password, the
second factor still asked, every session, device and API token ended, the owner told, and the link never logged."""

import re

import pytest
from sqlalchemy import select

import accounts
from app import db
from schema import AccountToken, ApiToken, TokenPurpose, User, UserSession, token_digest
from tests.helpers import OTHER_PASSWORD, PASSWORD, AuthActions, post_form
from tests.mailbox import confirm_address, deliver, link_path, only_message
from tests.test_two_factor import turn_on

NEW_PASSWORD = "copper-kettle-orchard-58"
@pytest.fixture
def config_overrides(mail_settings):
    return mail_settings


ANSWER = "If that is the username or email of an account with a confirmed address"


@pytest.fixture
def owner(app, client, mailbox):
    """Alice, signed up and with her address confirmed, then signed out: she forgot her password."""
    auth = AuthActions(client)
    auth.register()
    confirm_address(client, app, mailbox)
    auth.logout()
    mailbox.received.clear()
    return auth


def ask_for_link(client, login: str = "alice"):
    response = post_form(client, "/password/reset", {"login": login})
    response.close()  # the answer has gone out: the look-up and the email happen now
    return response


def reset_link(app, mailbox) -> str:
    deliver(app)
    resets = [message for message in mailbox.to("alice@example.org") if message.subject == "Reset your SecureShare password"]
    assert len(resets) == 1
    return link_path(resets[0], "/password/reset/")


def choose(client, path: str, password: str = NEW_PASSWORD, **fields):
    return post_form(client, path, {"password": password, "confirm": password, **fields}, token_page="/login")


def test_sign_in_page_links_to_forgot_password(client):
    assert '<a href="/password/reset">Forgot password?</a>' in client.get("/login").text


def test_a_person_who_forgot_the_password_gets_back_in(app, client, owner, mailbox):
    answer = ask_for_link(client, "Alice@Example.org")
    assert answer.status_code == 200 and ANSWER in answer.text
    message = only_message(mailbox, "alice@example.org")
    assert message.subject == "Reset your SecureShare password"
    assert "It works once, for 30 min." in message.body
    path = link_path(message, "/password/reset/")
    assert client.get(path).status_code == 200  # opening the link (or a mail scanner doing so) changes nothing
    response = choose(client, path)
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert owner.login(password=PASSWORD).status_code == 400
    assert owner.login(password=NEW_PASSWORD).status_code == 302
    deliver(app)
    assert [m.subject for m in mailbox.to("alice@example.org")][1] == "Your SecureShare password was reset"


@pytest.mark.parametrize("login", ["alice", "nobody", "nobody@example.org", "alice@example.org"])
def test_every_spelling_gets_the_same_words_and_status(client, owner, login):
    response = post_form(client, "/password/reset", {"login": login})
    assert response.status_code == 200
    reference = post_form(client, "/password/reset", {"login": "someone-else"})
    assert without_tokens(response.text) == without_tokens(reference.text)


def without_tokens(page: str) -> str:
    return re.sub(r'name="csrf_token"[^>]*>|<meta name="csrf-token"[^>]*>', "", page)


def test_an_unknown_account_gets_no_email_and_no_link(app, client, owner, mailbox):
    ask_for_link(client, "nobody@example.org")
    deliver(app)
    assert mailbox.received == []
    with app.app_context():
        assert db.session.execute(select(AccountToken)).first() is None


def test_an_unconfirmed_address_gets_no_reset_link(app, client, mailbox):
    """It may be someone else's (a typo at sign-up): a link there would hand them the account."""
    bob = AuthActions(client)
    bob.register(username="bob", email="bob@example.org")
    bob.logout()
    ask_for_link(client, "bob")
    deliver(app)
    assert [message.subject for message in mailbox.to("bob@example.org")] == ["Confirm your email address for SecureShare"]


def test_the_link_is_stored_as_a_digest_and_works_once(app, client, owner, mailbox):
    ask_for_link(client)
    path = reset_link(app, mailbox)
    token = path.rsplit("/", 1)[1]
    assert len(token) == 43  # 256 bits
    with app.app_context():
        stored = db.session.execute(select(AccountToken.token_hash)).scalar_one()
    assert stored == token_digest(token) and token not in stored
    assert choose(client, path).status_code == 302
    assert client.get(path).status_code == 410
    assert choose(client, path, OTHER_PASSWORD).status_code == 410
    assert owner.login(password=NEW_PASSWORD).status_code == 302


def test_of_two_requests_with_one_link_only_one_changes_the_password(app, client, owner, mailbox):
    """Both found the link before either used it: the guarded DELETE lets one through."""
    ask_for_link(client)
    token = reset_link(app, mailbox).rsplit("/", 1)[1]
    with app.app_context():
        first = accounts.find_link(db.session, token, TokenPurpose.PASSWORD_RESET, app.clock())
        second = accounts.find_link(db.session, token, TokenPurpose.PASSWORD_RESET, app.clock())
        db.session.expunge_all()
        assert accounts.reset_password(db.session, app.passwords, first, NEW_PASSWORD) is True
        assert accounts.reset_password(db.session, app.passwords, second, OTHER_PASSWORD) is False
    assert owner.login(password=NEW_PASSWORD).status_code == 302


def test_the_link_lasts_thirty_minutes(app, client, owner, mailbox, clock):
    ask_for_link(client)
    path = reset_link(app, mailbox)
    clock.advance(minutes=29, seconds=59)
    assert client.get(path).status_code == 200
    clock.advance(seconds=1)
    assert client.get(path).status_code == 410
    assert choose(client, path).status_code == 410


def test_links_die_when_the_password_changes(app, client, owner, mailbox):
    ask_for_link(client)
    path = reset_link(app, mailbox)
    owner.login()
    fields = {"current_password": PASSWORD, "password": OTHER_PASSWORD, "confirm": OTHER_PASSWORD}
    assert post_form(client, "/account/password", fields, token_page="/account").status_code == 302
    assert client.get(path).status_code == 410


def test_the_new_password_is_checked_like_at_sign_up(app, client, owner, mailbox):
    ask_for_link(client)
    path = reset_link(app, mailbox)
    weak = choose(client, path, "alicealice123")
    assert weak.status_code == 400 and "Too easy to guess." in weak.text
    assert choose(client, path, NEW_PASSWORD, confirm="something-else-entirely").status_code == 400
    assert client.get(path).status_code == 200  # a refused form spends nothing


def test_reset_ends_every_session_forgets_devices_and_revokes_api_tokens(app, client, owner, mailbox):
    other_browser = app.test_client()
    AuthActions(other_browser).login()
    token_fields = {"name": "ci", "lifetime": "30d", "current_password": PASSWORD}
    assert post_form(other_browser, "/account/tokens", token_fields).status_code == 200
    with app.app_context():
        epoch = db.session.execute(select(User.device_epoch)).scalar_one()
    ask_for_link(client)
    assert choose(client, reset_link(app, mailbox)).status_code == 302
    assert other_browser.get("/dashboard").status_code == 302  # signed out
    with app.app_context():
        assert db.session.execute(select(UserSession)).first() is None
        assert db.session.execute(select(ApiToken)).first() is None
        assert db.session.execute(select(User.device_epoch)).scalar_one() == epoch + 1


def test_with_two_factor_on_the_reset_asks_for_a_code(app, client, owner, mailbox, clock):
    import pyotp

    owner.login()
    key, _codes = turn_on(client, clock)
    clock.advance(seconds=90)  # that code's step is spent
    owner.logout()
    mailbox.received.clear()
    ask_for_link(client)
    path = reset_link(app, mailbox)
    assert "Two-factor sign-in is on" in client.get(path).text
    without = choose(client, path)
    assert without.status_code == 400 and "Enter the code from your authenticator app" in without.text
    assert choose(client, path, code="000000").status_code == 400
    assert choose(client, path, code=pyotp.TOTP(key).at(clock())).status_code == 302


def test_the_reset_path_never_reaches_a_log(app, client, owner, mailbox, log_text):
    ask_for_link(client)
    path = reset_link(app, mailbox)
    client.get(path)
    choose(client, path)
    token = path.rsplit("/", 1)[1]
    log = log_text()
    assert "reset link queued for alice" in log and "password reset for alice" in log
    assert token not in log


def test_the_reset_link_page_keeps_the_token_out_of_referers(client, app, owner, mailbox):
    ask_for_link(client)
    response = client.get(reset_link(app, mailbox))
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert 'src="http' not in response.text and 'href="http' not in response.text  # nothing from another site


def test_too_many_links_for_one_account_are_answered_alike_but_not_sent(app, client, owner, mailbox):
    for spelling in ("alice", "alice@example.org", "ALICE", "Alice"):
        assert ANSWER in ask_for_link(client, spelling).text
    deliver(app)
    assert len(mailbox.to("alice@example.org")) == accounts.RESET_LINKS_PER_HOUR
