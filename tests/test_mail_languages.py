"""Emails in their addressee's language and time zone, whoever caused them: through a real SMTP server."""

import pytest

from tests.helpers import PASSWORD, create_secret, post_form, unlock
from tests.mailbox import deliver

BIA = "bia@example.org"


@pytest.fixture
def config_overrides(mail_settings):
    return {**mail_settings, "EMAIL_VERIFICATION": "off"}


def _sign_up_in_portuguese_in_sao_paulo(client) -> None:
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "pt-BR"
    form = {"username": "bia", "email": BIA, "password": PASSWORD, "confirm": PASSWORD, "time_zone": "America/Sao_Paulo"}
    assert post_form(client, "/register", form).status_code == 302


def test_the_owner_hears_of_an_opened_secret_in_her_language_and_zone_not_the_recipients(app, client, recipient, mailbox):
    _sign_up_in_portuguese_in_sao_paulo(client)
    unique_id = create_secret(client, notify_opened="first")  # the clock says 12:00 UTC: 09:00 in São Paulo
    recipient.environ_base["HTTP_ACCEPT_LANGUAGE"] = "ar"
    assert 'lang="ar"' in unlock(recipient, unique_id).text
    deliver(app)
    [message] = [m for m in mailbox.to(BIA) if "foi aberto" in m.subject]
    assert message.subject == "“Office Wi-Fi” foi aberto"
    assert message.body.startswith("Olá, bia,")
    assert "foi aberto em 28 de nov. de 2026 09:00 America/Sao_Paulo" in message.body
    assert "Ele foi visto 1 vez (sem limite)." in message.body
    assert "Dispositivo desconhecido" in message.body  # the recipient's device, named in Portuguese too


def test_a_reset_link_asked_for_from_an_english_browser_comes_in_the_accounts_language(app, client, mailbox):
    _sign_up_in_portuguese_in_sao_paulo(client)
    stranger = app.test_client()
    post_form(stranger, "/password/reset", {"login": "bia"}).close()  # the look-up and the email come after the answer
    deliver(app)
    [message] = [m for m in mailbox.to(BIA) if m.subject == "Redefina sua senha do SecureShare"]
    assert "Ele funciona uma única vez, por 30\xa0min." in message.body


def test_an_account_from_before_languages_gets_english_in_utc(app, logged_in_client, recipient, mailbox):
    unique_id = create_secret(logged_in_client, notify_opened="first")
    from app import db
    from schema import User

    with app.app_context():  # as migration 0007 leaves an account made before it
        db.session.execute(db.update(User).values(language=None, time_zone=None))
        db.session.commit()
    unlock(recipient, unique_id)
    deliver(app)
    [message] = [m for m in mailbox.to("alice@example.org") if "opened" in m.subject]
    assert "was opened on Nov 28, 2026, 12:00\u202fPM UTC" in message.body
