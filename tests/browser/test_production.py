"""The production path in a real browser: Chromium over https through nginx (deploy/nginx.conf) to gunicorn with 4
workers in production settings, on PostgreSQL with rate limits on Redis. Before the same-origin CSRF check replaced
Flask-WTF's Referer check, the very first form here (register) was refused with a 400."""

import gzip
import hashlib
import os
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import expect
from redis import Redis

from guards import HSTS_VALUE, SECURITY_HEADERS
from tests.browser import flows
from tests.browser.conftest import PHONE, ContextMaker, screenshot
from tests.browser.production import HttpsVisitor, send_raw

APP_HEADERS = {**SECURITY_HEADERS, "Strict-Transport-Security": HSTS_VALUE}
NEW_PASSWORD = "copper-kettle-orchard-58"


@pytest.fixture
def https_context(browser, production_site, console):
    """Browser contexts on the production site; the throwaway certificate is not in Chromium's trust store.

    Production hashing costs (64 MiB per sign-in) on 4 workers: pages get a minute, not 30 s, on a busy machine.
    """
    maker = ContextMaker(browser, production_site.url, console, timeout_ms=60_000, ignore_https_errors=True)
    yield maker
    maker.close()


class RefusedPosts:
    """Every POST a page sends that is answered with 4xx or 5xx: none is expected on the journey."""

    def __init__(self):
        self.answers: list[str] = []

    def watch(self, page) -> None:
        page.on("response", self._record)

    def _record(self, response) -> None:
        if response.request.method == "POST" and response.status >= 400:
            self.answers.append(f"{response.status} {response.url}")


def assert_host_only_secure(cookies: list[dict]) -> None:
    assert cookies, "expected cookies"
    for cookie in cookies:
        assert cookie["name"].startswith("__Host-"), cookie["name"]
        assert cookie["secure"] and cookie["httpOnly"] and cookie["path"] == "/", cookie["name"]


def test_whole_journey_over_https(production_site, https_context):
    refused = RefusedPosts()
    username = f"prod{uuid.uuid4().hex[:8]}"
    owner_context = https_context()
    owner = owner_context.new_page()
    refused.watch(owner)
    flows.register(owner, username)
    flows.sign_out(owner)
    flows.sign_in(owner, username, remember=True)
    assert {cookie["name"] for cookie in owner_context.cookies()} == {"__Host-session", "__Host-remember_token", "__Host-device"}
    assert_host_only_secure(owner_context.cookies())

    flows.create_secret(owner, "Server room door", max_views="1")
    expect(owner.get_by_text("Your secret is ready to share.")).to_be_visible()
    unique_id = owner.url.rsplit("/", 1)[1]
    link = flows.decode_qr(owner.locator("img.qr").screenshot())
    assert link == f"{production_site.url}/view/{unique_id}"
    assert link == owner.locator("#share-link").input_value()

    phone = https_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    recipient = phone.new_page()
    refused.watch(recipient)
    recipient.goto(link)
    recipient.get_by_label("Password", exact=True).fill(flows.SECRET_PASSWORD)
    recipient.get_by_role("button", name="Unlock").click()
    expect(recipient.get_by_text("From the sender, titled Server room door")).to_be_visible()
    recipient.get_by_role("button", name="Reveal").click()
    expect(recipient.locator("[data-secret-content]")).to_have_text(flows.SECRET_TEXT)
    assert recipient.locator("[data-secret-content]").evaluate("node => getComputedStyle(node).filter") == "none"
    assert phone.cookies() == []  # the recipient gets no cookie at all (issue 12)
    screenshot(recipient, "production-revealed")

    flows.sign_out(owner)
    assert refused.answers == []
    log = production_site.access_log.read_text()
    assert "POST /view/[id]" in log and "GET /secrets/[id]" in log
    assert unique_id not in log


def test_a_25_mib_file_goes_from_the_owners_browser_to_the_recipients_phone(production_site, https_context, tmp_path):
    """Through nginx's streaming upload and download locations (deploy/nginx.conf) to 4 workers and PostgreSQL."""
    attached = tmp_path / "backup.tar"
    attached.write_bytes(os.urandom(25 * 1024 * 1024))
    owner = https_context().new_page()
    flows.register(owner, f"files{uuid.uuid4().hex[:8]}")
    flows.create_secret(owner, "Backup", max_views="1", content="", files=(attached,))
    unique_id = owner.url.rsplit("/", 1)[1]
    expect(owner.get_by_text("1 file, 25.0 MiB")).to_be_visible()

    recipient = https_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2).new_page()
    recipient.goto(f"{production_site.url}/view/{unique_id}")
    recipient.get_by_label("Password", exact=True).fill(flows.SECRET_PASSWORD)
    recipient.get_by_role("button", name="Unlock").click()
    with recipient.expect_download(timeout=120_000) as download:
        recipient.get_by_role("link", name="backup.tar").click()
    assert download.value.suggested_filename == "backup.tar"
    received = Path(download.value.path()).read_bytes()
    assert hashlib.sha256(received).digest() == hashlib.sha256(attached.read_bytes()).digest()
    assert unique_id not in production_site.access_log.read_text()


def test_plain_http_is_redirected_to_https(production_site, https_context):
    page = https_context().new_page()
    page.goto(production_site.http_url + "/login?next=/dashboard")
    assert page.url == production_site.url + "/login?next=/dashboard"


def test_rate_limits_are_counted_in_redis(production_site):
    """Shared by the 4 workers (and by several hosts): the budget of the address nginx saw lives in Redis."""
    visitor = HttpsVisitor(production_site)
    visitor.get("/login")
    assert visitor.post("/login", {"login": f"nobody{uuid.uuid4().hex[:8]}", "password": "a guess"}).status == 400
    keys = Redis.from_url(production_site.redis_url).keys(f"*/{production_site.ratelimit_prefix}/127.0.0.1/guess-network/*")
    assert keys


def test_probes_answer_through_nginx(production_site):
    visitor = HttpsVisitor(production_site)
    for path in ("/healthz", "/readyz"):
        answer = visitor.get(path)
        assert (answer.status, answer.body.strip()) == (200, '{"status":"ok"}')


def assert_security_headers_once(answer) -> None:
    """Each of the app's security headers, with the app's value, exactly once (two CSPs would both apply)."""
    sent = {name: answer.headers.get_all(name) for name in APP_HEADERS}
    assert sent == {name: [value] for name, value in APP_HEADERS.items()}


@pytest.mark.parametrize(
    ("method", "headers", "status"),
    [
        ("POST", {"Content-Length": str(300 * 1024)}, 413),  # over client_max_body_size: nginx answers at once
        ("TRACE", {}, 405),  # nginx refuses TRACE itself
    ],
    ids=["413-body-too-large", "405-trace"],
)
def test_nginx_own_errors_carry_the_security_headers(production_site, method, headers, status):
    answer = send_raw(production_site, method, "/login", headers)
    assert answer.status == status
    assert b"<center>nginx</center>" in answer.body  # nginx's own page: the app never saw the request
    assert_security_headers_once(answer)


@pytest.mark.parametrize("path", ["/login", "/static/css/app.css", "/no-such-page"], ids=["page", "static", "app-404"])
def test_app_answers_carry_each_security_header_once(production_site, path):
    assert_security_headers_once(send_raw(production_site, "GET", path))


@pytest.mark.parametrize("path", ["/api/openapi.json", "/static/css/app.css", "/static/js/app.js"])
def test_public_documents_are_compressed(production_site, path):
    plain = send_raw(production_site, "GET", path)
    packed = send_raw(production_site, "GET", path, {"Accept-Encoding": "gzip"})
    assert (plain.status, packed.status) == (200, 200)
    assert plain.headers.get("Content-Encoding") is None
    assert packed.headers.get("Content-Encoding") == "gzip"
    assert gzip.decompress(packed.body) == plain.body
    assert len(packed.body) < len(plain.body) / 2


@pytest.mark.parametrize("path", ["/", "/login?next=/dashboard", "/register", f"/view/{'A' * 22}", "/api/docs?page=2"])
def test_pages_that_may_hold_secrets_are_never_compressed(production_site, path):
    """BREACH: a token or a secret beside text an attacker chose must not be compressed (deploy/nginx.conf)."""
    answer = send_raw(production_site, "GET", path, {"Accept-Encoding": "gzip"})
    assert answer.headers.get("Content-Encoding") is None


def test_a_person_who_forgot_the_password_gets_back_in_by_email(production_site, https_context):
    """Sign up, confirm the address, forget the password: "Forgot password?", the link from the captured message, a
    new password, and in. Each message goes out from the gunicorn worker right after its answer, through SMTP."""
    username = f"forgot{uuid.uuid4().hex[:8]}"
    address = f"{username}@example.org"
    page = https_context().new_page()
    flows.register(page, username)
    confirm = production_site.mailbox.wait_for(address, "Confirm your email address for SecureShare")
    page.goto(link_in(confirm, "/email/verify/"))
    page.get_by_role("button", name=f"Confirm {address}").click()
    expect(page.get_by_text(f"Thank you: {address} is confirmed.")).to_be_visible()
    flows.sign_out(page)

    page.get_by_role("link", name="Forgot password?").click()
    page.get_by_label("Username or email").fill(address)
    page.get_by_role("button", name="Email me a link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    reset = production_site.mailbox.wait_for(address, "Reset your SecureShare password")
    page.goto(link_in(reset, "/password/reset/"))
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Repeat new password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Save the new password").click()
    expect(page.get_by_text("Your password is changed and every device is signed out.")).to_be_visible()
    page.get_by_label("Username or email").fill(username)
    page.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/dashboard")
    production_site.mailbox.wait_for(address, "Your SecureShare password was reset")

    log = production_site.access_log.read_text()
    assert "POST /password/reset/[id]" in log and "POST /email/verify/[id]" in log
    for message, word in ((confirm, "/email/verify/"), (reset, "/password/reset/")):
        assert link_in(message, word).rsplit("/", 1)[1] not in log


def link_in(message, word: str) -> str:
    [link] = [link for link in message.links() if word in link]
    return link
