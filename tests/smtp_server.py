"""A real SMTP server for the tests: aiosmtpd on 127.0.0.1, plain, with STARTTLS, or TLS from the first byte, with a
throwaway CA (trustme) whose certificate file the app is given as MAIL_CA_FILE."""

import email
import email.policy
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trustme
from aiosmtpd.controller import Controller

LINK_RE = re.compile(r"https?://\S+")


@dataclass
class Received:
    """One message as the server got it: the envelope's recipients and the parsed message."""

    recipients: list[str]
    message: email.message.EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"]).strip()  # a folded, encoded header may come back with a leading space

    @property
    def body(self) -> str:
        return self.message.get_content()

    def links(self) -> list[str]:
        return LINK_RE.findall(self.body)


@dataclass
class MailCatcher:
    """The messages the server accepted, in order; with `refuse` set it answers every message 451 (try later)."""

    received: list[Received] = field(default_factory=list)
    refuse: bool = False
    arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, _server, _session, envelope):
        if self.refuse:
            return "451 4.3.0 Try again later"
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.arrived:
            self.received.append(Received(list(envelope.rcpt_tos), parsed))
            self.arrived.notify_all()
        return "250 Message accepted"

    def to(self, address: str) -> list[Received]:
        return [message for message in self.received if address in message.recipients]

    def wait_for(self, address: str, subject: str, timeout: float = 60) -> Received:
        """Return the first message to `address` with `subject`, waiting until it arrives (another process sends it)."""
        with self.arrived:
            found = self.arrived.wait_for(
                lambda: [message for message in self.to(address) if message.subject == subject], timeout=timeout
            )
        assert found, f"no message {subject!r} to {address} within {timeout} s"
        return found[0]


def throwaway_ca(folder: Path) -> tuple[trustme.CA, Path]:
    """A CA that exists for one test run; return it and its certificate file (for MAIL_CA_FILE / WEBHOOK_CA_FILE)."""
    ca = trustme.CA()
    ca_file = folder / "test-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return ca, ca_file


def server_context(ca: trustme.CA):
    """The server side's TLS settings: a certificate for localhost and 127.0.0.1 signed by `ca`."""
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    return context


@contextmanager
def smtp_server(port: int, catcher: MailCatcher, mode: str = "plain", ca: trustme.CA | None = None):
    """Run aiosmtpd on 127.0.0.1:`port` until the block ends: mode "plain", "starttls" (required) or "tls"."""
    options = {}
    if mode == "starttls":
        options = {"tls_context": server_context(ca), "require_starttls": True}
    elif mode == "tls":
        options = {"ssl_context": server_context(ca), "server_hostname": "localhost"}
    controller = Controller(catcher, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()
