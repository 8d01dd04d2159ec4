"""Keyboard alone: sign up, create a secret, share and unlock it with Tab, typing, arrows and Enter, and every
stop shows where the focus is."""

import uuid

from playwright.sync_api import expect

from tests.browser import flows
from tests.browser.conftest import PHONE

FOCUSED = """() => {
    const node = document.activeElement;
    const style = getComputedStyle(node);
    return {id: node.id, name: node.getAttribute('aria-label') || (node.innerText || '').trim(),
            outline: style.outlineStyle, width: parseFloat(style.outlineWidth)};
}"""


def tab_to(page, target: str, limit: int = 40) -> None:
    """Press Tab until the element with this id or name has focus; every stop on the way must show focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        assert focused["outline"] != "none" and focused["width"] >= 2, focused
        if target in (focused["id"], focused["name"]):
            return
    raise AssertionError(f"Tab never reached {target!r}")


def type_into(page, field_id: str, text: str) -> None:
    tab_to(page, field_id)
    page.keyboard.type(text)


def test_everything_with_the_keyboard_alone(new_context):
    username = f"keys{uuid.uuid4().hex[:8]}"
    page = new_context().new_page()
    page.goto("/register")
    type_into(page, "username", username)
    type_into(page, "email", f"{username}@example.org")
    type_into(page, "password", flows.ACCOUNT_PASSWORD)
    type_into(page, "confirm", flows.ACCOUNT_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/dashboard")

    tab_to(page, "Create a secret")
    page.keyboard.press("Enter")
    page.wait_for_url("**/create")
    type_into(page, "title", "Keyboard secret")
    type_into(page, "content", "typed without a mouse")
    type_into(page, "password", flows.SECRET_PASSWORD)
    type_into(page, "confirm", flows.SECRET_PASSWORD)
    tab_to(page, "expiration")
    page.keyboard.press("ArrowDown")  # 24 hours -> 7 days
    tab_to(page, "blur_level")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    tab_to(page, "Create secret")
    page.keyboard.press("Enter")
    page.wait_for_url("**/secrets/*")
    expect(page.get_by_text("12 px")).to_be_visible()
    expect(page.locator("dl").get_by_text("in 6 days 23 h")).to_be_visible()
    link = page.locator("#share-link").input_value()

    recipient = new_context(viewport=PHONE).new_page()
    recipient.goto(link)
    recipient.keyboard.type(flows.SECRET_PASSWORD)  # the password field has focus on arrival
    recipient.keyboard.press("Enter")
    expect(recipient.get_by_role("heading", name="The secret shared with you")).to_be_visible()
    recipient.wait_for_load_state("load")  # the heading shows while parsing; the deferred script binds the controls later
    tab_to(recipient, "Reveal")
    recipient.keyboard.press("Space")
    expect(recipient.get_by_role("button", name="Hide")).to_have_attribute("aria-pressed", "true")
    recipient.keyboard.press("Space")
    expect(recipient.get_by_role("button", name="Reveal")).to_have_attribute("aria-pressed", "false")


def test_skip_link_is_the_first_stop(new_context):
    page = new_context().new_page()
    page.goto("/")
    tab_to(page, "Skip to content", limit=1)
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
