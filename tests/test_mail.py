"""Sending email through a real SMTP server (aiosmtpd on 127.0.0.1): plain to a local relay, STARTTLS and TLS with a
throwaway CA; `flask mail test|deliver`; the mail settings checked at start; a message tried as soon as its answer
has gone out, and kept for the timer while the server is down."""

import pytest

from app import create_app, db
from tests.helpers import MAIL_SENDER, PASSWORD, AuthActions, free_port, make_config, post_form, production_config
from tests.mailbox import deliver, only_message
from tests.smtp_server import MailCatcher, smtp_server, throwaway_ca

START = "SecureShare will not start: "


@pytest.fixture
def config_overrides(mail_settings):
    return {**mail_settings, "EMAIL_VERIFICATION": "off"}  # every address may get notices: no link to follow first


def signed_in(app):
    client = app.test_client()
    AuthActions(client).register()
    return client


@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_mail_test_command_over_starttls_and_tls_checks_the_certificate(tmp_path, clock, mode):
    ca, ca_file = throwaway_ca(tmp_path)
    port, catcher = free_port(), MailCatcher()
    encryption = {"MAIL_USE_TLS": "true"} if mode == "starttls" else {"MAIL_USE_SSL": "true"}
    settings = {"MAIL_SERVER": "localhost", "MAIL_PORT": port, "MAIL_DEFAULT_SENDER": MAIL_SENDER, **encryption}
    trusting = create_app(make_config(tmp_path, clock, MAIL_CA_FILE=str(ca_file), **settings))
    untrusting = create_app(make_config(tmp_path, clock, **settings))  # the system's CAs only
    with smtp_server(port, catcher, mode, ca):
        refused = untrusting.test_cli_runner().invoke(args=["mail", "test", "ops@example.org"])
        sent = trusting.test_cli_runner().invoke(args=["mail", "test", "ops@example.org"])
    assert refused.exit_code == 1 and "Not sent: SSLCertVerificationError" in refused.output
    assert sent.exit_code == 0, sent.output
    assert "Sent a test message to ops@example.org through localhost." in sent.output
    assert [message.subject for message in catcher.to("ops@example.org")] == ["SecureShare test message"]


def test_mail_test_says_why_when_the_server_is_down(tmp_path, clock):
    settings = {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": free_port(), "MAIL_DEFAULT_SENDER": MAIL_SENDER}
    app = create_app(make_config(tmp_path, clock, **settings))
    result = app.test_cli_runner().invoke(args=["mail", "test", "ops@example.org"])
    assert result.exit_code == 1
    assert "Not sent: ConnectionRefusedError while sending to example.org." in result.output


def test_a_notice_is_sent_as_soon_as_the_answer_has_gone_out(app, mailbox):
    client = signed_in(app)
    fields = {"name": "backup", "lifetime": "30d", "current_password": PASSWORD}
    response = post_form(client, "/account/tokens", fields)
    assert response.status_code == 200
    assert mailbox.to("alice@example.org") == []  # not while the page is being answered
    response.close()  # the server closes the answer once it is sent
    notice = only_message(mailbox, "alice@example.org")
    assert notice.subject == "New SecureShare API token"
    assert 'named "backup"' in notice.body
    assert notice.message["From"] == MAIL_SENDER
    assert deliver(app).startswith("Sent 0, to retry 0, abandoned 0; 0 waiting")  # nothing left for the timer


def test_while_the_server_is_down_nothing_is_lost_and_the_log_names_no_mailbox(app, mailbox, log_text, clock):
    client = signed_in(app)
    mailbox.refuse = True
    post_form(client, "/account/tokens", {"name": "backup", "lifetime": "30d", "current_password": PASSWORD}).close()
    assert "Sent 0, to retry 1, abandoned 0; 1 waiting" not in deliver(app)  # not due yet: it was tried at once
    clock.advance(minutes=1)
    assert "Sent 0, to retry 1, abandoned 0; 1 waiting" in deliver(app)
    mailbox.refuse = False
    clock.advance(minutes=2)
    assert "Sent 1, to retry 0, abandoned 0; 0 waiting" in deliver(app)
    assert len(mailbox.to("alice@example.org")) == 1
    log = log_text()
    assert "the mail server answered 451 for a message to example.org" in log
    assert "alice@" not in log


def test_make_run_prints_each_message_and_its_links_to_the_terminal(tmp_path, clock, capfd):
    from config import DevelopmentConfig

    app = create_app(make_config(tmp_path, clock, base=DevelopmentConfig, KEY_DIR=tmp_path, TRUSTED_HOSTS=["localhost"]))
    assert app.config["EMAIL_VERIFICATION"].value == "optional"
    with app.app_context():
        from app import db

        db.create_all()
    client = app.test_client()
    AuthActions(client).register().close()
    printed = capfd.readouterr().out
    assert "Subject: Confirm your email address for SecureShare" in printed
    assert "To: alice@example.org" in printed
    assert "http://localhost/email/verify/" in printed


@pytest.mark.parametrize(
    ("settings", "advice"),
    [
        ({"MAIL_USE_TLS": "maybe"}, "MAIL_USE_TLS must be true or false, not 'maybe'."),
        ({"MAIL_USE_TLS": "true", "MAIL_USE_SSL": "true"}, "set MAIL_USE_TLS (STARTTLS, usually port 587) or MAIL_USE_SSL"),
        ({"MAIL_PORT": "smtp"}, "MAIL_PORT must be a port number, 1 to 65535, not 'smtp'."),
        ({"MAIL_PORT": "70000"}, "MAIL_PORT must be a port number"),
        ({"MAIL_SERVER": "smtp.example.org"}, "set MAIL_DEFAULT_SENDER to the address emails come from"),
        ({"MAIL_SERVER": "smtp.example.org", "MAIL_DEFAULT_SENDER": "a@example.org", "MAIL_USERNAME": "app"}, "set both"),
        ({"MAIL_CA_FILE": "/no/such/ca.pem"}, "MAIL_CA_FILE must name a file of CA certificates (PEM) that exists"),
        ({"EMAIL_VERIFICATION": "sometimes"}, "EMAIL_VERIFICATION must be required, optional or off, not 'sometimes'."),
        ({"WEBHOOK_ALLOW_PRIVATE": "perhaps"}, "WEBHOOK_ALLOW_PRIVATE must be true or false"),
    ],
)
def test_bad_mail_settings_refuse_to_start(tmp_path, clock, settings, advice):
    with pytest.raises(SystemExit) as refusal:
        create_app(make_config(tmp_path, clock, **settings))
    assert str(refusal.value).startswith(START)
    assert advice in str(refusal.value)


@pytest.mark.parametrize(
    ("settings", "advice"),
    [
        ({"MAIL_SERVER": "smtp.example.org"}, "MAIL_SERVER needs MAIL_USE_TLS=true (STARTTLS) or MAIL_USE_SSL=true"),
        ({"MAIL_SERVER": "smtp.example.org", "MAIL_USE_TLS": "yes"}, "set PUBLIC_BASE_URL when MAIL_SERVER is set"),
        ({"EMAIL_VERIFICATION": "required"}, "EMAIL_VERIFICATION=required needs a mail server"),
    ],
)
def test_production_refuses_plain_smtp_across_the_network_and_links_on_the_host_header(tmp_path, clock, settings, advice):
    with pytest.raises(SystemExit, match=advice.replace("(", r"\(").replace(")", r"\)")):
        create_app(production_config(tmp_path, clock, MAIL_DEFAULT_SENDER=MAIL_SENDER, **settings))


def test_production_mail_defaults(tmp_path, clock):
    without = create_app(production_config(tmp_path, clock))
    assert (without.config["MAIL_BACKEND"], without.config["EMAIL_VERIFICATION"].value) == (None, "off")
    relay = {"MAIL_SERVER": "127.0.0.1", "MAIL_DEFAULT_SENDER": MAIL_SENDER, "PUBLIC_BASE_URL": "https://secrets.example.org"}
    local = create_app(production_config(tmp_path, clock, **relay))  # a relay on this host: plain text is allowed
    assert (local.config["MAIL_PORT"], local.config["EMAIL_VERIFICATION"].value) == (25, "required")
    starttls = create_app(production_config(tmp_path, clock, **relay, MAIL_USE_TLS="true"))
    assert starttls.config["MAIL_PORT"] == 587 and starttls.config["MAIL_USE_TLS"] is True


def test_without_a_mail_server_messages_still_name_a_sender(tmp_path, clock):
    """`make run` prints each message in its terminal: its From line must not read "None"."""
    app = create_app(make_config(tmp_path, clock, EMAIL_VERIFICATION="optional"))  # sign-up sends a link, as in make run
    with app.app_context():
        db.create_all()
    assert AuthActions(app.test_client()).register().status_code == 302
    deliver(app)
    senders = {message.from_email for message in app.extensions["mailman"].outbox}
    assert senders == {"SecureShare <secureshare@localhost>"}  # the confirmation link's message
