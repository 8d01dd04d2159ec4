"""The /admin pages: for administrators only (404 for everyone else, signed out included), every change after the
administrator's password, written to the audit log, and never a secret's title, content or link, nor a token."""

import re
import time

import pytest
from sqlalchemy import insert

from app import db
from schema import AuditEvent, User
from tests.helpers import (
    PASSWORD,
    SECRET_CONTENT,
    AuthActions,
    create_secret,
    post_form,
    unlock,
)
from tests.test_api import issue_token


@pytest.fixture
def admin(app, client):
    """An administrator, signed in: the first account, promoted on the command line."""
    AuthActions(client).register(username="root", email="root@example.org")
    assert app.test_cli_runner().invoke(args=["users", "promote", "root"]).exit_code == 0
    return client


@pytest.fixture
def alice(app):
    """A normal account, signed in on its own browser, with a secret and an API token."""
    browser = app.test_client()
    AuthActions(browser).register()
    browser.share_id = create_secret(browser, title="CANARY-TITLE-7c1")
    browser.api_token = issue_token(browser)
    return browser


def admin_paths(app, user_id: int) -> list[tuple[str, str]]:
    """Every /admin route as (method, path), with `user_id` and each action filled in."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin"):
            continue
        actions = ["disable", "enable", "delete", "reset-two-factor"] if "action" in rule.arguments else [None]
        for action in actions:
            path = rule.rule.replace("<int(max=2147483647):user_id>", str(user_id))
            path = re.sub(r"<any\([^)]*\):action>", action or "", path)
            found += [(method, path) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return found


def test_every_admin_route_is_a_404_for_a_normal_user_and_for_a_stranger(app, admin, alice):
    paths = admin_paths(app, 1)
    assert len(paths) >= 9
    stranger = app.test_client()
    for method, path in paths:
        for who, token_page in ((alice, "/account"), (stranger, "/login")):
            if method == "POST":
                answer = post_form(who, path, {"current_password": PASSWORD}, token_page=token_page)
            else:
                answer = who.get(path)
            assert answer.status_code == 404, (method, path)
    assert "CANARY" not in alice.get("/account").text and "/admin" not in alice.get("/account").text
    with app.app_context():
        administrative = db.select(db.func.count(AuditEvent.id)).where(~AuditEvent.action.startswith("security."))
        assert db.session.get(User, 1).disabled_at is None and db.session.scalar(administrative) == 1


def test_no_method_spelling_or_parameter_under_admin_tells_a_stranger_it_exists(app, admin, alice):
    # Routing answers before the blueprint's check (a 308 to /admin/, a 405 with Allow), the CSRF check says 400 and
    # the language menu 303: each would say the pages are there.
    stranger = app.test_client()
    paths = ["/admin", "/admin/", "/admin/users", "/admin/users/1/disable", "/admin/audit?lang=de", "/admin/nothing"]
    for who in (alice, stranger):
        for path in paths:
            for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
                answer = who.open(path, method=method)
                assert answer.status_code == 404, (method, path)
                assert "Allow" not in answer.headers and "Set-Cookie" not in answer.headers, (method, path)
    assert admin.get("/admin").status_code == 308 and admin.get("/admin/").status_code == 200


def test_an_administrator_never_sees_titles_content_links_or_tokens(app, admin, alice):
    unlock(app.test_client(), alice.share_id)
    pages = [admin.get(path).text for method, path in admin_paths(app, 2) if method == "GET"]
    pages.append(admin.get("/admin/users?q=ali").text)
    seen = "\n".join(pages)
    assert "alice@example.org" in seen  # the page works: the account is listed
    for private in ("CANARY-TITLE-7c1", SECRET_CONTENT, alice.share_id, alice.api_token):
        assert private not in seen


def test_the_users_list_shows_state_and_searches(app, admin, alice):
    page = admin.get("/admin/users").text
    row = page.split('data-user-id="2"')[1].split("</tr>")[0]
    assert "alice" in row and "Active" in row and "No two-factor" in row and "Never" not in row
    assert ">1</td>" in row  # one active secret
    assert "alice" not in admin.get("/admin/users?q=bob").text.split("<table")[-1]
    assert admin.get("/admin/users?after=x").status_code == 400


def test_disabling_from_the_page_needs_the_password_and_holds_the_secrets(app, admin, alice, recipient):
    path = "/admin/users/2/disable"
    asked = admin.get(path)
    assert asked.status_code == 200 and "Disable alice?" in asked.text
    refused = post_form(admin, path, {"current_password": "wrong"})
    assert refused.status_code == 400
    assert alice.get("/dashboard").status_code == 200
    done = post_form(admin, path, {"current_password": PASSWORD})
    assert done.status_code == 302
    assert alice.get("/dashboard").status_code == 302
    assert recipient.get(f"/view/{alice.share_id}").status_code == 410
    assert post_form(admin, "/admin/users/2/enable", {"current_password": PASSWORD}).status_code == 302
    assert unlock(recipient, alice.share_id).status_code == 200
    log = admin.get("/admin/audit?action=user.disabled").text
    assert "user.disabled" in log and "127.0.0.0/24" in log and "user.enabled" not in log.split("<table")[-1]


@pytest.mark.parametrize(("action", "red"), [("disable", True), ("delete", True), ("reset-two-factor", True), ("enable", False)])
def test_only_the_changes_that_take_something_away_have_a_red_button(admin, alice, action, red):
    page = admin.get(f"/admin/users/2/{action}").text
    button = page.split('<div class="actions">')[1].split(">")[0]
    assert ("button-danger" in button) is red


def test_an_administrator_cannot_act_on_their_own_account_here(admin):
    assert admin.get("/admin/users/1/disable").status_code == 404


def test_deleting_from_the_page_erases_the_secrets(app, admin, alice, recipient):
    assert post_form(admin, "/admin/users/2/delete", {"current_password": PASSWORD}).status_code == 302
    assert recipient.get(f"/view/{alice.share_id}").status_code == 404
    assert "user.deleted" in admin.get("/admin/audit?name=alice").text


def test_the_overview_counts_unlocks_and_wrong_passwords_per_day(app, admin, alice, recipient):
    unlock(recipient, alice.share_id, "wrong-guess")
    unlock(recipient, alice.share_id)
    page = admin.get("/admin/").text
    assert 'id="figure-users">2<' in page and 'id="figure-active">1<' in page
    day = '"2026-11-28">Nov 28, 2026</time></th><td data-label="Unlocks">1</td><td data-label="Wrong passwords">1</td>'
    assert day in page


def test_the_users_list_stays_fast_at_100000_accounts(app, admin):
    with app.app_context():
        rows = [
            {
                "username": f"u{n:06}",
                "email": f"u{n:06}@example.org",
                "username_key": f"u{n:06}",
                "email_key": f"u{n:06}@example.org",
                "password_hash": "x",
                "created_at": app.clock(),
                "device_epoch": 0,
                "notify_opened": "first",
                "notify_destroyed": True,
                "notify_unopened": True,
                "is_admin": False,
            }
            for n in range(100_000)
        ]
        db.session.execute(insert(User), rows)
        db.session.commit()
    timings = {}
    for name, path in [("first", "/admin/users"), ("deep", "/admin/users?after=50"), ("search", "/admin/users?q=u09999")]:
        started = time.perf_counter()
        page = admin.get(path)
        timings[name] = time.perf_counter() - started
        assert page.status_code == 200
    assert page.text.count("data-user-id=") == 10  # u099990..u099999
    assert max(timings.values()) < 1.0, timings


def security_events(app, username: str) -> list[tuple[str, str]]:
    with app.app_context():
        rows = db.session.execute(db.select(AuditEvent).filter_by(target=username).order_by(AuditEvent.id)).scalars()
        return [(row.action, row.network) for row in rows if row.action.startswith("security.")]


def test_security_events_are_in_the_audit_log_with_their_change(app, admin, alice, monkeypatch):
    assert security_events(app, "alice") == [("security.api_token_created", "127.0.0.0/24")]  # alice's fixture
    fields = {"email-email": "alice@new.example.org", "email-current_password": PASSWORD}
    assert post_form(alice, "/account/email", fields, token_page="/account").status_code == 302
    AuthActions(app.test_client()).register(username="bob", email="bob@example.org")
    monkeypatch.setattr("accounts.taken_fields", lambda *args, **kwargs: ())  # bob's address is free at the check...
    fields["email-email"] = "bob@example.org"
    post_form(alice, "/account/email", fields, token_page="/account")  # ...and taken at the write: nothing changes
    assert [action for action, _ in security_events(app, "alice")] == ["security.api_token_created", "security.email_changed"]
    page = admin.get("/admin/audit?action=security.email_changed").text
    assert "security.email_changed" in page and "alice" in page


def test_the_admin_pages_speak_the_administrators_language(app, admin, alice):
    post_form(admin, "/account/language", {"lang": "de", "next": "/admin/"}, token_page="/account")
    AuthActions(app.test_client()).login()  # alice on a browser new to her account: a new device, named in English
    fields = {"email": "carol@example.org", "lifetime": "7d", "current_password": PASSWORD}
    assert post_form(admin, "/account/invitations", fields, token_page="/admin/invitations").status_code == 200
    overview = admin.get("/admin/").text
    assert all(words in overview for words in ("Überblick", "Prüfprotokoll", "Alle können sich registrieren", "28.11.2026"))
    assert "in den letzten 14 Tagen" in overview and "Bis zu 100 oder unbegrenzt" in overview
    users = admin.get("/admin/users").text
    assert all(words in users for words in ("Letzte Anmeldung", "Ohne Zwei-Faktor-Anmeldung", "Deaktivieren", "Administrator"))
    assert "alice deaktivieren?" in admin.get("/admin/users/2/disable").text
    done = post_form(admin, "/admin/users/2/disable", {"current_password": PASSWORD}, follow_redirects=True)
    assert "Konto alice deaktiviert." in done.text
    log = admin.get("/admin/audit").text.split('id="audit-events"')[1]
    assert all(words in log for words in ("Konto deaktiviert", "Zum Administrator ernannt", "Kommandozeile", "Unbekanntes Gerät"))
    assert "Einladung 1, für carol@example.org" in log and 'data-action="invitation.created"' in log
    assert "user.disabled" not in log.replace('data-action="user.disabled"', "")  # the code is for scripts, not people
    refused = admin.get("/admin/audit?action=nothing")
    assert refused.status_code == 400 and "Wählen Sie eine Aktion aus der Liste." in refused.text
