"""Languages and time zones: which language a page speaks (the account's, the visitor's pick, the browser's), the menu,
right to left for Arabic, no cookie unless a visitor picks, the API in English, and times in the reader's zone."""

import html
import re
from datetime import timedelta

import pytest

from schema import User
from tests.helpers import PASSWORD, AuthActions, create_secret, csrf_token, post_form, secret_form, unlock
from tests.test_api import issue_token
from tests.test_files import post_files, share_id_of
from timetext import duration_text, relative_time

NBSP = "\N{NO-BREAK SPACE}"


def _says(response, *words) -> bool:
    text = response.get_data(as_text=True)
    return all(word in text for word in words)


# Words of English that German never uses: one left on a German page means a string that skipped the catalogue.
ENGLISH_WORDS = re.compile(
    r"\b(the|and|of|it|is|to|with|you|your|on|off|files?|password|wrong|views?|allowed|device|erased|secrets?|print|copy|"
    r"download|delete|share)\b",
    re.I,
)


def _words_on(page) -> str:
    """The text of a page's <main> as a reader sees it: no tags, no attributes, no links, entities decoded."""
    main = page.text.split("<main", 1)[1].split(">", 1)[1].split("</main>", 1)[0]
    return " ".join(re.sub(r"https?://\S+", "", html.unescape(re.sub(r"<[^>]+>", " ", main))).split())


def _in_german(app, client) -> None:
    post_form(client, "/account/language", {"lang": "de", "next": "/account"}, token_page="/account")


def _user(app, username="alice") -> User:
    from app import db

    with app.app_context():
        return db.session.execute(db.select(User).filter_by(username=username)).scalar_one()


@pytest.mark.parametrize(
    ("header", "lang", "direction", "words"),
    [
        ("de-DE,de;q=0.9,en;q=0.5", "de", "ltr", "Passwörter weitergeben"),
        ("ar", "ar", "rtl", "سلّم كلمة المرور"),
        ("pt-BR,pt;q=0.9", "pt-BR", "ltr", "Passe uma senha adiante"),
        ("pt", "pt-BR", "ltr", "Passe uma senha adiante"),
        ("fr-CA", "fr", "ltr", "Transmettez un mot de passe"),
        ("es-MX,es;q=0.8", "es", "ltr", "Entrega una contraseña"),
        ("ja, zh;q=0.5", "en", "ltr", "Hand over a password"),
        ("", "en", "ltr", "Hand over a password"),
    ],
)
def test_the_home_page_speaks_the_browsers_language(client, header, lang, direction, words):
    page = client.get("/", headers={"Accept-Language": header})
    assert f'<html lang="{lang}" dir="{direction}" ' in page.text
    assert words in page.text


def test_the_recipients_page_and_its_errors_speak_the_recipients_language(logged_in_client, recipient):
    unique_id = create_secret(logged_in_client)
    german = {"Accept-Language": "de"}
    page = recipient.get(f"/view/{unique_id}", headers=german)
    assert _says(page, "Jemand hat ein Geheimnis mit Ihnen geteilt", "Nach 5 falschen Passwörtern")
    recipient.environ_base["HTTP_ACCEPT_LANGUAGE"] = "de"
    wrong = unlock(recipient, unique_id, "not the password")
    assert wrong.status_code == 403 and _says(wrong, "Das Passwort stimmt nicht. Noch 4 Versuche")
    recipient.environ_base["HTTP_ACCEPT_LANGUAGE"] = "ar"
    opened = unlock(recipient, unique_id)
    assert opened.status_code == 200 and _says(opened, "السر المُرسَل إليك", 'dir="rtl"')
    assert recipient.get("/view/" + "A" * 43, headers={"Accept-Language": "pt-BR"}).text.count("Página não encontrada") == 2


def test_arabic_plurals_take_each_form(app):
    from flask_babel import force_locale

    with app.test_request_context("/"), force_locale("ar"):
        assert [duration_text(timedelta(days=days)) for days in (1, 2, 3, 11, 100)] == [
            "يوم واحد", "يومين", f"3{NBSP}أيام", f"11{NBSP}يومًا", f"100{NBSP}يوم",  # a number and its unit never part
        ]


@pytest.mark.parametrize("path", ["/", "/nowhere", "/.well-known/security.txt"])
def test_anonymous_pages_set_no_cookie_whatever_the_language(client, path):
    # (A page with a form, sign-in, carries the session's CSRF token: that is a cookie of its own, not the language's.)
    page = client.get(path, headers={"Accept-Language": "ar"})
    assert page.status_code in {200, 404}
    assert "Set-Cookie" not in page.headers


def test_the_recipients_page_sets_no_cookie(logged_in_client, recipient):
    unique_id = create_secret(logged_in_client)
    assert "Set-Cookie" not in recipient.get(f"/view/{unique_id}", headers={"Accept-Language": "fr"}).headers


def test_picking_a_language_sets_the_cookie_and_shows_the_same_page_again(client):
    picked = client.get("/login?lang=fr&next=/dashboard", headers={"Accept-Language": "de"})
    assert picked.status_code == 303
    assert picked.headers["Location"] == "/login?next=%2Fdashboard"
    cookie = picked.headers["Set-Cookie"]
    assert cookie.startswith("lang=fr;") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    again = client.get("/login", headers={"Accept-Language": "de"})  # the pick beats the browser's language
    assert 'lang="fr"' in again.text and "Se connecter" in again.text


def test_an_unknown_language_is_refused_and_sets_nothing(client):
    answer = client.get("/?lang=xx", headers={"Accept-Language": "es"})
    assert answer.status_code == 400
    assert "Ese idioma no está disponible aquí" in answer.text
    assert "Set-Cookie" not in answer.headers


def test_the_menu_is_on_every_page_and_marks_the_current_language(client):
    page = client.get("/nowhere", headers={"Accept-Language": "es"})
    assert '<select id="language-menu" name="lang"' in page.text
    assert '<option value="es" lang="es" selected>Español</option>' in page.text
    assert '<option value="ar" lang="ar">العربية</option>' in page.text


def test_an_account_takes_the_sign_up_pages_language_and_the_browsers_zone(app, client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "pt-BR"
    form = {"username": "bia", "email": "bia@example.org", "password": "a long and unusual passphrase",
            "confirm": "a long and unusual passphrase", "time_zone": "America/Sao_Paulo"}
    assert post_form(client, "/register", form).status_code == 302
    user = _user(app, "bia")
    assert (user.language, user.time_zone) == ("pt_BR", "America/Sao_Paulo")


def test_a_zone_nobody_knows_is_left_out_at_sign_up(app, client):
    form = {"username": "bob", "email": "bob@example.org", "password": "a long and unusual passphrase",
            "confirm": "a long and unusual passphrase", "time_zone": "Mars/Olympus_Mons"}
    assert post_form(client, "/register", form).status_code == 302
    assert _user(app, "bob").time_zone is None


def test_the_accounts_language_beats_the_cookie_and_the_browser(app, logged_in_client):
    logged_in_client.set_cookie("lang", "fr")
    answer = post_form(logged_in_client, "/account/language", {"lang": "de", "next": "/account"}, token_page="/account")
    assert answer.status_code == 303 and answer.headers["Location"] == "/account"
    assert _user(app).language == "de"
    page = logged_in_client.get("/dashboard", headers={"Accept-Language": "es"})
    assert 'lang="de"' in page.text


def test_the_menu_of_a_signed_in_user_goes_nowhere_but_this_site(logged_in_client):
    answer = post_form(logged_in_client, "/account/language", {"lang": "es", "next": "//evil.example/"}, token_page="/account")
    assert answer.headers["Location"] == "/dashboard"


def test_the_account_page_saves_language_and_zone_and_answers_in_the_new_language(app, logged_in_client, clock):
    data = {"locale-language": "es", "locale-time_zone": "Europe/Madrid"}
    saved = post_form(logged_in_client, "/account/locale", data, token_page="/account", follow_redirects=True)
    assert "Guardado" in saved.text and "Europe/Madrid" in saved.text
    user = _user(app)
    assert (user.language, user.time_zone) == ("es", "Europe/Madrid")
    refused = post_form(logged_in_client, "/account/locale", {**data, "locale-time_zone": "Nowhere/Else"}, token_page="/account")
    assert refused.status_code == 400 and "Elige una zona horaria de la lista" in refused.text
    assert _user(app).time_zone == "Europe/Madrid"


def test_times_are_shown_in_the_accounts_zone_and_utc_to_everyone_else(app, logged_in_client, recipient, clock):
    unique_id = create_secret(logged_in_client, expiration="1h")  # 13:00 UTC
    post_form(logged_in_client, "/account/locale", {"locale-language": "en", "locale-time_zone": "Asia/Tokyo"},
              token_page="/account")
    assert "Nov 28, 2026, 10:00\u202fPM Asia/Tokyo" in logged_in_client.get(f"/secrets/{unique_id}").text
    assert "Nov 28, 2026, 10:00\u202fPM Asia/Tokyo" in logged_in_client.get(f"/secrets/{unique_id}/card").text
    opened = unlock(recipient, unique_id)
    assert "Nov 28, 2026, 1:00\u202fPM UTC" in opened.text


def test_the_api_answers_in_english_whatever_the_browser_says(logged_in_client, recipient):
    unique_id = create_secret(logged_in_client)
    answer = recipient.post(f"/api/secrets/{unique_id}/unlock", json={"password": "wrong one"},
                            headers={"Accept-Language": "de"})
    assert answer.json["error"]["reason"] == "wrong_password"
    assert answer.json["error"]["message"].startswith("That password isn't right.")


def test_scripts_get_their_words_in_the_pages_language(client):
    page = client.get("/register", headers={"Accept-Language": "fr"})
    assert "data-words='" in page.text and "Masquer le mot de passe" in page.text
    assert "data-words" not in client.get("/register").text  # English needs none


def test_relative_times_in_german_use_the_nominative(app):
    from flask_babel import force_locale

    with app.test_request_context("/"), force_locale("de"):
        now = app.clock()
        # A number keeps its unit on its line (a non-breaking space).
        assert relative_time(now + timedelta(days=2, hours=3), now) == "noch 2\u00a0Tage 3\u00a0Std."
        assert relative_time(now - timedelta(minutes=5), now) == "5\u00a0Min. her"


def test_form_labels_and_errors_speak_the_pages_language(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "de"
    form = {"username": "x", "email": "nope", "password": "short", "confirm": "other"}
    answer = post_form(client, "/register", form)
    assert answer.status_code == 400
    assert _says(answer, "Benutzername", "Verwenden Sie 3 bis 32 Zeichen.", "Geben Sie eine gültige E-Mail-Adresse ein.",
                 "Die Passwörter stimmen nicht überein.", "Bitte prüfen Sie die 4 markierten Felder.")


def test_zxcvbns_advice_speaks_the_pages_language(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "de"
    form = {"username": "bob", "email": "bob@example.org", "password": "password1234", "confirm": "password1234"}
    answer = post_form(client, "/register", form)
    assert answer.status_code == 400
    assert "Zu leicht zu erraten. Das ist ein sehr häufiges Passwort." in answer.text


def test_a_webhook_addresss_problem_speaks_the_pages_language(app, logged_in_client):
    _in_german(app, logged_in_client)
    form = {"url": "http://hooks.example.org/in", "current_password": PASSWORD}
    refused = post_form(logged_in_client, "/account/webhooks", form)
    assert refused.status_code == 400 and "Verwenden Sie eine https://-Adresse." in refused.text


def test_the_sessions_list_names_devices_in_the_pages_language(app, logged_in_client):
    firefox = app.test_client()
    firefox.environ_base["HTTP_USER_AGENT"] = "Mozilla/5.0 (Windows NT 10.0; rv:128.0) Gecko/20100101 Firefox/128.0"
    AuthActions(firefox).login()
    _in_german(app, logged_in_client)
    listed = _words_on(logged_in_client.get("/account/sessions"))
    assert "Firefox auf Windows" in listed and "Unbekanntes Gerät" in listed and "Firefox auf Windows abmelden" in listed


def test_flashes_speak_the_pages_language(logged_in_client):
    post_form(logged_in_client, "/account/language", {"lang": "fr", "next": "/create"}, token_page="/account")
    created = post_form(logged_in_client, "/create", secret_form(), follow_redirects=True)
    assert "Votre secret est prêt à être partagé." in created.text


def test_the_apis_field_errors_stay_english(logged_in_client):
    token = issue_token(logged_in_client)
    body = {"title": "t", "content": "x", "password": "long enough password", "confirm": "another one", "blur_level": 5}
    headers = {"Authorization": f"Bearer {token}", "Accept-Language": "ar"}
    answer = logged_in_client.post("/api/secrets", json=body, headers=headers)
    assert answer.status_code == 400
    assert answer.json["error"]["message"] == "Some fields need fixing."
    assert answer.json["error"]["fields"] == {"confirm": ["The passwords don't match."]}  # a lazy message, in English


def test_the_menu_goes_back_to_the_same_path_whatever_its_segments_hold(client):
    # A download link's token segment takes any character: decoded, a line break made the redirect a 500, and a
    # "?" moved the rest of the path into the query.
    base = "/view/AAAAAAAAAAAAAAAAAAAAAA/files"
    for sent in (f"{base}/a%0D%0AX-Injected%3A%201/0", f"{base}/a%3Fb/0", f"{base}/%C3%A9/0"):
        answer = client.get(f"{sent}?lang=de")
        assert answer.status_code == 303 and answer.headers["Location"] == sent, sent
        assert "X-Injected" not in answer.headers


def test_the_create_and_secret_pages_leave_no_english_in_german(app, logged_in_client, recipient):
    share_id = share_id_of(post_files(logged_in_client, [("a.txt", b"x" * 3000)]))
    unlock(recipient, share_id, "not the password")
    _in_german(app, logged_in_client)
    create = _words_on(logged_in_client.get("/create"))
    assert "Dateien Optional. Insgesamt bis zu" in create and "Geheimnis erstellen" in create
    secret = _words_on(logged_in_client.get(f"/secrets/{share_id}"))
    assert "Dateien 1 Datei, 2,9 KiB" in secret and "Falsches Passwort" in secret and "Unbekanntes Gerät" in secret
    assert "Wer versucht hat, es zu öffnen" in secret and "1 von 5 erlaubten" in secret
    for words in (create, secret):
        assert not ENGLISH_WORDS.findall(words), words


def test_the_storage_limit_says_its_sizes_in_the_pages_language(app, logged_in_client):
    app.config["FILE_STORAGE_PER_USER"] = 250_000
    _in_german(app, logged_in_client)
    share_id_of(post_files(logged_in_client, [("a.bin", b"x" * 200_000)]))
    refused = post_files(logged_in_client, [("b.bin", b"y" * 60_000)], title="Noch eins")
    assert refused.status_code == 400
    assert "Ihre aktiven Geheimnisse enthalten 195,3\u00a0KiB an Dateien" in refused.text
    assert "244,1\u00a0KiB pro Konto" in refused.text


def test_the_two_factor_pages_leave_no_english_in_german(app, logged_in_client, clock):
    from tests.test_two_factor import code_at

    _in_german(app, logged_in_client)
    setup = logged_in_client.get("/account/two-factor")
    key = re.search(r'id="totp-key"[^>]*>([A-Z2-7]+)<', setup.text).group(1)
    codes = post_form(logged_in_client, "/account/two-factor", {"current_password": PASSWORD, "code": code_at(key, clock)})
    turned_on = logged_in_client.get("/account/two-factor")
    pages = {name: _words_on(page) for name, page in [("setup", setup), ("codes", codes), ("on", turned_on)]}
    assert "Authenticator-App einrichten" in pages["setup"] and "Schlüssel kopieren" in pages["setup"]
    assert "Als Textdatei herunterladen" in pages["codes"] and "Sie haben noch 10 Wiederherstellungscodes" in pages["on"]
    for name, words in pages.items():
        words = re.sub(r"[a-z2-7]{4}(-[a-z2-7]{4}){3}", "", words)  # the recovery codes themselves
        assert not ENGLISH_WORDS.findall(words), (name, words)


@pytest.mark.parametrize("config_overrides", [{"ANONYMOUS_SHARING": "on"}])
def test_sharing_without_an_account_leaves_no_english_in_german(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "de"
    home, form = _words_on(client.get("/")), _words_on(client.get("/create"))
    token = csrf_token(client, "/create")
    manage = _words_on(client.post("/create", data={"csrf_token": token, **secret_form(max_views="2")}, follow_redirects=True))
    assert "Ein Geheimnis ohne Konto teilen" in home and "Sie sind nicht angemeldet" in form
    assert "Bis zu 8 KB Text." in form and "Übersicht" not in form  # a visitor has no dashboard
    assert "Status: Aktiv" in manage and "Ihr privater Link" in manage and "Aufrufe 0 von 2" in manage
    for words in (home, form, manage):
        assert not ENGLISH_WORDS.findall(words), words


def test_arabic_keeps_latin_names_in_order_and_counts_minutes(app, logged_in_client, recipient):
    """A username and its address, or a file name and its size, would swap places in a right-to-left sentence unless
    each is isolated (<bdi>); minutes are counted with ngettext, as Arabic says 5 and 15 minutes differently."""
    share_id = share_id_of(post_files(logged_in_client, [("notes-2026.txt", b"x" * 15)]))
    logged_in_client.environ_base["HTTP_ACCEPT_LANGUAGE"] = recipient.environ_base["HTTP_ACCEPT_LANGUAGE"] = "ar"
    account = logged_in_client.get("/account").text
    assert re.search(r"<bdi><strong>alice</strong></bdi> \(<bdi>[^<]+@[^<]+</bdi>\)", account)
    opened = unlock(recipient, share_id).text
    assert re.search(rf"<bdi>notes-2026\.txt</bdi></a> <span[^>]*>15{NBSP}بايتًا</span>", opened)
    assert "خلال 5 دقائق" in opened and "لمدة 15 دقيقة" in opened


def test_a_page_and_an_email_in_another_language_in_one_request_each_speak_their_own(app):
    """Templates look their catalogue up once per request (i18n._page_translations), and again when the language
    changes within it: an email to someone else rendered beside a page."""
    from flask import render_template_string

    from i18n import speaking_to

    words = "{{ _('Dashboard') }}"
    with app.test_request_context("/", headers={"Accept-Language": "de"}):
        assert render_template_string(words) == "Übersicht"
        with speaking_to(User(language="pt_BR", time_zone="America/Sao_Paulo")):
            assert render_template_string(words) == "Painel"
        assert render_template_string(words) == "Übersicht"
