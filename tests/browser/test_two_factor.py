"""Two-factor sign-in in the browser: turned on from the page's QR code and key, then used to sign in."""

import time
import uuid
from urllib.parse import unquote

import pyotp
from playwright.sync_api import expect

from tests.browser import flows
from tests.browser.conftest import PHONE, screenshot
from tests.browser.test_pages import assert_accessible


def test_turn_on_two_factor_then_sign_in_with_a_code(new_context):
    username = f"totp{uuid.uuid4().hex[:8]}"
    page = new_context(viewport=PHONE).new_page()
    flows.register(page, username)
    page.goto("/account")
    page.get_by_role("link", name="Turn on two-factor sign-in").click()
    page.wait_for_url("**/account/two-factor")

    key = page.get_by_label("Key").inner_text()
    link = page.get_by_role("link", name="Add to your authenticator app on this device").get_attribute("href")
    scanned = flows.decode_qr(page.get_by_role("img", name="QR code to add SecureShare to your authenticator app").screenshot())
    assert scanned.startswith("otpauth://totp/SecureShare:") and f"secret={key}" in scanned
    assert link == scanned  # the same enrolment, for the phone that shows this page
    assert page.get_by_label("Key").evaluate("node => node.scrollWidth <= node.clientWidth")  # whole at 390 px
    screenshot(page, "two-factor-setup")

    totp = pyotp.TOTP(key)
    page.get_by_label("Code from your authenticator app").fill(totp.now())
    page.get_by_label("Current password").fill(flows.ACCOUNT_PASSWORD)
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    codes = page.locator("#recovery-codes li")
    expect(codes).to_have_count(10)
    download = page.get_by_role("link", name="Download as a text file")
    assert download.get_attribute("download") == "secureshare-recovery-codes.txt"
    saved = unquote(download.get_attribute("href").removeprefix("data:text/plain;charset=utf-8,"))
    assert saved.splitlines()[1:] == codes.all_inner_texts()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy").click()
    assert page.evaluate("navigator.clipboard.readText()") == saved
    expect(page.get_by_text("Every other device has been signed out")).to_be_visible()
    assert_accessible(page, "two-factor-recovery-codes")
    screenshot(page, "two-factor-recovery-codes")

    flows.sign_out(page)
    page.goto("/login")
    page.get_by_label("Username or email").fill(username)
    page.get_by_label("Password", exact=True).fill(flows.ACCOUNT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/login/code")
    assert_accessible(page, "login-code")
    # The enrolment spent this time step's code: an app shows the next one within 30 s, one step ahead is accepted.
    page.get_by_label("Code from your authenticator app, or a recovery code").fill(totp.at(time.time() + 30))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/dashboard")

    page.goto("/account/sessions")
    expect(page.get_by_text("This device")).to_be_visible()
    screenshot(page, "sessions")
