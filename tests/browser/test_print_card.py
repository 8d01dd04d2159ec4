"""The print card: one A4 or Letter page whose QR code is at least 4 cm wide and scans from the rendered page."""

import uuid

import pypdfium2
import pytest
import zxingcpp
from playwright.sync_api import expect

from tests.browser import flows

DPI = 150


@pytest.mark.parametrize("paper", ["A4", "Letter"])
def test_card_prints_on_one_page_and_scans(new_context, paper):
    page = new_context().new_page()
    flows.register(page, f"print{uuid.uuid4().hex[:8]}")
    flows.create_secret(page, "Front door", max_views="3")
    link = page.locator("#share-link").input_value()
    page.get_by_role("link", name="Print a card").click()
    expect(page.locator(".print-expiry time")).to_contain_text("UTC")  # the browser's zone, named (UTC here)
    page.get_by_label("Print the title on the card").check()  # off by default; the page reloads with it
    page.wait_for_url("**/card?title=1")
    page.emulate_media(media="print")
    pdf = pypdfium2.PdfDocument(page.pdf(format=paper, print_background=True))
    assert len(pdf) == 1
    image = pdf[0].render(scale=DPI / 72).to_pil()
    results = zxingcpp.read_barcodes(image)
    assert [result.text for result in results] == [link]
    position = results[0].position
    width_cm = (position.top_right.x - position.top_left.x) / DPI * 2.54
    assert width_cm >= 4
    text = pdf[0].get_textpage().get_text_range()
    assert "Front door" in text
    assert "The password is not on this card." in text
    assert flows.SECRET_PASSWORD not in text and "CorridorGuest" not in text
    assert "Print this card" not in text  # the toolbar stays on screen
    pdf.close()
