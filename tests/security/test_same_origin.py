"""CSRF, second line: an unsafe request a browser marks as coming from another site is refused even with a valid
token; our own pages are accepted over https with no Referer at all (Referrer-Policy: same-origin)."""

import pytest

from app import create_app, db
from tests.helpers import (
    SECRET_CONTENT,
    AuthActions,
    create_secret,
    csrf_token,
    database_snapshot,
    post_form,
    production_config,
    recipient_form_token,
    secret_form,
    unlock,
)
from tests.security.test_csrf import state_changing_routes
from tests.test_api import issue_token

CROSS_SITE = "This form was sent from another website"
# What Chromium sends with a form posted from one of our https pages: never a Referer under our policy.
OUR_PAGE_HEADERS = {"HTTP_SEC_FETCH_SITE": "same-origin", "HTTP_ORIGIN": "https://localhost"}


def post_with_token(client, path: str, data: dict, headers: dict):
    return client.post(path, data={**data, "csrf_token": csrf_token(client, "/dashboard")}, headers=headers)


def unlock_with_headers(client, unique_id: str, headers: dict):
    """The recipient's form, with the token its page hands out and the headers a browser would add."""
    data = {"password": "open-sesame-42", "csrf_token": recipient_form_token(client.application, unique_id)}
    return client.post(f"/view/{unique_id}", data=data, headers=headers)


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # a sibling subdomain is another site too
        {"Sec-Fetch-Site": "cross-site", "Origin": "http://localhost"},  # the browser's word wins over Origin
        {"Origin": "https://evil.example"},
        {"Origin": "http://localhost:8080"},  # another port is another origin
        {"Origin": "null"},  # sandboxed frames and no-referrer pages: we cannot tell where it came from
    ],
    ids=["cross-site", "same-site", "cross-site-with-our-origin", "foreign-origin", "other-port", "null-origin"],
)
def test_cross_site_posts_are_refused_with_a_valid_token(app, world, headers):
    before = database_snapshot(app)
    for path, data in state_changing_routes(world):
        response = post_with_token(world.alice, path, data, headers)
        assert response.status_code == 400, path
        assert CROSS_SITE in response.text, path
        assert database_snapshot(app) == before, path
    assert world.alice.get("/dashboard").status_code == 200  # still signed in


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"},
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},  # typed or bookmarked by the person
        {"Origin": "http://localhost"},
        {"Origin": "HTTP://LOCALHOST"},
        {},  # an old browser or a script: the token alone decides
    ],
    ids=["same-origin", "fetch-site-only", "none", "origin-only", "origin-upper-case", "neither"],
)
def test_our_own_posts_are_accepted(app, logged_in_client, headers):
    unique_id = create_secret(logged_in_client)
    response = unlock_with_headers(logged_in_client, unique_id, headers)
    assert response.status_code == 200
    assert SECRET_CONTENT in response.text


def test_public_base_url_counts_as_our_origin(app, logged_in_client):
    app.config["PUBLIC_BASE_URL"] = "https://secrets.example.org"
    unique_id = create_secret(logged_in_client)
    response = unlock_with_headers(logged_in_client, unique_id, {"Origin": "https://secrets.example.org"})
    assert response.status_code == 200


def test_cross_site_without_a_token_is_refused_too(app, world):
    response = world.alice.post(f"/secrets/{world.secret_id}/delete", headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 400


def test_api_cookie_callers_are_checked_but_bearer_token_callers_are_not(app, world):
    sid = world.secret_id
    token = csrf_token(world.alice, "/dashboard")
    before = database_snapshot(app)
    response = world.alice.delete(f"/api/secrets/{sid}", headers={"X-CSRFToken": token, "Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 400
    assert CROSS_SITE in response.json["error"]["message"]
    assert database_snapshot(app) == before

    script = app.test_client()
    headers = {"Authorization": f"Bearer {issue_token(world.alice)}", "Sec-Fetch-Site": "cross-site", "Origin": "null"}
    assert script.delete(f"/api/secrets/{sid}", headers=headers).status_code == 200


def test_cross_site_refusal_page_speaks_to_people(world):
    response = post_with_token(world.alice, "/account/sessions", {}, {"Sec-Fetch-Site": "cross-site"})
    assert "Open SecureShare yourself and try again." in response.text
    assert "Sec-Fetch-Site" not in response.text and "CSRF" not in response.text


# --- production settings over https, as a browser sends them: no Referer, Origin and Sec-Fetch-Site set ---------


@pytest.fixture(params=["tls-at-the-app", "tls-at-the-proxy"])
def https_browser(request, tmp_path, clock):
    """A browser on the production settings over https: directly, or behind one proxy that terminates TLS."""
    behind_proxy = request.param == "tls-at-the-proxy"
    overrides = {"PROXY_COUNT": 1} if behind_proxy else {"PREFERRED_URL_SCHEME": "https"}
    app = create_app(production_config(tmp_path, clock, **overrides))
    with app.app_context():
        db.create_all()
    client = app.test_client()
    client.environ_base.update(OUR_PAGE_HEADERS)
    if behind_proxy:
        client.environ_base.update({"HTTP_X_FORWARDED_PROTO": "https", "HTTP_X_FORWARDED_FOR": "203.0.113.7"})
    return app, client


def test_production_over_https_accepts_our_forms_without_any_referer(https_browser):
    """Flask-WTF's strict mode refused every one of these (it wants a Referer that no-referrer never sends)."""
    app, client = https_browser
    auth = AuthActions(client)
    assert auth.register().status_code == 302
    assert client.get_cookie("__Host-session").secure
    assert auth.logout().status_code == 302
    assert auth.login().status_code == 302
    unique_id = create_secret(client, max_views="1")
    recipient = app.test_client()
    recipient.environ_base.update(client.environ_base)
    response = unlock(recipient, unique_id)
    assert response.status_code == 200
    assert SECRET_CONTENT in response.text
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_production_over_https_refuses_a_cross_site_form(https_browser):
    app, client = https_browser
    AuthActions(client).register()
    before = database_snapshot(app)
    response = post_form(client, "/create", secret_form(), headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 400
    assert database_snapshot(app) == before
