"""Languages and time zones: which language and zone a request is answered in, and the language menu's choices. The
words are in the catalogues under translations/; timetext.py writes times with Babel.

Language, in order: a signed-in user's setting; the visitor's own pick from the menu (a cookie, set only then, by
preferences.py); the browser's Accept-Language; English. The API always answers in English beside its `reason` codes.
Time zone: a signed-in user's setting, else UTC, which pages then name.
"""

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytz
from babel import Locale
from flask import g, has_request_context, request
from flask_babel import Babel, force_locale, get_locale, get_timezone, get_translations, gettext, lazy_gettext
from flask_login import current_user
from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

import accounts
from preferences import FootMenu, is_api_answer

DEFAULT_LANGUAGE = "en"
CATALOGUES = Path(__file__).parent / "translations"


def _native_name(code: str) -> str:
    name = Locale.parse(code).get_display_name(code)
    return name[:1].upper() + name[1:]


# English, then every language with a catalogue (`make lang-add` makes one), each named in itself.
LANGUAGES = {
    code: _native_name(code)
    for code in [DEFAULT_LANGUAGE, *sorted(path.parent.parent.name for path in CATALOGUES.glob("*/LC_MESSAGES/messages.po"))]
}
RIGHT_TO_LEFT = {code for code in LANGUAGES if Locale.parse(code).text_direction == "rtl"}
LANGUAGE_MENU = FootMenu(
    "lang", "language", LANGUAGES, lazy_gettext("That language isn't available here. Choose one from the menu.")
)
TIME_ZONES = pytz.all_timezones_set
# The time zones offered in forms: those in use today (pytz's common list).
ZONE_CHOICES = tuple(pytz.common_timezones)
UTC_NAME = "UTC"

babel = Babel()


# --- choosing ------------------------------------------------------------------------------------------------------------


def select_language() -> str:
    """Return the language of this request's answer (Flask-Babel's locale selector)."""
    if not has_request_context() or is_api_answer():
        return DEFAULT_LANGUAGE  # the API's messages are English beside their reason codes (docs/api.md)
    return LANGUAGE_MENU.remembered() or _best_language(request.headers.get("Accept-Language", ""))


@functools.lru_cache(maxsize=256)
def _best_language(accept_language: str) -> str:
    """The language a browser's Accept-Language asks for: phones send a handful of spellings, so each is read once."""
    return parse_accept_header(accept_language, LanguageAccept).best_match(LANGUAGES, DEFAULT_LANGUAGE)


def select_time_zone() -> str:
    """Return the time zone of this request's times: the signed-in user's, else UTC."""
    if has_request_context() and current_user.is_authenticated and current_user.time_zone in TIME_ZONES:
        return current_user.time_zone
    return UTC_NAME


def language_of(user) -> str:
    return user.language if user.language in LANGUAGES else DEFAULT_LANGUAGE


def time_zone_of(user) -> str:
    return user.time_zone if user.time_zone in TIME_ZONES else UTC_NAME


@contextmanager
def speaking_to(user) -> Iterator[None]:
    """Write what is rendered inside in `user`'s language and time zone (an email to them, whoever caused it)."""
    with force_locale(language_of(user)):
        get_timezone()  # makes sure Flask-Babel's store for this context exists
        store = g._flask_babel  # where Flask-Babel keeps the context's zone: force_locale has no zone twin
        before = store.babel_tzinfo
        store.babel_tzinfo = pytz.timezone(time_zone_of(user))
        try:
            yield
        finally:
            store.babel_tzinfo = before


def N_(text: str) -> str:
    """Mark `text` for the catalogues (pybabel finds N_) without translating it here."""
    return text


# What static/js/app.js says, in English: each page hands it these in its language (<body data-words>).
SCRIPT_WORDS = (
    N_("Copied"),
    N_("Secret copied to the clipboard."),
    N_("Text copied to the clipboard."),
    N_("Link copied to the clipboard."),
    N_("Recovery codes copied to the clipboard."),
    N_("Show spaces"),
    N_("Hide spaces"),
    N_("Copying didn't work. Select the text and copy it by hand."),
    N_("Show"),
    N_("Hide"),
    N_("Show password"),
    N_("Hide password"),
    N_("Reveal"),
    N_("Secret revealed."),
    N_("Secret hidden."),
    N_("A strong password is filled in. Note it now: you'll send it to the recipient yourself."),
)


# zxcvbn's advice on a guessable password (zxcvbn/feedback.py of 4.5.0, in English), said on the sign-up and password
# forms through accounts.password_feedback; a hint missing here stays English.
PASSWORD_HINTS = (
    N_("Use a few words, avoid common phrases."),
    N_("No need for symbols, digits, or uppercase letters."),
    N_("Add another word or two. Uncommon words are better."),
    N_("Straight rows of keys are easy to guess."),
    N_("Short keyboard patterns are easy to guess."),
    N_("Use a longer keyboard pattern with more turns."),
    N_('Repeats like "aaa" are easy to guess.'),
    N_('Repeats like "abcabcabc" are only slightly harder to guess than "abc".'),
    N_("Avoid repeated words and characters."),
    N_('Sequences like "abc" or "6543" are easy to guess.'),
    N_("Avoid sequences."),
    N_("Recent years are easy to guess."),
    N_("Avoid recent years."),
    N_("Avoid years that are associated with you."),
    N_("Dates are often easy to guess."),
    N_("Avoid dates and years that are associated with you."),
    N_("This is a top-10 common password."),
    N_("This is a top-100 common password."),
    N_("This is a very common password."),
    N_("This is similar to a commonly used password."),
    N_("A word by itself is easy to guess."),
    N_("Names and surnames by themselves are easy to guess."),
    N_("Common names and surnames are easy to guess."),
    N_("Capitalization doesn't help very much."),
    N_("All-uppercase is almost as easy to guess as all-lowercase."),
    N_("Reversed words aren't much harder to guess."),
    N_("Predictable substitutions like '@' instead of 'a' don't help very much."),
    N_("This password is too easy to guess."),
)


# A secret's states as the pages name them (schema.SecretStatus's values).
STATUS_WORDS = {
    "active": N_("Active"),
    "expired": N_("Expired"),
    "used_up": N_("Used up"),
    "destroyed": N_("Destroyed"),
    "deleted": N_("Deleted"),
}


# What a try on a secret came to (schema.AccessOutcome's values), as the owner's page lists it.
OUTCOME_WORDS = {
    "unlocked": N_("Unlocked"),
    "wrong_password": N_("Wrong password"),
    "recipient_ended": N_("Ended by the recipient"),
}


def status_word(status: str) -> str:
    return gettext(STATUS_WORDS[status])


def outcome_word(outcome: str) -> str:
    return gettext(OUTCOME_WORDS[outcome])


def device_words(user_agent: str) -> str:
    """Return the device a browser's user agent names, in the page's language: 'Firefox auf Windows'."""
    return accounts.device_name(user_agent, gettext("%(browser)s on %(system)s"), gettext("Unknown device"))


def session_device_words(device: str) -> str:
    """Return a session's device in the page's language. A session keeps only the English name accounts.device_name
    gave it at sign-in, so that name is read back: 'Chrome on Android', 'Unknown device', or a lone browser or system."""
    browser, on, system = device.partition(" on ")
    if on:
        return gettext("%(browser)s on %(system)s", browser=browser, system=system)
    return gettext("Unknown device") if device == accounts.device_name("") else device


def _page_translations():
    """The catalogue of the page being rendered, looked up once per request and language (Flask-Babel looks it up for
    every string: a fifth of the recipient's page in German). force_locale (an email in its reader's language) gives
    another Locale, so another lookup."""
    locale = get_locale()
    cached = g.get("page_translations")
    if cached is None or cached[0] is not locale:
        cached = g.page_translations = (locale, get_translations())
    return cached[1]


def install_template_gettext(app) -> None:
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: _page_translations().ugettext(s),
        ngettext=lambda s, p, n: _page_translations().ungettext(s, p, n),
        pgettext=lambda c, s: _page_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: _page_translations().unpgettext(c, s, p, n),
        newstyle=True,
    )


def page_words() -> Markup:
    """The words app.js shows, as JSON for the page's data-words: the same on every page of a language, so made once."""
    return _page_words_json(str(get_locale()))


@functools.cache
def _page_words_json(language: str) -> Markup:
    return htmlsafe_json_dumps({word: gettext(word) for word in SCRIPT_WORDS})


def text_direction() -> str:
    return "rtl" if str(get_locale()) in RIGHT_TO_LEFT else "ltr"


def html_language() -> str:
    return str(get_locale()).replace("_", "-")


def template_helpers() -> dict:
    return {
        "languages": LANGUAGES,
        "current_language": str(get_locale()),
        "text_direction": text_direction,
        "html_language": html_language,
        "page_words": page_words,
        "status_word": status_word,
        "outcome_word": outcome_word,
        "device_words": device_words,
        "session_device_words": session_device_words,
    }
