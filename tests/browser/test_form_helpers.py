"""The helpers on the forms: password generator, show/hide, custom expiry, blur preview, copy buttons, the time zone."""

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from tests.browser import flows


def signed_in_page(new_context, **options):
    page = new_context(**options).new_page()
    flows.register(page, f"helper{uuid.uuid4().hex[:8]}")
    return page


def test_generated_password_fills_both_fields_and_is_shown(new_context):
    page = signed_in_page(new_context)
    page.goto("/create")
    page.get_by_role("button", name="Generate a strong password").click()
    password = page.locator("#password")
    generated = password.input_value()
    assert len(generated) == 20
    assert page.locator("#confirm").input_value() == generated
    expect(password).to_have_attribute("type", "text")
    expect(page.get_by_text("A strong password is filled in.")).to_be_visible()
    page.get_by_role("button", name="Generate a strong password").click()
    assert password.input_value() != generated


def test_show_and_hide_password(new_context):
    page = new_context().new_page()
    page.goto("/login")
    field = page.get_by_label("Password", exact=True)
    toggle = page.get_by_role("button", name="Show password")
    toggle.click()
    expect(field).to_have_attribute("type", "text")
    expect(page.get_by_role("button", name="Hide password")).to_have_attribute("aria-pressed", "true")
    page.get_by_role("button", name="Hide password").click()
    expect(field).to_have_attribute("type", "password")


def test_custom_expiry_appears_only_when_chosen(new_context):
    page = signed_in_page(new_context)
    page.goto("/create")
    amount = page.get_by_label("Custom time")
    expect(amount).to_be_hidden()
    page.get_by_label("Expires after").select_option("custom")
    expect(amount).to_be_visible()
    page.get_by_label("Expires after").select_option("1h")
    expect(amount).to_be_hidden()


def test_blur_preview_follows_the_slider(new_context):
    page = signed_in_page(new_context)
    page.goto("/create")
    slider = page.get_by_role("slider", name="Blur")
    slider.focus()
    for _ in range(4):
        slider.press("ArrowRight")
    expect(page.locator("[data-blur-output]")).to_have_text("14 px")
    preview_filter = page.locator("[data-blur-preview]").evaluate("node => getComputedStyle(node).filter")
    assert preview_filter == "blur(14px)"


def test_copy_link_on_the_dashboard_says_it_copied(new_context, live_server):
    page = signed_in_page(new_context)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server)
    flows.create_secret(page, "Copy me")
    link = page.locator("#share-link").input_value()
    page.goto("/dashboard")
    page.get_by_role("button", name="Copy link").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    expect(page.locator("[data-copy-status]")).to_have_text("Link copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == link


def test_times_show_the_viewers_local_time(new_context):
    """Sign-up took the browser's time zone (static/js/app.js fills a hidden field): times are in it, named."""
    page = signed_in_page(new_context, timezone_id="Asia/Tokyo", locale="en-GB")
    flows.create_secret(page, "Tokyo")
    created = page.locator("dl time").first
    expect(created).to_have_text("just now")
    title = created.get_attribute("title")
    tokyo = datetime.fromisoformat(created.get_attribute("datetime")).astimezone(ZoneInfo("Asia/Tokyo"))
    assert title.endswith(f"{tokyo:%-I:%M}\u202f{tokyo:%p} Asia/Tokyo"), title
