"""The JSON API: tokens, secrets by script, and the same rules as the pages."""

import hashlib
import re

import pytest

from app import db
from schema import ApiToken
from tests.helpers import PASSWORD, SECRET_CONTENT, SECRET_PASSWORD, csrf_token, post_form, unlock

NEW_SECRET = {
    "title": "Deploy key",
    "content": SECRET_CONTENT,
    "password": SECRET_PASSWORD,
    "confirm": SECRET_PASSWORD,
    "expiration": "1h",
    "max_views": 2,
    "blur_level": 8,
}


def issue_token(client, name: str = "script", lifetime: str = "90d", password: str = PASSWORD) -> str:
    """Create an API token on the account page (re-authenticating) and return it as shown, once."""
    page = post_form(
        client, "/account/tokens", {"name": name, "lifetime": lifetime, "current_password": password}, token_page="/account"
    )
    assert page.status_code == 200, page.text
    return re.search(r'id="api-token" value="([^"]+)"', page.text).group(1)


@pytest.fixture
def token(logged_in_client):
    return issue_token(logged_in_client)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_token_is_shown_once_and_stored_only_as_a_hash(app, logged_in_client, token):
    assert token.startswith("ss_")
    with app.app_context():
        row = db.session.execute(db.select(ApiToken)).scalar_one()
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert row.name == "script"
    assert token not in logged_in_client.get("/account").text
    assert token not in logged_in_client.get("/account/tokens").text


def test_several_tokens_work_side_by_side(app, logged_in_client, token):
    second = issue_token(logged_in_client, name="backup")
    client = app.test_client()
    assert client.get("/api/auth/check", headers=bearer(token)).json["user"]["username"] == "alice"
    assert client.get("/api/auth/check", headers=bearer(second)).json["user"]["username"] == "alice"


def test_create_list_get_delete_with_a_token(app, token):
    client = app.test_client()
    created = client.post("/api/secrets", json=NEW_SECRET, headers=bearer(token))
    assert created.status_code == 201
    secret = created.json["secret"]
    assert secret["title"] == "Deploy key"
    assert secret["link"] == f"http://localhost/view/{secret['id']}"
    assert (secret["max_views"], secret["blur_level"], secret["status"]) == (2, 8, "active")
    assert SECRET_CONTENT not in created.text and SECRET_PASSWORD not in created.text
    assert SECRET_CONTENT in unlock(app.test_client(), secret["id"]).text

    listed = client.get("/api/secrets", headers=bearer(token)).json
    assert [item["id"] for item in listed["secrets"]] == [secret["id"]]
    assert listed["secrets"][0]["view_count"] == 1

    one = client.get(f"/api/secrets/{secret['id']}", headers=bearer(token))
    assert one.json["secret"]["view_count"] == 1

    deleted = client.delete(f"/api/secrets/{secret['id']}", headers=bearer(token))
    assert deleted.status_code == 200
    assert deleted.json["secret"]["status"] == "deleted"
    assert deleted.json["secret"]["link"] is None


def test_validation_errors_name_the_fields(app, token):
    response = app.test_client().post(
        "/api/secrets", json={**NEW_SECRET, "blur_level": 99, "password": "x", "confirm": "x"}, headers=bearer(token)
    )
    assert response.status_code == 400
    fields = response.json["error"]["fields"]
    assert set(fields) == {"blur_level", "password"}


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"title": "\\u0000"}', b'{"title": "\\ud800"}'])
def test_bad_json_is_400(app, token, body):
    response = app.test_client().post("/api/secrets", data=body, content_type="application/json", headers=bearer(token))
    assert response.status_code == 400
    assert response.json["error"]["code"] == 400


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer ss_wrong"}, {"Authorization": "Basic abc"}])
def test_no_or_wrong_token_is_401(app, headers):
    client = app.test_client()
    assert client.get("/api/secrets", headers=headers).status_code == 401
    assert client.post("/api/secrets", json=NEW_SECRET, headers=headers).status_code == 401


def test_cookie_callers_need_the_csrf_token(logged_in_client):
    refused = logged_in_client.post("/api/secrets", json=NEW_SECRET)
    assert refused.status_code == 400
    assert refused.json["error"]["code"] == 400
    accepted = logged_in_client.post(
        "/api/secrets", json=NEW_SECRET, headers={"X-CSRFToken": csrf_token(logged_in_client, "/dashboard")}
    )
    assert accepted.status_code == 201
