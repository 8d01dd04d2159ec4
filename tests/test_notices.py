"""Notices to the owner, through a real SMTP server: security notices about the account, and each secret's own
choice of notifications (opened, destroyed, expired unopened). None holds a secret's content, link or password."""

import pytest

from tests.helpers import (
    OTHER_PASSWORD,
    PASSWORD,
    SECRET_CONTENT,
    SECRET_PASSWORD,
    AuthActions,
    create_secret,
    load_secret,
    post_form,
    unlock,
)
from tests.mailbox import deliver, only_message
from tests.test_two_factor import RECOVERY_RE, code_at, sign_in_with_code, turn_on

ALICE = "alice@example.org"


@pytest.fixture
def config_overrides(mail_settings):
    return {**mail_settings, "EMAIL_VERIFICATION": "off"}  # every address may get notices


def subjects(app, mailbox, address: str = ALICE) -> list[str]:
    deliver(app)
    return [message.subject for message in mailbox.to(address)]


def test_a_sign_in_from_a_new_device_is_told_with_its_device_and_network(app, logged_in_client, mailbox):
    auth = AuthActions(logged_in_client)
    auth.logout()
    auth.login()  # the browser that signed up: a known device
    assert subjects(app, mailbox) == []
    stranger = app.test_client()
    AuthActions(stranger).login()
    notice = only_message(mailbox, ALICE) if subjects(app, mailbox) else None
    assert notice.subject == "New sign-in to SecureShare"
    assert "Unknown device, network 127.0.0.0/24" in notice.body


@pytest.mark.parametrize(
    ("path", "fields", "subject"),
    [
        ("/account/password", {"password": OTHER_PASSWORD, "confirm": OTHER_PASSWORD}, "Your SecureShare password changed"),
        ("/account/email", {"email-email": "alice@new.example.org"}, "Your SecureShare email changed"),
        ("/account/tokens", {"name": "backup", "lifetime": "30d"}, "New SecureShare API token"),
    ],
)
def test_account_changes_are_told_to_the_address_they_had(app, logged_in_client, mailbox, path, fields, subject):
    password_field = "email-current_password" if path == "/account/email" else "current_password"
    response = post_form(logged_in_client, path, {**fields, password_field: PASSWORD}, token_page="/account")
    assert response.status_code in {200, 302}
    assert subjects(app, mailbox) == [subject]


def test_two_factor_notices(app, logged_in_client, mailbox, clock):
    key, first_codes = turn_on(logged_in_client, clock)
    assert subjects(app, mailbox) == []  # turning it on ends other sessions; the owner is at the keyboard
    fields = {"current_password": PASSWORD, "code": first_codes[0]}
    renewed = post_form(logged_in_client, "/account/two-factor/recovery-codes", fields)
    codes = RECOVERY_RE.findall(renewed.text)
    assert subjects(app, mailbox) == ["New SecureShare recovery codes"]
    auth = AuthActions(logged_in_client)
    for code in codes[:8]:
        assert sign_in_with_code(logged_in_client, auth, code).status_code == 302
    assert subjects(app, mailbox)[1:] == ["You have 2 recovery codes left"]  # told once two are left, not before
    off = {"off-current_password": PASSWORD, "off-code": code_at(key, clock)}
    assert post_form(logged_in_client, "/account/two-factor/disable", off, token_page="/account/two-factor").status_code == 302
    assert subjects(app, mailbox)[2:] == ["Two-factor sign-in is off"]


# --- a secret's notifications -------------------------------------------------------------------------------------------------


def secret_emails(app, mailbox) -> list:
    deliver(app)
    return [message for message in mailbox.to(ALICE) if message.subject.startswith("“")]  # “<title>” was ...


def assert_holds_nothing_secret(message, unique_id: str) -> None:
    for secret in (SECRET_CONTENT, SECRET_PASSWORD, unique_id):
        assert secret not in message.body and secret not in message.subject


@pytest.mark.parametrize(("choice", "told"), [("never", 0), ("first", 1), ("every", 2)])
def test_opened_is_told_never_the_first_time_or_every_time(app, logged_in_client, recipient, mailbox, choice, told):
    unique_id = create_secret(logged_in_client, notify_opened=choice, max_views="3")
    assert unlock(recipient, unique_id).status_code == 200
    assert unlock(recipient, unique_id).status_code == 200
    opened = secret_emails(app, mailbox)
    assert len(opened) == told
    for message in opened:
        assert message.subject == "“Office Wi-Fi” was opened"
        assert "network 127.0.0.0/24" in message.body
        assert_holds_nothing_secret(message, unique_id)


def test_destroyed_by_wrong_passwords_is_told(app, logged_in_client, recipient, mailbox):
    unique_id = create_secret(logged_in_client, notify_destroyed="y")
    for _ in range(5):
        unlock(recipient, unique_id, "not-the-password")
    [message] = secret_emails(app, mailbox)
    assert message.subject == "“Office Wi-Fi” was destroyed after 5 wrong passwords"
    assert_holds_nothing_secret(message, unique_id)


def test_expired_unopened_is_told_by_the_purge_and_opened_ones_are_not(app, logged_in_client, recipient, mailbox, clock):
    unopened = create_secret(logged_in_client, notify_unopened="y", notify_opened="never")
    opened = create_secret(logged_in_client, notify_unopened="y", notify_opened="never", title="Seen")
    unlock(recipient, opened)
    clock.advance(hours=24)
    assert "Expired 2" in app.test_cli_runner().invoke(args=["purge"]).output
    [message] = secret_emails(app, mailbox)
    assert message.subject == "“Office Wi-Fi” expired without being opened"
    assert_holds_nothing_secret(message, unopened)


def test_the_email_links_to_the_owners_page_by_number_only(app, logged_in_client, recipient, mailbox):
    unique_id = create_secret(logged_in_client, notify_opened="first")
    unlock(recipient, unique_id)
    [message] = secret_emails(app, mailbox)
    [page] = [link for link in message.links() if "/dashboard/" in link]
    path = "/" + page.split("/", 3)[3]
    assert path == f"/dashboard/{load_secret(app, unique_id).id}"
    assert logged_in_client.get(path).headers["Location"] == f"/secrets/{unique_id}"
    assert recipient.get(path).status_code == 302 and "/login" in recipient.get(path).headers["Location"]
    stranger = app.test_client()
    AuthActions(stranger).register(username="mallory", email="mallory@example.org")
    assert stranger.get(path).status_code == 404


def test_new_secrets_start_with_the_accounts_choices(app, logged_in_client):
    assert '<option selected value="first">' in logged_in_client.get("/create").text
    choices = {"notify-notify_opened": "every", "notify-notify_unopened": "y"}
    assert post_form(logged_in_client, "/account/notifications", choices, token_page="/account").status_code == 302
    page = logged_in_client.get("/create").text
    assert '<option selected value="every">' in page
    assert '<input class="checkbox" id="notify_destroyed"' in page  # unticked now (no `checked`)
    unique_id = create_secret(logged_in_client, notify_opened="every", notify_unopened="y")
    secret = load_secret(app, unique_id)
    assert (secret.notify_opened, secret.notify_destroyed, secret.notify_unopened) == ("every", False, True)


def test_api_secrets_take_the_accounts_choices(app, logged_in_client):
    from tests.helpers import csrf_token

    body = {"title": "Deploy key", "content": "hunter2", "password": "open-sesame-42", "expires_in": 3600, "blur_level": 10}
    headers = {"X-CSRFToken": csrf_token(logged_in_client, "/dashboard")}
    created = logged_in_client.post("/api/secrets", json=body, headers=headers)
    assert created.status_code == 201
    secret = load_secret(app, created.json["secret"]["id"])
    assert (secret.notify_opened, secret.notify_destroyed, secret.notify_unopened) == ("first", True, True)
