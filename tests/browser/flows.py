"""What a person does in the browser, step by step, shared by the browser tests."""

import io

import zxingcpp
from PIL import Image
from playwright.sync_api import expect

ACCOUNT_PASSWORD = "violet-harbor-trumpet-42"
SECRET_PASSWORD = "open-sesame-42"
SECRET_TEXT = "wifi: CorridorGuest\npassword: tangerine-otter-917"


def register(page, username: str) -> None:
    page.goto("/register")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Email").fill(f"{username}@example.org")
    page.get_by_label("Password", exact=True).fill(ACCOUNT_PASSWORD)
    page.get_by_label("Repeat password").fill(ACCOUNT_PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/dashboard")


def sign_out(page) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login?signed_out=1")


def sign_in(page, username: str, remember: bool = False) -> None:
    page.goto("/login")
    page.get_by_label("Username or email").fill(username)
    page.get_by_label("Password", exact=True).fill(ACCOUNT_PASSWORD)
    if remember:
        page.get_by_label("Keep me signed in for 14 days").check()
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/dashboard")


def create_secret(
    page, title: str, blur_steps: int = 0, max_views: str = "", content: str = SECRET_TEXT, files: tuple = ()
) -> None:
    """Fill the create form; the blur slider is moved with the arrow keys, as a keyboard user would."""
    page.goto("/create")
    page.get_by_label("Title").fill(title)
    page.get_by_label("Secret", exact=True).fill(content)
    if files:
        page.get_by_label("Files").set_input_files(list(files))
    page.get_by_label("Password for this secret").fill(SECRET_PASSWORD)
    page.get_by_label("Repeat password").fill(SECRET_PASSWORD)
    slider = page.get_by_role("slider", name="Blur")
    slider.focus()
    for _ in range(abs(blur_steps)):
        slider.press("ArrowRight" if blur_steps > 0 else "ArrowLeft")
    page.get_by_label("Maximum views").fill(max_views)
    page.get_by_role("button", name="Create secret").click()
    page.wait_for_url("**/secrets/*")


def post_secrets(page, titles: list[str]) -> None:
    """Create a secret per title by posting the create form with the signed-in page's token: for a test about the
    dashboard, many secrets without typing each one."""
    token = page.locator("meta[name=csrf-token]").get_attribute("content")
    for title in titles:
        form = {"csrf_token": token, "title": title, "content": SECRET_TEXT, "password": SECRET_PASSWORD,
                "confirm": SECRET_PASSWORD, "expiration": "24h", "blur_level": "10", "max_views": "3"}
        answer = page.request.post("/create", form=form, max_redirects=0)
        assert answer.status == 302, (title, answer.status)  # to the new secret's page


def pick_language(page, lang: str) -> None:
    """Use the menu at the foot of the page, as a person would."""
    page.locator("#language-menu").select_option(lang)
    page.locator("form:has(#language-menu) button").click()
    expect(page.locator("html")).to_have_attribute("lang", lang.replace("_", "-"))


def decode_qr(png: bytes) -> str:
    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(results) == 1, f"found {len(results)} QR codes"
    return results[0].text
