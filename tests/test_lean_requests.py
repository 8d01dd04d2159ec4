"""Issue 12: the hot paths do no needless work, and what was removed keeps its guarantees.

An anonymous visitor gets no session cookie; the recipient's form carries a token bound to its secret instead;
dashboard and purge queries never scan the secret table.
"""

import re

import pytest
from sqlalchemy import event

from app import db
from schema import Secret
from tests.helpers import SECRET_CONTENT, SECRET_PASSWORD, create_secret, database_snapshot, load_secret

FORM_TOKEN_RE = re.compile(r'<input type="hidden" name="csrf_token" value="([^"]+)">')


def form_token(client, unique_id: str) -> str:
    return FORM_TOKEN_RE.search(client.get(f"/view/{unique_id}").text).group(1)


def post_unlock(client, unique_id: str, token: str, password: str = SECRET_PASSWORD, **headers):
    return client.post(f"/view/{unique_id}", data={"csrf_token": token, "password": password}, headers=headers)


@pytest.fixture
def secret_id(logged_in_client) -> str:
    return create_secret(logged_in_client)


@pytest.mark.parametrize("path", ["/", "/view/{id}", "/view/AAAAAAAAAAAAAAAAAAAAAA"])
def test_anonymous_pages_set_no_cookie(app, secret_id, path):
    response = app.test_client().get(path.format(id=secret_id))
    assert response.status_code in {200, 404}
    assert "Set-Cookie" not in response.headers


def test_the_recipient_unlocks_without_any_cookie(app, secret_id):
    recipient = app.test_client(use_cookies=False)
    response = post_unlock(recipient, secret_id, form_token(recipient, secret_id))
    assert response.status_code == 200
    assert SECRET_CONTENT in response.text
    assert "Set-Cookie" not in response.headers


def test_a_wrong_password_answers_a_fresh_form_and_still_no_cookie(app, secret_id):
    recipient = app.test_client(use_cookies=False)
    response = post_unlock(recipient, secret_id, form_token(recipient, secret_id), "not-the-password")
    assert response.status_code == 403
    assert 'aria-invalid="true" aria-describedby="password-error"' in response.text
    assert "tries left" in response.text
    assert "Set-Cookie" not in response.headers
    assert post_unlock(recipient, secret_id, FORM_TOKEN_RE.search(response.text).group(1)).status_code == 200


def test_a_form_token_of_one_secret_does_not_unlock_another(app, logged_in_client, secret_id):
    other_id = create_secret(logged_in_client)
    recipient = app.test_client()
    before = database_snapshot(app)
    response = post_unlock(recipient, other_id, form_token(recipient, secret_id))
    assert response.status_code == 400
    assert "This form has expired" in response.text
    assert database_snapshot(app) == before


def test_a_session_token_is_not_a_form_token(app, logged_in_client, secret_id):
    session_token = re.search(r'<meta name="csrf-token" content="([^"]+)">', logged_in_client.get("/dashboard").text).group(1)
    before = database_snapshot(app)
    assert post_unlock(logged_in_client, secret_id, session_token).status_code == 400
    assert database_snapshot(app) == before


def test_the_form_lasts_twelve_hours_to_the_second(app, clock, secret_id):
    recipient = app.test_client()
    token = form_token(recipient, secret_id)
    clock.advance(hours=12, seconds=1)
    before = database_snapshot(app)
    assert post_unlock(recipient, secret_id, token).status_code == 400
    assert database_snapshot(app) == before
    clock.advance(seconds=-1)
    assert post_unlock(recipient, secret_id, token).status_code == 200


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_an_unlock_a_browser_marks_as_from_elsewhere_is_refused(app, secret_id, site):
    recipient = app.test_client()
    token = form_token(recipient, secret_id)
    before = database_snapshot(app)
    response = post_unlock(recipient, secret_id, token, **{"Sec-Fetch-Site": site})
    assert response.status_code == 400
    assert database_snapshot(app) == before
    assert load_secret(app, secret_id).view_count == 0


def test_an_unlock_from_the_page_itself_is_accepted(app, secret_id):
    recipient = app.test_client()
    response = post_unlock(recipient, secret_id, form_token(recipient, secret_id), **{"Sec-Fetch-Site": "same-origin"})
    assert response.status_code == 200


def test_signed_in_pages_keep_the_session_token_for_scripts(logged_in_client):
    assert '<meta name="csrf-token"' in logged_in_client.get("/dashboard").text


def _statements_of(app, action) -> list[tuple[str, tuple]]:
    """Run `action` and return every SELECT, UPDATE and DELETE it sent, with its parameters."""
    seen = []

    def record(_conn, _cursor, statement, parameters, _context, executemany):
        if not executemany and statement.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")):
            seen.append((statement, parameters))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def _full_scans(app, statements) -> list[str]:
    with app.app_context(), db.engine.connect() as connection:
        plans = [
            (statement, row[-1])
            for statement, parameters in statements
            for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
        ]
    return [f"{detail}: {statement}" for statement, detail in plans if re.match(r"SCAN (secret|access_event)\b", detail)]


def test_dashboard_and_purge_never_scan_the_secret_table(app, logged_in_client, clock):
    for _ in range(3):
        create_secret(logged_in_client)
    with app.app_context():
        db.session.execute(db.update(Secret).values(status="deleted"))
        db.session.commit()
    statements = _statements_of(app, lambda: logged_in_client.get("/dashboard?status=deleted"))
    statements += _statements_of(app, lambda: logged_in_client.get("/dashboard"))
    assert len(statements) >= 6  # the pages were served, not a sign-in redirect
    clock.advance(days=400)
    statements += _statements_of(app, lambda: app.test_cli_runner().invoke(args=["purge"]))
    assert any("DELETE FROM secret" in statement for statement, _ in statements)  # the purge did run
    assert _full_scans(app, statements) == []
