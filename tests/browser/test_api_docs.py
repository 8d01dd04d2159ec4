"""The API reference page, in both themes, on a phone and a desktop: readable, accessible, no console errors."""

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
    page.get_by_role("link", name="POST /api/secrets/{unique_id}/unlock").click()
    expect(page.locator("#api_unlock_secret")).to_be_in_viewport()
    no_overflow = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert no_overflow, "the page scrolls sideways"
