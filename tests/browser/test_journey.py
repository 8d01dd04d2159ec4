"""The main journey, as a person does it: from sign-up to the secret being used up."""

import uuid

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from tests.browser import flows
from tests.browser.conftest import PHONE, screenshot

BLURRED = "blur(12px)"


def content_filter(page) -> str:
    return page.locator("[data-secret-content]").evaluate("node => getComputedStyle(node).filter")


# Headless Chromium reports every tab as visible, even behind another one, so the page is told it was hidden
# exactly as the browser tells it: document.visibilityState turns 'hidden' and 'visibilitychange' fires.
HIDE_PAGE = """() => {
    Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'});
    Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});
    document.dispatchEvent(new Event('visibilitychange'));
}"""


def test_share_and_unlock_on_a_phone(new_context):
    username = f"journey{uuid.uuid4().hex[:8]}"
    owner = new_context().new_page()
    flows.register(owner, username)
    flows.sign_out(owner)
    flows.sign_in(owner, username)

    flows.create_secret(owner, "Office Wi-Fi", blur_steps=2, max_views="2")
    expect(owner.get_by_text("Your secret is ready to share.")).to_be_visible()
    owner.goto("/dashboard")
    row = owner.get_by_role("row", name="Office Wi-Fi")
    assert "Active" in row.inner_text() and "0 of 2" in row.inner_text()

    owner.get_by_role("link", name="Office Wi-Fi").click()
    link = flows.decode_qr(owner.locator("img.qr").screenshot())
    assert link == owner.locator("#share-link").input_value()
    assert "/view/" in link

    phone = new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    phone.grant_permissions(["clipboard-read", "clipboard-write"], origin=link.split("/view/")[0])
    recipient = phone.new_page()
    recipient.goto(link)
    assert "Office Wi-Fi" not in recipient.content()
    recipient.get_by_label("Password", exact=True).fill("not-the-password")
    recipient.get_by_role("button", name="Unlock").click()
    expect(recipient.get_by_text("That password isn't right. 4 tries left")).to_be_visible()

    recipient.get_by_label("Password", exact=True).fill(flows.SECRET_PASSWORD)
    recipient.get_by_role("button", name="Unlock").click()
    expect(recipient.get_by_role("heading", name="The secret shared with you")).to_be_visible()
    expect(recipient.get_by_text("From the sender, titled Office Wi-Fi")).to_be_visible()  # only now, as the form says
    expect(recipient.get_by_text("Views: 1 of 2")).to_be_visible()
    assert content_filter(recipient) == BLURRED
    screenshot(recipient, "journey-unlocked-blurred")

    toggle = recipient.get_by_role("button", name="Reveal")
    toggle.click()
    assert content_filter(recipient) == "none"
    assert recipient.get_by_role("button", name="Hide").get_attribute("aria-pressed") == "true"
    recipient.get_by_role("button", name="Hide").click()
    assert content_filter(recipient) == BLURRED

    recipient.get_by_role("button", name="Reveal").focus()
    recipient.keyboard.press("Enter")
    assert content_filter(recipient) == "none"
    assert recipient.locator("[data-reveal-status]").inner_text() == "Secret revealed."

    recipient.evaluate(HIDE_PAGE)
    assert content_filter(recipient) == BLURRED

    recipient.get_by_role("button", name="Copy").click()
    expect(recipient.get_by_role("button", name="Copied")).to_be_visible()
    assert recipient.evaluate("navigator.clipboard.readText()") == flows.SECRET_TEXT
    assert content_filter(recipient) == BLURRED  # copying never reveals

    second = phone.new_page()
    second.goto(link)
    second.get_by_label("Password", exact=True).fill(flows.SECRET_PASSWORD)
    second.get_by_role("button", name="Unlock").click()
    expect(second.get_by_text("This was the last view.")).to_be_visible()
    expect(second.get_by_text("Views: 2 of 2")).to_be_visible()

    third = phone.new_page()
    response = third.goto(link)
    assert response.status == 410
    expect(third.get_by_role("heading", name="This secret is no longer available")).to_be_visible()

    owner.goto("/dashboard")
    row = owner.get_by_role("row", name="Office Wi-Fi")
    assert "Used up" in row.inner_text() and "2 of 2" in row.inner_text()


def test_hold_to_reveal_and_idle_reblur(new_context):
    owner = new_context().new_page()
    flows.register(owner, f"hold{uuid.uuid4().hex[:8]}")
    flows.create_secret(owner, "Hold me", blur_steps=2)
    link = owner.locator("#share-link").input_value()
    context = new_context(viewport=PHONE)
    recipient = context.new_page()
    recipient.clock.install()
    recipient.goto(link)
    recipient.get_by_label("Password", exact=True).fill(flows.SECRET_PASSWORD)
    recipient.get_by_role("button", name="Unlock").click()
    box = recipient.locator("[data-reveal]").bounding_box()
    recipient.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    recipient.mouse.down()
    recipient.clock.run_for(400)
    assert content_filter(recipient) == "none"
    recipient.mouse.up()
    assert content_filter(recipient) == BLURRED

    recipient.get_by_role("button", name="Reveal").click()
    recipient.clock.run_for(29_000)
    assert content_filter(recipient) == "none"
    recipient.clock.run_for(2_000)
    assert content_filter(recipient) == BLURRED


def _unlocked_page(new_context, title: str, content: str = flows.SECRET_TEXT):
    owner = new_context().new_page()
    flows.register(owner, f"leave{uuid.uuid4().hex[:8]}")
    flows.create_secret(owner, title, content=content)
    link = owner.locator("#share-link").input_value()
    recipient = new_context(viewport=PHONE).new_page()
    recipient.goto(link)
    field, show = recipient.get_by_label("Password", exact=True), recipient.get_by_role("button", name="Show password")
    assert field.bounding_box()["height"] == show.bounding_box()["height"]  # the Show button matches its field
    field.fill(flows.SECRET_PASSWORD)
    recipient.get_by_role("button", name="Unlock").click()
    expect(recipient.locator("[data-secret-content]")).to_contain_text(content.split()[0])
    return recipient


def test_the_revealed_text_breaks_only_where_it_does_and_shows_its_whitespace(new_context):
    text = "correct-horse-battery-staple-and-a-much-longer-line-than-a-phone-shows \ttrailing  \nsecond line"
    recipient = _unlocked_page(new_context, "Long line", content=text)
    recipient.context.grant_permissions(["clipboard-read", "clipboard-write"])
    lines = recipient.locator("[data-secret-content]").evaluate(
        "node => { const range = document.createRange(); range.selectNodeContents(node);"
        " return new Set(Array.from(range.getClientRects(), (rect) => Math.round(rect.top))).size; }"
    )
    assert lines == 2  # at 390 px, the long first line scrolls instead of breaking at its hyphens
    recipient.get_by_role("button", name="Show spaces").click()
    assert recipient.locator("[data-secret-content] .ws-space").count() == text.count(" ")
    assert recipient.locator("[data-secret-content] .ws-tab").count() == 1
    assert recipient.locator("[data-secret-content] .ws-eol").count() == 1
    recipient.get_by_role("button", name="Copy").click()
    assert recipient.evaluate("navigator.clipboard.readText()") == text  # the marks are not copied
    recipient.get_by_role("button", name="Hide spaces").click()
    assert recipient.locator("[data-secret-content] span").count() == 0


def test_leaving_the_page_clears_the_secret(new_context):
    recipient = _unlocked_page(new_context, "Leave me")
    recipient.evaluate("window.dispatchEvent(new PageTransitionEvent('pagehide', {persisted: true}))")
    assert recipient.locator("[data-secret-content]").inner_text() == ""


def test_the_back_button_cannot_show_it_again(new_context):
    recipient = _unlocked_page(new_context, "Go back")
    recipient.goto("/")
    with pytest.raises(PlaywrightError, match="ERR_CACHE_MISS"):
        recipient.go_back()  # no-store: the browser will not redisplay the unlocked page
    expect(recipient.locator("body")).not_to_contain_text("CorridorGuest")


def test_reloading_the_revealed_secret_spends_no_view_and_the_recipient_can_end_it(new_context):
    recipient = _unlocked_page(new_context, "Reload me")
    expect(recipient.get_by_text("Views: 1 of")).to_be_visible()
    recipient.reload()  # the browser posts the same form again
    expect(recipient.locator("[data-secret-content]")).to_contain_text("CorridorGuest")
    expect(recipient.get_by_text("this did not count as a view")).to_be_visible()
    expect(recipient.get_by_text("Views: 1 of")).to_be_visible()
    recipient.get_by_role("button", name="I have it: destroy it now").click()
    expect(recipient.get_by_role("heading", name="The secret is destroyed")).to_be_visible()
    assert recipient.context.cookies() == []  # the recipient's page still sets no cookie
