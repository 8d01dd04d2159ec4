"""Webhooks: signed JSON to the owner's HTTPS endpoints through the outbox, checked by a real receiver on 127.0.0.1
(TLS with a throwaway CA) with the verification code docs/api.md gives; refused to private addresses when saved and
again when connecting; the OpenAPI document describes them."""

import http.server
import json
import re
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select

import webhooks
from app import db
from schema import OutboxMessage, WebhookEndpoint
from tests.helpers import PASSWORD, SECRET_CONTENT, SECRET_PASSWORD, create_secret, free_port, post_form, unlock
from tests.mailbox import deliver
from tests.smtp_server import server_context, throwaway_ca

API_DOC = Path(__file__).parents[1] / "docs" / "api.md"


def documented_signature_check():
    """The Python that docs/api.md gives receivers for checking a call: run as written."""
    block = re.search(r"```python\n(.*?signature_ok.*?)```", API_DOC.read_text(), re.DOTALL).group(1)
    namespace: dict = {}
    exec(block, namespace)  # noqa: S102 - our own documentation, checked by running it
    return namespace["signature_ok"]


class Receiver:
    """An HTTPS endpoint on 127.0.0.1 that records each call and answers `status` (200 by default)."""

    def __init__(self):
        self.calls: list[tuple[dict, bytes]] = []
        self.status = 200

    def handler(self):
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls.append((dict(self.headers), body))
                self.send_response(receiver.status)
                if receiver.status == 302:
                    self.send_header("Location", "https://127.0.0.1:1/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args):
                pass

        return Handler


@contextmanager
def https_receiver(ca, port: int):
    receiver = Receiver()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), receiver.handler())
    server.socket = server_context(ca).wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return throwaway_ca(tmp_path_factory.mktemp("webhook-ca"))


@pytest.fixture
def receiver(ca):
    port = free_port()
    with https_receiver(ca[0], port) as receiver:
        receiver.url = f"https://localhost:{port}/hooks/secureshare?source=test"
        yield receiver


@pytest.fixture
def config_overrides(ca):
    return {"WEBHOOK_ALLOW_PRIVATE": "true", "WEBHOOK_CA_FILE": str(ca[1])}  # the receiver is on loopback


def add_webhook(client, url: str):
    return post_form(client, "/account/webhooks", {"url": url, "current_password": PASSWORD})


def signing_secret(page: str) -> str:
    return re.search(r'id="webhook-secret" value="(whsec_[A-Za-z0-9_-]+)"', page).group(1)


def test_an_opened_secret_reaches_the_endpoint_signed_and_without_its_content(app, logged_in_client, recipient, receiver, clock):
    added = add_webhook(logged_in_client, receiver.url)
    assert added.status_code == 200 and "Copy it now: it won't be shown again." in added.text
    secret = signing_secret(added.text)
    assert "whsec_" not in logged_in_client.get("/account/webhooks").text  # shown once
    unique_id = create_secret(logged_in_client)
    unlock(recipient, unique_id).close()  # tried as soon as the answer has gone out
    [(headers, body)] = receiver.calls
    assert documented_signature_check()(secret, headers["X-SecureShare-Signature"], body, now=clock().timestamp())
    assert not documented_signature_check()("whsec_wrong", headers["X-SecureShare-Signature"], body, now=clock().timestamp())
    assert not documented_signature_check()(secret, headers["X-SecureShare-Signature"], body, now=clock().timestamp() + 301)
    event = json.loads(body)
    assert (headers["X-SecureShare-Event"], event["event"]) == ("secret.opened", "secret.opened")
    assert headers["X-SecureShare-Delivery"] == str(event["delivery"])
    assert headers["Host"] == receiver.url.split("/")[2]  # the name, though the call went to the vetted address
    assert event["data"]["secret"]["title"] == "Office Wi-Fi" and event["data"]["visitor"]["network"] == "127.0.0.0/24"
    for leaked in (SECRET_CONTENT, SECRET_PASSWORD, unique_id):
        assert leaked not in body.decode()
    assert set(event) == set(app.test_client().get("/api/openapi.json").json["components"]["schemas"]["WebhookEvent"]["required"])


def test_the_address_and_secret_are_sealed_in_the_database(app, logged_in_client, receiver):
    secret = signing_secret(add_webhook(logged_in_client, receiver.url).text)
    with app.app_context():
        row = db.session.execute(select(WebhookEndpoint)).scalar_one()
    assert row.host == "localhost"
    assert b"hooks" not in row.url_sealed and secret.encode() not in row.secret_sealed


@pytest.mark.parametrize("status", [500, 302])
def test_a_refused_call_is_retried_later_and_a_redirect_is_not_followed(app, logged_in_client, receiver, clock, status):
    add_webhook(logged_in_client, receiver.url)
    receiver.status = status
    post_form(logged_in_client, "/account/webhooks/1/test", {}, token_page="/account/webhooks").close()
    assert len(receiver.calls) == 1
    assert f"localhost answered {status}" in logged_in_client.get("/account/webhooks").text
    receiver.status = 200
    clock.advance(minutes=1)
    assert "Sent 1, to retry 0" in deliver(app)
    assert len(receiver.calls) == 2
    assert json.loads(receiver.calls[0][1])["delivery"] == json.loads(receiver.calls[1][1])["delivery"]


def test_the_endpoints_certificate_is_checked(app, logged_in_client, receiver):
    add_webhook(logged_in_client, receiver.url)
    app.config["WEBHOOK_CA_FILE"] = None  # the system's CAs only: the throwaway CA is not among them
    post_form(logged_in_client, "/account/webhooks/1/test", {}, token_page="/account/webhooks").close()
    assert receiver.calls == []
    assert "could not call localhost: SSLCertVerificationError" in logged_in_client.get("/account/webhooks").text


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.org/in",
        "https://localhost/in",
        "https://127.0.0.1/in",
        "https://10.1.2.3/in",
        "https://[::1]/in",
        "https://[::ffff:192.168.1.1]/in",
        "https://169.254.169.254/latest/meta-data",
        "https://user:pass@hooks.example.org/in",
    ],
)
def test_private_addresses_are_refused_when_saved(app, logged_in_client, url):
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False
    refused = add_webhook(logged_in_client, url)
    assert refused.status_code == 400
    with app.app_context():
        assert db.session.execute(select(WebhookEndpoint)).first() is None


def test_a_name_that_resolves_inside_is_refused_when_connecting(app, logged_in_client, receiver, log_text):
    """Saved while allowed (or through DNS that changed since): the call still never reaches a loopback address."""
    add_webhook(logged_in_client, receiver.url)
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False
    post_form(logged_in_client, "/account/webhooks/1/test", {}, token_page="/account/webhooks").close()
    assert receiver.calls == []
    assert "localhost resolves only to addresses SecureShare does not call" in log_text()
    assert "/hooks/secureshare" not in log_text()  # the address's path may hold a key: only the host is named


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("93.184.216.34", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("169.254.169.254", False),  # cloud metadata
        ("0.0.0.0", False),  # noqa: S104 - an address to refuse, not one to bind
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4 in IPv6
        ("::ffff:10.0.0.1", False),
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
    ],
)
def test_which_addresses_a_call_may_connect_to(address, allowed):
    assert webhooks.address_allowed(address, allow_private=False) is allowed


def test_removing_an_endpoint_drops_its_waiting_calls(app, logged_in_client, receiver):
    add_webhook(logged_in_client, receiver.url)
    post_form(logged_in_client, "/account/webhooks/1/test", {}, token_page="/account/webhooks")  # not closed: it waits
    assert post_form(logged_in_client, "/account/webhooks/1/delete", {}, token_page="/account/webhooks").status_code == 302
    with app.app_context():
        assert db.session.execute(select(OutboxMessage)).first() is None


def test_the_openapi_document_describes_every_event_and_header(client):
    document = client.get("/api/openapi.json").json
    assert set(document["webhooks"]) == {"secret.opened", "secret.destroyed", "secret.expired_unopened", "ping"}
    headers = {parameter["name"] for parameter in document["webhooks"]["secret.opened"]["post"]["parameters"]}
    assert headers == {webhooks.SIGNATURE_HEADER, webhooks.EVENT_HEADER, webhooks.DELIVERY_HEADER}
    assert "Webhooks" in client.get("/api/docs").text
