"""The API reference page, in both themes, on a phone and a desktop: readable, accessible, no console errors."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PHONE
from tests.browser.test_pages import visit


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_api_docs_page(new_context, theme, viewport):
    page = new_context(viewport=viewport, color_scheme=theme).new_page()
    visit(page, f"api-docs-{theme}", "/api/docs")
    expect(page.get_by_role("heading", name="SecureShare API")).to_be_visible()
    expect(page.get_by_role("heading", name="Answers every call can give")).to_have_count(1)
    expect(page.locator("code", has_text=re.compile(r"^rate_limited$"))).to_have_count(1)  # once, not under each call
    page.get_by_role("link", name="POST /api/secrets/{unique_id}/unlock").click()
    unlock = page.locator("#api_unlock_secret")
    expect(unlock).to_be_in_viewport()
    expect(unlock.locator("pre")).to_contain_text('-d \'{"password": "open-sesame-42"}\'')
    expect(unlock.locator("code", has_text=re.compile(r"^wrong_password$"))).to_be_visible()
    no_overflow = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert no_overflow, "the page scrolls sideways"


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_api_docs_page_in_german_keeps_the_reference_english(new_context, viewport):
    page = new_context(viewport=viewport, locale="de-DE").new_page()
    visit(page, "api-docs-de", "/api/docs")
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.get_by_text("Diese API-Referenz ist auf Englisch")).to_be_visible()
    expect(page.locator('[lang="en"]').get_by_role("heading", name="SecureShare API")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "the page scrolls sideways"
