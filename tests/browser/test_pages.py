"""Every page, in both themes, on a phone and a desktop: no serious accessibility violations, and a screenshot
for reviewers in test-artifacts/screenshots/."""

import uuid

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from tests.browser import flows
from tests.browser.conftest import DESKTOP, PHONE, screenshot

AXE = Axe()


def assert_accessible(page, name: str) -> None:
    violations = AXE.run(page).response["violations"]
    serious = [
        f"{violation['id']} ({violation['impact']}): {[node['target'] for node in violation['nodes']][:3]}"
        for violation in violations
        if violation["impact"] in {"serious", "critical"}
    ]
    assert serious == [], f"{name}: {serious}"


def visit(page, name: str, path: str | None = None, status: int = 200) -> None:
    if path:
        response = page.goto(path)
        assert response.status == status, (name, response.status)
    assert_accessible(page, name)
    screenshot(page, name)


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_every_page(new_context, theme, viewport):
    shot = lambda name: f"{name}-{theme}"  # noqa: E731
    visitor = new_context(viewport=viewport, color_scheme=theme).new_page()
    visit(visitor, shot("index"), "/")
    visit(visitor, shot("register"), "/register")
    visitor.get_by_label("Username").fill("x")
    visitor.get_by_role("button", name="Create account").click()
    expect(visitor.get_by_text("Use 3 to 32 characters.")).to_be_visible()
    visit(visitor, shot("register-errors"))
    visit(visitor, shot("login"), "/login")
    visitor.get_by_role("link", name="Forgot password?").click()
    visit(visitor, shot("password-reset"))
    visitor.get_by_label("Username or email").fill("someone@example.org")
    visitor.get_by_role("button", name="Email me a link").click()
    expect(visitor.get_by_role("heading", name="Check your email")).to_be_visible()
    visit(visitor, shot("password-reset-sent"))
    visit(visitor, shot("link-dead"), "/password/reset/" + "A" * 43, status=410)
    visit(visitor, shot("not-found"), "/no/such/page", status=404)

    owner = new_context(viewport=viewport, color_scheme=theme).new_page()
    flows.register(owner, f"pages{uuid.uuid4().hex[:8]}")
    visit(owner, shot("dashboard-empty"), "/dashboard")
    visit(owner, shot("create"), "/create")
    owner.get_by_role("button", name="Create secret").click()
    expect(owner.get_by_text("Give it a title, so you both know what it is.")).to_be_visible()
    visit(owner, shot("create-errors"))
    flows.create_secret(owner, "Office Wi-Fi", blur_steps=2, max_views="2")
    visit(owner, shot("secret-detail"))
    link = owner.locator("#share-link").input_value()
    secret_path = owner.url.removeprefix(link.split("/view/")[0])
    visit(owner, shot("dashboard"), "/dashboard")
    visit(owner, shot("edit"), f"{secret_path}/edit")
    visit(owner, shot("delete"), f"{secret_path}/delete")
    visit(owner, shot("card"), f"{secret_path}/card")
    assert owner.goto(f"{secret_path}/qr.png").status == 200  # the viewer raises no CSP error (the console watch)
    visit(owner, shot("account"), "/account")
    visit(owner, shot("account-sessions"), "/account/sessions")
    visit(owner, shot("account-tokens"), "/account/tokens")
    owner.get_by_label("Name").fill("backup script")
    owner.get_by_label("Current password").fill(flows.ACCOUNT_PASSWORD)
    owner.get_by_role("button", name="Create token").click()
    owner.get_by_role("link", name="Revoke “backup script”").click()
    visit(owner, shot("account-confirm"))
    visit(owner, shot("account-two-factor"), "/account/two-factor")
    visit(owner, shot("account-webhooks"), "/account/webhooks")

    recipient = new_context(viewport=viewport, color_scheme=theme).new_page()
    visit(recipient, shot("view"), link)
    recipient.get_by_label("Password", exact=True).fill("not-the-password")
    recipient.get_by_role("button", name="Unlock").click()
    expect(recipient.get_by_text("tries left")).to_be_visible()
    visit(recipient, shot("view-wrong"))
    recipient.get_by_label("Password", exact=True).fill(flows.SECRET_PASSWORD)
    recipient.get_by_role("button", name="Unlock").click()
    visit(recipient, shot("view-unlocked"))
    recipient.get_by_role("button", name="Reveal").click()
    visit(recipient, shot("view-revealed"))
    recipient.reload()
    expect(recipient.get_by_text("this did not count as a view")).to_be_visible()
    visit(recipient, shot("view-reloaded"))

    owner.goto(f"{secret_path}/delete")
    owner.get_by_role("button", name="Delete secret").click()
    visit(owner, shot("dashboard-after-delete"))
    visit(recipient, shot("gone"), link, status=410)


# Titles that test a table: a key's name with no space in it, German compounds, Arabic (right to left), a long sentence.
LONG_TITLES = [
    "Office Wi-Fi",
    "Datenbank-Zugangsdaten für das Rechnungswesen-Abrechnungssystem",
    "Kundendienstmitarbeiterinnenschulungsunterlagen Passwort",
    "كلمة المرور الخاصة بشبكة المكتب اللاسلكية للضيوف والزوار",
    "Production PostgreSQL superuser password for the billing cluster (eu-west)",
    "AWS_SECRET_ACCESS_KEY_for_the_deployment_pipeline_service_account",
]
# What makes the dashboard hard to read: the table wider than its box, a row's actions on two lines, the page
# scrolling sideways.
DASHBOARD_LAYOUT = """(checkActions) => {
  const found = [];
  const table = document.querySelector(".secrets-table");
  const box = getComputedStyle(table.parentElement);
  const room = table.parentElement.clientWidth - parseFloat(box.paddingInlineStart) - parseFloat(box.paddingInlineEnd);
  if (table.getBoundingClientRect().width > room + 1) {
    found.push(`the table is ${table.getBoundingClientRect().width} px wide in ${room} px`);
  }
  if (checkActions) {
    document.querySelectorAll(".secrets-table .row-actions").forEach((actions, index) => {
      const lines = new Set([...actions.children].map((child) => Math.round(child.getBoundingClientRect().top)));
      if (lines.size > 1) found.push(`row ${index + 1}: its actions take ${lines.size} lines`);
    });
  }
  if (document.documentElement.scrollWidth > window.innerWidth + 1) {
    found.push(`the page scrolls sideways: ${document.documentElement.scrollWidth} > ${window.innerWidth}`);
  }
  return found;
}"""


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_the_dashboard_fits_long_titles_in_every_direction(new_context, viewport):
    owner = new_context(viewport=viewport).new_page()
    flows.register(owner, f"wide{uuid.uuid4().hex[:8]}")
    flows.post_secrets(owner, LONG_TITLES)
    for lang in ["en", "de", "ar"]:
        owner.goto("/dashboard")
        if lang != "en":
            flows.pick_language(owner, lang)
        assert owner.evaluate(DASHBOARD_LAYOUT, viewport == DESKTOP) == [], f"{lang} {viewport['width']}"
        screenshot(owner, f"dashboard-long-titles-{lang}")
    more = owner.locator(".row-menu summary").first
    more.click()
    expect(owner.locator(".row-menu-list").first).to_be_visible()
    owner.keyboard.press("Escape")
    expect(owner.locator(".row-menu-list").first).to_be_hidden()
    expect(more).to_be_focused()


BACKGROUNDS = {"light": "rgb(246, 247, 249)", "dark": "rgb(17, 19, 24)"}  # --bg of each palette


@pytest.mark.parametrize(("device", "picked"), [("light", "dark"), ("dark", "light")])
def test_a_picked_theme_beats_the_devices(new_context, device, picked):
    visitor = new_context(color_scheme=device).new_page()
    visitor.goto("/")
    background = lambda: visitor.evaluate("getComputedStyle(document.body).backgroundColor")  # noqa: E731
    assert background() == BACKGROUNDS[device]
    visitor.locator("#theme-menu").select_option(picked)
    visitor.locator("form:has(#theme-menu) button").click()
    expect(visitor.locator("html")).to_have_attribute("data-theme", picked)
    assert background() == BACKGROUNDS[picked]
    expect(visitor.locator('meta[name="color-scheme"]')).to_have_attribute("content", picked)
    assert_accessible(visitor, f"index picked {picked}")
    screenshot(visitor, f"index-picked-{picked}-on-{device}")
