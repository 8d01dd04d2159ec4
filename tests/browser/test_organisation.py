"""An instance run for an organisation, in the browser: sign-up by invitation only, the first administrator made on
the command line, who invites someone from /admin; and a visitor sharing a secret without an account on a phone."""

import base64
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser import flows
from tests.browser.conftest import PHONE, REPO, ContextMaker, _require_chromium, screenshot
from tests.browser.test_pages import assert_accessible
from tests.helpers import serving_the_test_app

SITE_SETTINGS = {"REGISTRATION": "invite", "ANONYMOUS_SHARING": "on"}


@pytest.fixture(scope="module")
def org_site(tmp_path_factory):
    """The app under gunicorn with sign-up by invitation and sharing without an account; yield (URL, its folder)."""
    _require_chromium()
    run_dir = tmp_path_factory.mktemp("organisation")
    before = {name: os.environ.get(name) for name in SITE_SETTINGS}
    os.environ.update(SITE_SETTINGS)  # the served app reads them at start
    try:
        with serving_the_test_app(run_dir) as url:
            yield url, run_dir
    finally:
        for name, value in before.items():
            os.environ.pop(name) if value is None else os.environ.__setitem__(name, value)


@pytest.fixture
def org_context(browser, org_site, console):
    maker = ContextMaker(browser, org_site[0], console)
    yield maker
    maker.close()


def flask_users(run_dir: Path, url: str, *args: str) -> str:
    """Run `flask users ...` on the served app's database, as an operator would on the server."""
    env = {
        **os.environ,
        "SECURESHARE_TEST_DIR": str(run_dir),
        "SECURESHARE_TEST_HOST": url.removeprefix("http://"),
        "SECRET_KEY": secrets.token_hex(32),
        "ENCRYPTION_KEYS": "k1:" + base64.b64encode(os.urandom(32)).decode(),
    }
    command = [sys.executable, "-m", "flask", "--app", "tests.browser.serve", "users", *args]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_an_administrator_invites_someone_who_signs_up(org_site, org_context):
    url, run_dir = org_site
    stranger = org_context().new_page()
    stranger.goto("/register")  # first: the worker has made its tables once it answers (the command would race it)
    expect(stranger.get_by_text("takes new accounts by invitation only")).to_be_visible()
    made = flask_users(run_dir, url, "create", "root", "root@example.org", "--admin", "--password", flows.ACCOUNT_PASSWORD)
    assert "Made the administrator root" in made

    admin = org_context().new_page()
    flows.sign_in(admin, "root")
    admin.get_by_role("link", name="Admin").click()
    admin.wait_for_url("**/admin/")
    assert_accessible(admin, "admin-overview")
    admin.get_by_role("link", name="Invitations").click()
    admin.get_by_label("For one address only (optional)").fill("carol@example.org")
    admin.get_by_label("Current password").fill(flows.ACCOUNT_PASSWORD)
    admin.get_by_role("button", name="Make an invitation link").click()
    link = admin.locator("#invitation-link").input_value()
    assert "/invite/" in link
    screenshot(admin, "admin-invitation-made")

    invited = org_context(viewport=PHONE).new_page()
    invited.goto(link)
    expect(invited.get_by_text("You were invited to SecureShare")).to_be_visible()
    invited.get_by_label("Username").fill("carol")
    invited.get_by_label("Email").fill("carol@example.org")
    invited.get_by_label("Password", exact=True).fill(flows.ACCOUNT_PASSWORD)
    invited.get_by_label("Repeat password").fill(flows.ACCOUNT_PASSWORD)
    invited.get_by_role("button", name="Create account").click()
    invited.wait_for_url("**/dashboard")

    admin.goto("/admin/users")
    expect(admin.locator("#users").get_by_text("carol@example.org")).to_be_visible()
    assert_accessible(admin, "admin-users")
    screenshot(admin, "admin-users")
    admin.goto("/admin/audit")
    expect(admin.get_by_role("cell", name="Invitation used")).to_be_visible()
    assert_accessible(admin, "admin-audit")

    again = org_context().new_page()
    assert again.goto(link).status == 410  # used once, gone


def test_a_visitor_shares_without_an_account_on_a_phone(org_context):
    phone = {"viewport": PHONE, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
    visitor = org_context(**phone).new_page()
    visitor.goto("/create")
    expect(visitor.get_by_text("You are not signed in")).to_be_visible()
    assert_accessible(visitor, "anonymous-create")
    visitor.get_by_label("Title").fill("Door code")
    visitor.get_by_label("Secret", exact=True).fill(flows.SECRET_TEXT)
    visitor.get_by_label("Password for this secret").fill(flows.SECRET_PASSWORD)
    visitor.get_by_label("Repeat password").fill(flows.SECRET_PASSWORD)
    assert visitor.get_by_label("Maximum views").input_value() == "1"  # the instance's default
    visitor.get_by_role("button", name="Create secret").click()
    expect(visitor.get_by_text("Your secret is ready to share.")).to_be_visible()
    expect(visitor.get_by_role("heading", name="Share it")).to_be_visible()
    link = visitor.locator("#share-link").input_value()
    assert flows.decode_qr(visitor.locator("img.qr").screenshot()) == link
    manage = visitor.locator("#manage-link").input_value()
    assert "/manage/" in manage
    assert_accessible(visitor, "anonymous-created")
    screenshot(visitor, "anonymous-created")

    recipient = org_context(**phone).new_page()
    recipient.goto(link)
    recipient.get_by_label("Password", exact=True).fill(flows.SECRET_PASSWORD)
    recipient.get_by_role("button", name="Unlock").click()
    expect(recipient.get_by_role("heading", name="The secret shared with you")).to_be_visible()
    screenshot(recipient, "anonymous-opened")

    visitor.goto(manage)
    expect(visitor.locator("#secret-state")).to_have_text("Used up")
    assert_accessible(visitor, "anonymous-manage")
    screenshot(visitor, "anonymous-manage")
