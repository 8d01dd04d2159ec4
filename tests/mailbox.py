"""Helpers for tests that send email through a real SMTP server (aiosmtpd on 127.0.0.1; the fixtures `smtp_port`,
`mailbox` and `mail_settings` are in conftest.py): deliver, find a message, follow its link."""

from tests.helpers import post_form
from tests.smtp_server import MailCatcher, Received


def deliver(app) -> str:
    """Run what the timer runs every minute: `flask mail deliver`; return its line."""
    result = app.test_cli_runner().invoke(args=["mail", "deliver"])
    assert result.exit_code == 0, result.output
    return result.output


def only_message(mailbox: MailCatcher, address: str) -> Received:
    found = mailbox.to(address)
    assert len(found) == 1, [message.subject for message in found]
    return found[0]


def link_path(message: Received, word: str) -> str:
    """Return the path of the one link in `message` that holds `word` (the site's own address cut off)."""
    links = [link for link in message.links() if word in link]
    assert len(links) == 1, message.body
    return "/" + links[0].split("/", 3)[3]


def confirm_address(client, app, mailbox: MailCatcher, address: str = "alice@example.org") -> None:
    """Open the newest verification link sent to `address` and press Confirm, as its owner would."""
    deliver(app)
    path = link_path(mailbox.to(address)[-1], "/email/verify/")
    assert post_form(client, path, {}).status_code == 302
