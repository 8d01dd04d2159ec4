"""What a visitor picks from the menus at the foot of every page: the language (i18n.py) and the theme (here).

A signed-in user's pick is saved on the account (app.py's /account/language and /account/theme). Anyone else's goes in
a cookie, set only when they pick: the menu is a GET form, ?lang=de or ?theme=dark on any page sets the cookie and
shows that page again without the parameter. A visitor who never picks gets no cookie.
"""

import functools
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

from flask import abort, current_app, has_request_context, redirect, render_template, request
from flask_babel import get_locale, lazy_gettext
from flask_login import current_user
from markupsafe import Markup
from werkzeug.datastructures import MultiDict
from werkzeug.urls import urlencode

COOKIE_LIFETIME = timedelta(days=365)
# Pages under /api/: their frame (menu, footer) speaks the reader's language and has the menus; the API's answers
# are English JSON and take no pick.
API_PAGES = {"api.docs"}


def is_api_answer() -> bool:
    """Whether this request is answered by the API (JSON, English), not by a page."""
    return request.path.startswith("/api/") and request.endpoint not in API_PAGES


@dataclass(frozen=True, eq=False)  # each menu is itself (a dict key), whatever its choices hold
class FootMenu:
    """One menu at the foot of the page and where its pick is kept."""

    parameter: str  # the query parameter of the anonymous form and the name of its cookie
    column: str  # the account's attribute that keeps a signed-in user's pick (None: not picked)
    choices: Collection[str]
    refusal: str  # why a value the menu does not offer is refused (a 400), in the page's language

    def remembered(self) -> str | None:
        """Return the visitor's pick: the account's when signed in and set, else the cookie's; None when none."""
        if not has_request_context():
            return None
        if current_user.is_authenticated and (saved := getattr(current_user, self.column)) in self.choices:
            return saved
        picked = request.cookies.get(self.parameter)
        return picked if picked in self.choices else None

    def refuse(self):
        abort(400, self.refusal)  # lazy: a page says it in its language, a JSON error (/api/docs) in English


def apply_picks(menus: Iterable[FootMenu]):
    """A page asked for with a menu's parameter (its GET form): remember each pick in its cookie and show the page
    again without the parameters. The only place these cookies are set."""
    if request.method not in {"GET", "HEAD"} or is_api_answer():
        return None
    if request.endpoint == "static" or request.routing_exception is not None:
        return None
    picks = {menu: request.args[menu.parameter] for menu in menus if menu.parameter in request.args}
    if not picks:
        return None
    for menu, picked in picks.items():
        if picked not in menu.choices:
            menu.refuse()
    parameters = {menu.parameter for menu in picks}
    rest = MultiDict([(key, value) for key, value in request.args.items(multi=True) if key not in parameters])
    # The path percent-encoded again: decoded, a segment may hold a line break (a 500 in Location) or a "?".
    answer = redirect(quote(request.path, safe="/") + (f"?{urlencode(rest)}" if rest else ""), 303)
    for menu, picked in picks.items():
        answer.set_cookie(
            menu.parameter,
            picked,
            max_age=int(COOKIE_LIFETIME.total_seconds()),
            secure=current_app.config["SESSION_COOKIE_SECURE"],
            httponly=True,
            samesite="Lax",
        )
    return answer


# --- the theme -------------------------------------------------------------------------------------------------------

SYSTEM_THEME = "system"
# The menu's entries, in its order; "system" follows the device (prefers-color-scheme).
THEMES = {
    SYSTEM_THEME: lazy_gettext("System (follows your device)"),
    "light": lazy_gettext("Light"),
    "dark": lazy_gettext("Dark"),
}
THEME_MENU = FootMenu("theme", "theme", THEMES, lazy_gettext("That theme isn't available here. Choose one from the menu."))
# <meta name="color-scheme"> for each theme: the browser's own parts (form controls, scroll bars) agree with ours.
COLOR_SCHEMES = {SYSTEM_THEME: "light dark", "light": "light", "dark": "dark"}


def select_theme() -> str:
    """Return the theme of this page: the visitor's pick, else the device's (system)."""
    return THEME_MENU.remembered() or SYSTEM_THEME


def template_helpers() -> dict:
    theme = select_theme()
    return {"themes": THEMES, "current_theme": theme, "color_scheme": COLOR_SCHEMES[theme], "foot_menus": foot_menus}


def foot_menus() -> Markup:
    """Render the footer's language and theme menus (templates/_foot_menus.html).

    A signed-in page carries its CSRF token and its own address, and a page with a query keeps it; any other page shows
    every visitor of a language and theme the same menus, made once per process (the recipient's page is the busiest).
    """
    if current_user.is_authenticated or request.args:
        return _render_foot_menus()
    return _shared_foot_menus(str(get_locale()), select_theme())


@functools.cache
def _shared_foot_menus(language: str, theme: str) -> Markup:
    return _render_foot_menus()


def _render_foot_menus() -> Markup:
    return Markup(render_template("_foot_menus.html"))  # noqa: S704 - autoescaped by Jinja already  # nosec B704

