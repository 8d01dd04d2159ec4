"""CSRF: every state-changing route refuses a missing, foreign or stale token, and changes nothing."""

import pytest

from tests.helpers import PASSWORD, SECRET_PASSWORD, AuthActions, csrf_token, database_snapshot, secret_form


def state_changing_routes(world) -> list[tuple[str, dict]]:
    sid = world.secret_id
    return [
        ("/logout", {}),
        (
            "/account/password",
            {"current_password": PASSWORD, "password": "a-new-pass-phrase-9", "confirm": "a-new-pass-phrase-9"},
        ),
        ("/account/sessions", {}),
        ("/account/sessions/1/end", {}),
        ("/account/tokens", {"name": "script", "lifetime": "30d", "current_password": PASSWORD}),
        ("/account/tokens/1/revoke", {}),
        ("/account/email", {"email-email": "new@example.org", "email-current_password": PASSWORD}),
        ("/account/two-factor", {"code": "123456"}),
        ("/account/two-factor/recovery-codes", {"current_password": PASSWORD}),
        ("/account/two-factor/disable", {"off-current_password": PASSWORD}),
        ("/account/delete", {"delete-current_password": PASSWORD}),
        (
            "/create",
            secret_form(),
        ),
        (f"/secrets/{sid}/edit", {"title": "changed", "blur_level": "1", "expiration": "7d", "custom_unit": "hours"}),
        (f"/secrets/{sid}/delete", {}),
        (f"/view/{sid}", {"password": SECRET_PASSWORD}),
    ]


def foreign_token(app) -> str:
    """A valid token, but from somebody else's session."""
    return csrf_token(app.test_client(), "/login")


def stale_token(world) -> str:
    """A token alice's browser held before she signed out and in again."""
    old = csrf_token(world.alice, "/dashboard")
    auth = AuthActions(world.alice)
    auth.logout()
    auth.login()
    return old


@pytest.mark.parametrize("kind", ["missing", "foreign", "stale"])
def test_every_state_changing_route_refuses_bad_tokens(app, world, kind):
    token = {"missing": None, "foreign": foreign_token(app), "stale": stale_token(world) if kind == "stale" else None}[kind]
    before = database_snapshot(app)
    for path, data in state_changing_routes(world):
        body = dict(data, csrf_token=token) if token else data
        response = world.alice.post(path, data=body)
        assert response.status_code == 400, path
        assert "This form has expired" in response.get_data(as_text=True), path
        assert database_snapshot(app) == before, path
    assert world.alice.get("/dashboard").status_code == 200  # still signed in


@pytest.mark.parametrize("path", ["/register", "/login"])
def test_anonymous_forms_refuse_a_missing_token(app, path):
    client = app.test_client()
    before = database_snapshot(app)
    data = {"username": "eve", "email": "eve@example.org", "login": "eve", "password": PASSWORD, "confirm": PASSWORD}
    assert client.post(path, data=data).status_code == 400
    assert database_snapshot(app) == before


def test_api_cookie_callers_need_the_token_but_token_callers_do_not(app, world):
    sid = world.secret_id
    before = database_snapshot(app)
    assert world.alice.delete(f"/api/secrets/{sid}").status_code == 400
    assert world.alice.delete(f"/api/secrets/{sid}", headers={"X-CSRFToken": foreign_token(app)}).status_code == 400
    # Any other Authorization header leaves the caller a cookie caller, who still needs the token.
    assert world.alice.delete(f"/api/secrets/{sid}", headers={"Authorization": "Basic YTpi"}).status_code == 400
    assert database_snapshot(app) == before
