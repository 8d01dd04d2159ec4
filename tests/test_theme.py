"""The theme menu: the device's theme until someone picks one; a visitor's pick in a cookie set only then, a signed-in
user's on the account; values off the menu refused; and the page goes back only to this site."""

import re

import pytest

from schema import User
from tests.helpers import AuthActions, create_secret, post_form

SIGNED_IN_MENU = "/account/theme"


def _theme_of(app, username="alice") -> str | None:
    from app import db

    with app.app_context():
        return db.session.execute(db.select(User.theme).filter_by(username=username)).scalar_one()


def _shows_theme(page, theme: str, color_scheme: str) -> bool:
    text = page.get_data(as_text=True)
    return (
        f'data-theme="{theme}"' in text
        and f'<meta name="color-scheme" content="{color_scheme}">' in text
        and f'<option value="{theme}" selected>' in text
    )


def test_a_visitor_who_picks_nothing_gets_the_devices_theme_and_no_cookie(logged_in_client, recipient):
    unique_id = create_secret(logged_in_client)
    for path in ("/", f"/view/{unique_id}"):
        page = recipient.get(path)
        assert page.status_code == 200 and "Set-Cookie" not in page.headers, path
        assert _shows_theme(page, "system", "light dark"), path


def test_picking_a_theme_on_the_recipients_page_sets_the_cookie_and_shows_the_page_again(logged_in_client, recipient):
    unique_id = create_secret(logged_in_client)
    picked = recipient.get(f"/view/{unique_id}?theme=dark")
    assert picked.status_code == 303
    assert picked.headers["Location"] == f"/view/{unique_id}"
    cookie = picked.headers["Set-Cookie"]
    assert cookie.startswith("theme=dark;") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert _shows_theme(recipient.get(f"/view/{unique_id}"), "dark", "dark")
    assert _shows_theme(recipient.get("/"), "dark", "dark")  # remembered on every page


def test_the_menu_keeps_the_rest_of_the_address_and_both_menus_can_be_picked_at_once(client):
    picked = client.get("/login?theme=light&lang=de&next=/dashboard")
    assert picked.status_code == 303 and picked.headers["Location"] == "/login?next=%2Fdashboard"
    assert sorted(cookie.split(";")[0] for cookie in picked.headers.getlist("Set-Cookie")) == ["lang=de", "theme=light"]
    page = client.get("/login")
    assert _shows_theme(page, "light", "light") and 'lang="de"' in page.text


def _menu_forms(page) -> list[str]:
    return re.findall(r'<form method="(?:get|post)"[^>]*class="foot-menu">.*?</form>', page.get_data(as_text=True), re.S)


def test_the_menus_send_the_rest_of_the_address_along(app, logged_in_client):
    # A session that ran out leads to /login?next=...: a pick there must not lose the way back after signing in.
    visitor = app.test_client()
    forms = _menu_forms(visitor.get("/login?next=/account%3Fx%3D1"))
    assert len(forms) == 2 and all('<input type="hidden" name="next" value="/account?x=1">' in form for form in forms)
    forms = _menu_forms(visitor.get("/?theme=neon&page=2"))  # the refusal's page: not the refused value again
    assert len(forms) == 2 and all('name="page" value="2"' in form and 'value="neon"' not in form for form in forms)
    forms = _menu_forms(logged_in_client.get("/dashboard?status=active"))
    assert len(forms) == 2
    assert all('<input type="hidden" name="next" value="/dashboard?status=active">' in form for form in forms)


@pytest.mark.parametrize("value", ["neon", "", "Dark", "dark "])
def test_a_theme_off_the_menu_is_refused_and_sets_nothing(client, value):
    answer = client.get(f"/?theme={value}", headers={"Accept-Language": "es"})
    assert answer.status_code == 400
    assert "Ese tema no está disponible aquí" in answer.text
    assert "Set-Cookie" not in answer.headers


def test_a_signed_in_users_theme_is_saved_on_the_account_and_beats_the_cookie(app, client, auth):
    auth.register()
    client.set_cookie("theme", "light")
    answer = post_form(client, SIGNED_IN_MENU, {"theme": "dark", "next": "/account"}, token_page="/account")
    assert answer.status_code == 303 and answer.headers["Location"] == "/account"
    assert "Set-Cookie" not in answer.headers  # the account keeps it, not a cookie
    assert _theme_of(app) == "dark"
    assert _shows_theme(client.get("/dashboard"), "dark", "dark")

    elsewhere = app.test_client()  # another browser, no cookie: the account's theme follows the user
    AuthActions(elsewhere).login()
    assert _shows_theme(elsewhere.get("/dashboard"), "dark", "dark")


def test_the_system_theme_can_be_picked_back(app, logged_in_client):
    post_form(logged_in_client, SIGNED_IN_MENU, {"theme": "dark"}, token_page="/account")
    post_form(logged_in_client, SIGNED_IN_MENU, {"theme": "system"}, token_page="/account")
    assert _theme_of(app) == "system"
    assert _shows_theme(logged_in_client.get("/dashboard"), "system", "light dark")


def test_a_signed_in_pick_off_the_menu_is_refused_and_changes_nothing(app, logged_in_client):
    post_form(logged_in_client, SIGNED_IN_MENU, {"theme": "dark"}, token_page="/account")
    answer = post_form(logged_in_client, SIGNED_IN_MENU, {"theme": "neon", "next": "/account"}, token_page="/account")
    assert answer.status_code == 400
    assert "That theme isn" in answer.text  # (its apostrophe escaped)
    assert _theme_of(app) == "dark"


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"])
def test_the_signed_in_menu_goes_nowhere_but_this_site(logged_in_client, target):
    answer = post_form(logged_in_client, SIGNED_IN_MENU, {"theme": "light", "next": target}, token_page="/account")
    assert answer.status_code == 303 and answer.headers["Location"] == "/dashboard"


def test_the_menus_made_once_for_anonymous_pages_follow_each_visitors_language_and_theme(logged_in_client, recipient):
    """The footer's menus of an anonymous page are made once per language and theme (preferences.foot_menus)."""
    path = f"/view/{create_secret(logged_in_client)}"
    for language, theme in [("de", "system"), ("fr", "dark"), ("de", "dark"), ("en", "light"), ("de", "system")]:
        recipient.set_cookie("theme", theme)
        text = recipient.get(path, headers={"Accept-Language": language}).text
        assert re.search(rf'<option value="{language}" lang="{language}" selected>', text), (language, theme)
        assert f'<option value="{theme}" selected>' in text and text.count(" selected>") == 2, (language, theme)
    query = recipient.get(f"{path}?page=2").text
    assert '<input type="hidden" name="page" value="2">' in query  # a query is kept, so never the shared menus
    assert '<input type="hidden" name="page"' not in recipient.get(path).text
    signed_in = logged_in_client.get(path).text.split('class="foot-menus')[1]
    assert 'name="csrf_token"' in signed_in and 'method="post"' in signed_in
