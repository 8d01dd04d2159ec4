"""The main pages in Arabic (right to left) and German (long words) on a phone and a desktop: axe finds no serious
violation, no text overflows its box, and the page never scrolls sideways. Screenshots land in
test-artifacts/screenshots/ (languages-<lang>-<page>-<width>.png) for a person to look at."""

import urllib.request
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser import flows
from tests.browser.conftest import DESKTOP, PHONE, ContextMaker, _require_chromium, screenshot
from tests.browser.test_organisation import flask_users, org_context, org_site  # noqa: F401 - org_*: a site that shares without an account
from tests.browser.test_pages import assert_accessible
from tests.helpers import serving_the_test_app

# Elements whose text must stay inside their own box (inline elements have no box of their own: their parent counts).
OVERFLOWS = """() => {
  const found = [];
  if (document.documentElement.scrollWidth > window.innerWidth + 1) {
    found.push(`the page scrolls sideways: ${document.documentElement.scrollWidth} > ${window.innerWidth}`);
  }
  const boxes = "h1, h2, h3, p, li, dt, dd, td, th, label, legend, button, .button, .badge, select, .nav, .site-footer";
  for (const node of document.querySelectorAll(boxes)) {
    const style = getComputedStyle(node);
    if (style.display === "inline" || style.display === "none" || node.closest("[hidden], .sr-only")) continue;
    if (["auto", "scroll"].includes(style.overflowX)) continue;  // a box meant to scroll (a long link)
    if (node.scrollWidth > node.clientWidth + 1) {
      found.push(`${node.tagName.toLowerCase()}.${node.className}: "${node.textContent.trim().slice(0, 40)}" ` +
                 `${node.scrollWidth} > ${node.clientWidth}`);
    }
  }
  return found;
}"""


def check(page, lang: str, name: str, path: str | None = None, status: int = 200) -> None:
    if path:
        response = page.goto(path)
        assert response.status == status, (name, response.status)
    expect(page.locator("html")).to_have_attribute("lang", lang.replace("_", "-"))
    expect(page.locator("html")).to_have_attribute("dir", "rtl" if lang == "ar" else "ltr")
    assert_accessible(page, f"{lang} {name}")
    assert page.evaluate(OVERFLOWS) == [], f"{lang} {name}"
    screenshot(page, f"languages-{lang}-{name}")


@pytest.mark.parametrize("lang", ["ar", "de"])
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_the_main_pages_in_arabic_and_german(new_context, lang, viewport):
    owner = new_context(viewport=viewport, locale="en-US").new_page()
    flows.register(owner, f"lang{uuid.uuid4().hex[:8]}")
    flows.create_secret(owner, "Büro-WLAN", blur_steps=2, max_views="3")
    share_link = owner.locator("#share-link").input_value()
    secret_path = "/" + owner.url.split("/", 3)[3]
    flows.pick_language(owner, lang)
    check(owner, lang, "secret-detail")
    owner_pages = [
        ("dashboard", "/dashboard"), ("create", "/create"), ("card", f"{secret_path}/card"),
        ("edit", f"{secret_path}/edit"), ("delete", f"{secret_path}/delete"), ("account", "/account"),
        ("two-factor", "/account/two-factor"), ("sessions", "/account/sessions"), ("tokens", "/account/tokens"),
        ("webhooks", "/account/webhooks"),  # invitations: in the administrator's test (off for everyone else here)
    ]
    for name, path in owner_pages:
        check(owner, lang, name, path)

    recipient = new_context(viewport=viewport, locale=lang).new_page()
    view_path = "/" + share_link.split("/", 3)[3]
    check(recipient, lang, "index", "/")
    check(recipient, lang, "view", view_path)
    recipient.locator("#password").fill("not the password")
    recipient.locator(".unlock-form button[type=submit]").click()
    expect(recipient.locator("#password-error")).to_be_visible()
    check(recipient, lang, "view-wrong-password")
    recipient.locator("#password").fill(flows.SECRET_PASSWORD)
    recipient.locator(".unlock-form button[type=submit]").click()
    expect(recipient.locator("[data-secret-content]")).to_contain_text("CorridorGuest")
    check(recipient, lang, "revealed")
    check(recipient, lang, "not-found", "/no/such/page", status=404)
    check(recipient, lang, "link-dead", "/password/reset/" + "A" * 43, status=410)
    assert recipient.context.cookies() == []  # a visitor who never picked a language has no cookie

    newcomer = new_context(viewport=viewport, locale=lang).new_page()  # its forms' CSRF token is a session cookie
    for name, path in [("login", "/login"), ("register", "/register"), ("reset", "/password/reset")]:
        check(newcomer, lang, name, path)


@pytest.mark.parametrize("lang", ["ar", "de"])
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_sharing_without_an_account_in_arabic_and_german(request, lang, viewport):
    visitor = request.getfixturevalue("org_context")(viewport=viewport, locale=lang).new_page()
    check(visitor, lang, "anonymous-create", "/create")
    visitor.locator("#title").fill("Büro-WLAN")
    visitor.locator("#content").fill(flows.SECRET_TEXT)
    visitor.locator("#password").fill(flows.SECRET_PASSWORD)
    visitor.locator("#confirm").fill(flows.SECRET_PASSWORD)
    visitor.locator("form.form button[type=submit]").click()
    expect(visitor.locator("#manage-link")).to_be_visible()
    check(visitor, lang, "anonymous-manage")


@pytest.fixture(scope="module")
def admin_site(tmp_path_factory):
    """A site of its own with an administrator made on the command line, as an operator would, and an account with a
    long name they disabled there (the users list and the audit log have rows to show); yield its URL."""
    _require_chromium()
    run_dir = tmp_path_factory.mktemp("admin-languages")
    with serving_the_test_app(run_dir) as url:
        # The worker has made its tables once it answers (the commands would race it).
        urllib.request.urlopen(f"{url}/login", timeout=30).close()  # noqa: S310 - our own loopback server
        flask_users(run_dir, url, "create", "root", "root@example.org", "--admin", "--password", flows.ACCOUNT_PASSWORD)
        long_name = "maximilian.schwarzenberger"
        flask_users(run_dir, url, "create", long_name, f"{long_name}@example.org", "--password", flows.ACCOUNT_PASSWORD)
        flask_users(run_dir, url, "disable", long_name)
        yield url


@pytest.fixture
def admin_context(browser, admin_site, console):
    maker = ContextMaker(browser, admin_site, console)
    yield maker
    maker.close()


@pytest.mark.parametrize("lang", ["ar", "de"])
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_the_admin_pages_in_arabic_and_german(admin_context, lang, viewport):
    admin = admin_context(viewport=viewport, locale="en-US").new_page()
    flows.sign_in(admin, "root")
    flows.pick_language(admin, lang)
    check(admin, lang, "admin-overview", "/admin/")
    check(admin, lang, "admin-users", "/admin/users")
    expect(admin.locator("#users tbody tr")).to_have_count(2)
    check(admin, lang, "admin-enable", "/admin/users/2/enable")
    admin.goto("/admin/invitations")
    admin.locator("#email").fill("carol@example.org")
    admin.locator("#current_password").fill(flows.ACCOUNT_PASSWORD)
    admin.locator("form[action$='/account/invitations'] button[type=submit]").click()
    expect(admin.locator("#invitation-link")).to_be_visible()
    check(admin, lang, "admin-invitations", "/admin/invitations")
    check(admin, lang, "admin-audit", "/admin/audit")
    expect(admin.locator("#audit-events tr[data-action='invitation.created']").first).to_contain_text("carol@example.org")
