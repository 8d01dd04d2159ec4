"""The JSON API: tokens, secrets by script, and the same rules as the pages."""

import hashlib
import io
import json
import os
import re
from datetime import timedelta

import pytest
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from app import create_app, db
from schema import ApiToken
from tests.helpers import (
    PASSWORD,
    SECRET_CONTENT,
    SECRET_PASSWORD,
    AuthActions,
    csrf_token,
    load_secret,
    make_config,
    post_form,
    unlock,
)
from tests.test_qr import decode

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


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        # A valid new secret but for its title: JSON escapes a NUL byte and a lone surrogate as \u0000 and \ud800.
        json.dumps({**NEW_SECRET, "title": "\x00"}).encode(),
        json.dumps({**NEW_SECRET, "title": "\ud800"}).encode(),
    ],
    ids=["not JSON", "not an object", "a NUL byte", "a lone surrogate"],
)
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


# --- API v1: the full contract ------------------------------------------------------------------------------------


@pytest.fixture
def api(app, token):
    """A client for the owner's scripts: every call carries the token."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


@pytest.fixture
def mallory(app):
    """Another user's script."""
    browser = app.test_client()
    AuthActions(browser).register(username="mallory", email="mallory@example.org")
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {issue_token(browser)}"
    return client


def create(api, **fields) -> dict:
    body = {key: value for key, value in {**NEW_SECRET, **fields}.items() if value is not None}
    response = api.post("/api/secrets", json=body)
    assert response.status_code == 201, response.json
    return response.json["secret"]


def api_unlock(client, unique_id: str, password: str = SECRET_PASSWORD):
    return client.post(f"/api/secrets/{unique_id}/unlock", json={"password": password})


def test_create_answers_201_with_location_links_and_utc_expiry(api, clock):
    response = api.post("/api/secrets", json={**NEW_SECRET, "expiration": None, "expires_in": 5400})
    assert response.status_code == 201
    secret = response.json["secret"]
    assert response.headers["Location"] == f"/api/secrets/{secret['id']}"
    assert secret["url"] == secret["link"] == f"http://localhost/view/{secret['id']}"
    assert secret["qr_png_url"] == f"http://localhost/api/secrets/{secret['id']}/qr.png"
    assert secret["qr_svg_url"] == f"http://localhost/api/secrets/{secret['id']}/qr.svg"
    assert secret["expires_at"] == (clock() + timedelta(seconds=5400)).isoformat()
    assert secret["expires_at"].endswith("+00:00")
    assert api.get(response.headers["Location"]).json["secret"]["id"] == secret["id"]


@pytest.mark.parametrize(("seconds", "status"), [(299, 400), (300, 201), (30 * 86400, 201), (30 * 86400 + 1, 400)])
def test_expires_in_keeps_the_forms_bounds(api, seconds, status):
    body = {key: value for key, value in NEW_SECRET.items() if key != "expiration"}
    response = api.post("/api/secrets", json={**body, "expires_in": seconds})
    assert response.status_code == status
    if status == 400:
        assert set(response.json["error"]["fields"]) == {"expires_in"}


def test_expires_in_and_expiration_together_are_refused(api):
    response = api.post("/api/secrets", json={**NEW_SECRET, "expires_in": 3600})
    assert response.status_code == 400
    assert set(response.json["error"]["fields"]) == {"expires_in"}


def test_confirm_is_optional_but_must_match_when_sent(api):
    body = {key: value for key, value in NEW_SECRET.items() if key != "confirm"}
    assert api.post("/api/secrets", json=body).status_code == 201
    mismatch = api.post("/api/secrets", json={**body, "confirm": "something-else"})
    assert mismatch.status_code == 400
    assert set(mismatch.json["error"]["fields"]) == {"confirm"}


def test_list_is_paginated_and_filtered(api):
    ids = [create(api, title=f"Secret {number}")["id"] for number in range(3)]
    api.delete(f"/api/secrets/{ids[0]}")
    first = api.get("/api/secrets?per_page=2").json
    assert [item["id"] for item in first["secrets"]] == [ids[2], ids[1]]
    assert (first["page"], first["per_page"], first["pages"], first["total"]) == (1, 2, 2, 3)
    assert [item["id"] for item in api.get("/api/secrets?per_page=2&page=2").json["secrets"]] == [ids[0]]
    beyond = api.get("/api/secrets?page=50")
    assert beyond.status_code == 200
    assert beyond.json["secrets"] == []
    assert [item["id"] for item in api.get("/api/secrets?status=deleted").json["secrets"]] == [ids[0]]


def test_another_users_secret_is_404_on_every_owner_route(api, mallory):
    unique_id = create(api)["id"]
    calls = [
        mallory.get(f"/api/secrets/{unique_id}"),
        mallory.patch(f"/api/secrets/{unique_id}", json={"title": "Mine now"}),
        mallory.delete(f"/api/secrets/{unique_id}"),
        mallory.get(f"/api/secrets/{unique_id}/events"),
        mallory.get(f"/api/secrets/{unique_id}/qr.png"),
        mallory.get(f"/api/secrets/{unique_id}/qr.svg"),
    ]
    assert [(call.status_code, call.json["error"]["reason"]) for call in calls] == [(404, "not_found")] * 6
    assert api.get(f"/api/secrets/{unique_id}").json["secret"]["status"] == "active"


def test_patch_changes_the_settings(api, clock):
    unique_id = create(api)["id"]
    changes = {"title": "Renamed", "blur_level": 3, "max_views": None, "expires_in": 600}
    response = api.patch(f"/api/secrets/{unique_id}", json=changes)
    assert response.status_code == 200
    secret = response.json["secret"]
    assert (secret["title"], secret["blur_level"], secret["max_views"]) == ("Renamed", 3, None)
    assert secret["expires_at"] == (clock() + timedelta(seconds=600)).isoformat()
    unchanged = api.patch(f"/api/secrets/{unique_id}", json={"blur_level": 4}).json["secret"]
    assert (unchanged["title"], unchanged["blur_level"], unchanged["expires_at"]) == ("Renamed", 4, secret["expires_at"])
    assert SECRET_CONTENT in api_unlock(api, unique_id).json["secret"]["content"]


def test_patch_max_views_must_stay_above_the_views_taken(app, api):
    unique_id = create(api, max_views=3)["id"]
    api_unlock(app.test_client(), unique_id)
    refused = api.patch(f"/api/secrets/{unique_id}", json={"max_views": 1})
    assert refused.status_code == 400
    assert set(refused.json["error"]["fields"]) == {"max_views"}
    assert api.patch(f"/api/secrets/{unique_id}", json={"max_views": 2}).json["secret"]["max_views"] == 2


def test_patch_of_an_ended_secret_is_410(api):
    unique_id = create(api)["id"]
    api.delete(f"/api/secrets/{unique_id}")
    response = api.patch(f"/api/secrets/{unique_id}", json={"title": "Back"})
    assert response.status_code == 410
    assert response.json["error"]["reason"] == "gone"


def test_unlock_needs_no_sign_in_and_counts_a_view(app, api, clock):
    unique_id = create(api, max_views=2)["id"]
    response = api_unlock(app.test_client(), unique_id)
    assert response.status_code == 200
    assert response.json == {
        "success": True,
        "secret": {
            "title": "Deploy key",
            "content": SECRET_CONTENT,
            "view_count": 1,
            "max_views": 2,
            "expires_at": (clock() + timedelta(hours=1)).isoformat(),
            "files": [],
        },
    }
    assert load_secret(app, unique_id).view_count == 1


def test_unlock_burns_the_last_view_like_the_page(app, api):
    unique_id = create(api, max_views=1)["id"]
    assert api_unlock(app.test_client(), unique_id).status_code == 200
    again = api_unlock(app.test_client(), unique_id)
    assert (again.status_code, again.json["error"]["reason"]) == (410, "gone")
    secret = load_secret(app, unique_id)
    assert (secret.status, secret.ciphertext) == ("used_up", None)
    assert unlock(app.test_client(), unique_id).status_code == 410  # the page agrees


def test_wrong_passwords_count_down_then_destroy_and_wipe(app, api):
    unique_id = create(api)["id"]
    recipient = app.test_client()
    for left in (4, 3, 2, 1):
        response = api_unlock(recipient, unique_id, "wrong-password")
        assert response.status_code == 403
        assert response.json["error"]["reason"] == "wrong_password"
        assert response.json["error"]["tries_left"] == left
        assert SECRET_CONTENT not in response.text
    last = api_unlock(recipient, unique_id, "wrong-password")
    assert (last.status_code, last.json["error"]["reason"]) == (410, "destroyed")
    secret = load_secret(app, unique_id)
    assert (secret.status, secret.ciphertext, secret.salt) == ("destroyed", None, None)
    after = api_unlock(recipient, unique_id)
    assert (after.status_code, after.json["error"]["reason"]) == (410, "gone")


def test_unlock_of_an_expired_or_unknown_secret(app, api, clock):
    unique_id = create(api)["id"]
    clock.advance(hours=1)
    expired = api_unlock(app.test_client(), unique_id)
    assert (expired.status_code, expired.json["error"]["reason"]) == (410, "gone")
    assert load_secret(app, unique_id).ciphertext is None
    unknown = api_unlock(app.test_client(), "A" * 22)
    assert (unknown.status_code, unknown.json["error"]["reason"]) == (404, "not_found")


def test_events_list_who_tried_newest_first(app, api):
    unique_id = create(api)["id"]
    recipient = app.test_client()
    api_unlock(recipient, unique_id, "wrong-password")
    api_unlock(recipient, unique_id)
    events = api.get(f"/api/secrets/{unique_id}/events").json
    assert [event["outcome"] for event in events["events"]] == ["unlocked", "wrong_password"]
    assert events["total"] == 2
    assert events["events"][0]["ip_prefix"] == "127.0.0.0/24"
    second_page = api.get(f"/api/secrets/{unique_id}/events?per_page=1&page=2").json["events"]
    assert [event["outcome"] for event in second_page] == ["wrong_password"]


def test_qr_codes_by_token_decode_to_the_link_and_end_with_the_secret(api):
    secret = create(api)
    png = api.get(secret["qr_png_url"].removeprefix("http://localhost"))
    assert (png.status_code, png.mimetype) == (200, "image/png")
    assert decode(png.data) == secret["url"]
    svg = api.get(secret["qr_svg_url"].removeprefix("http://localhost"))
    assert (svg.status_code, svg.mimetype) == (200, "image/svg+xml")
    api.delete(f"/api/secrets/{secret['id']}")
    assert api.get(f"/api/secrets/{secret['id']}/qr.png").status_code == 410


@pytest.mark.parametrize("name", ["token", "access_token", "api_key", "Token"])
def test_token_in_the_query_string_is_refused(app, token, name):
    response = app.test_client().get(f"/api/secrets?{name}={token}")
    assert response.status_code == 400
    assert response.json["error"]["reason"] == "token_in_query"


def test_errors_share_one_envelope(app, token):
    client = app.test_client()
    for response in (client.get("/api/auth/check"), client.get("/api/no/such/thing"), client.put("/api/secrets")):
        assert response.json["success"] is False
        assert set(response.json["error"]) >= {"code", "reason", "message"}
        assert response.json["error"]["code"] == response.status_code


def test_page_and_api_share_the_unlock_budgets(tmp_path, clock):
    app = create_app(make_config(tmp_path, clock, RATELIMIT_ENABLED=True, RATELIMIT_UNLOCK_SECRET="3 per minute"))
    with app.app_context():
        db.create_all()
    browser = app.test_client()
    AuthActions(browser).register()
    owner = app.test_client()
    owner.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {issue_token(browser)}"
    unique_id = create(owner)["id"]
    statuses = []
    for number in range(4):
        guesser = app.test_client()
        guesser.environ_base["REMOTE_ADDR"] = f"198.51.100.{number}"
        door = unlock if number % 2 else api_unlock
        statuses.append(door(guesser, unique_id, "wrong-guess").status_code)
    assert statuses == [403, 403, 403, 429]


def test_the_document_describes_every_api_route_and_both_sign_ins(app, client):
    document = client.get("/api/openapi.json").json
    assert document["openapi"] == "3.1.0"
    documented = {(path, method.upper()) for path, operations in document["paths"].items() for method in operations}
    routed = {
        (re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule), method)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert documented == routed
    assert set(document["components"]["securitySchemes"]) == {"bearerAuth", "cookieAuth", "csrfToken"}
    unlock_operation = document["paths"]["/api/secrets/{unique_id}/unlock"]["post"]
    assert unlock_operation["security"] == []
    assert {"200", "403", "404", "410", "429", "503"} <= set(unlock_operation["responses"])


def test_the_published_body_schemas_are_the_ones_enforced(api, client):
    """Each documented body accepts exactly its documented names: one more is refused, naming it."""
    document = client.get("/api/openapi.json").json
    unique_id = create(api)["id"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if "requestBody" not in operation:
                continue
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            assert schema["additionalProperties"] is False
            call = getattr(api, method)
            response = call(path.replace("{unique_id}", unique_id), json={"not_documented": 1})
            assert response.status_code == 422, (method, path)
            assert response.json["error"]["fields"] == {"not_documented": ["This is not one of the accepted names."]}


def test_docs_page_is_our_own_template_without_inline_code(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    text = page.text
    for path in ("/api/secrets", "/api/secrets/{unique_id}/unlock", "/api/secrets/{unique_id}/events"):
        assert path in text
    assert "Authorization: Bearer" in text and "X-CSRFToken" in text
    assert re.findall(r"<script(?![^>]*\bsrc=)", text) == []
    assert " style=" not in text and "<style" not in text
    assert "http" not in "".join(re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', text))


def test_create_takes_files_beside_its_json_and_unlock_lists_their_links(app, api, clock):
    clock.advance(minutes=2)  # the token's use is due to be recorded (a commit) before the files stream in
    fields = MultiDict({"secret": json.dumps({**NEW_SECRET, "content": ""})})
    fields.add("files", FileStorage(io.BytesIO(b"-----BEGIN KEY-----"), "deploy.key"))
    fields.add("files", FileStorage(io.BytesIO(os.urandom(70_000)), "blob.bin"))
    boundary, body = encode_multipart(fields)
    created = api.post("/api/secrets", data=body, content_type=f"multipart/form-data; boundary={boundary}")
    assert created.status_code == 201, created.json
    unique_id = created.json["secret"]["id"]
    unlocked = api_unlock(app.test_client(), unique_id).json["secret"]
    assert (unlocked["content"], [(f["name"], f["size"]) for f in unlocked["files"]]) == (
        "",
        [("deploy.key", 19), ("blob.bin", 70_000)],
    )
    download = app.test_client().get(unlocked["files"][0]["url"])
    assert download.data == b"-----BEGIN KEY-----" and download.headers["Content-Disposition"].startswith("attachment")


def test_json_without_files_still_needs_content(api):
    response = api.post("/api/secrets", json={**NEW_SECRET, "content": ""})
    assert (response.status_code, list(response.json["error"]["fields"])) == (400, ["content"])


def test_openapi_describes_the_multipart_create_and_the_unlocked_files(app, api):
    document = app.test_client().get("/api/openapi.json").json
    create_body = document["paths"]["/api/secrets"]["post"]["requestBody"]["content"]
    assert set(create_body) == {"application/json", "multipart/form-data"}
    assert create_body["multipart/form-data"]["encoding"]["secret"]["contentType"] == "application/json"
    assert "files" in document["components"]["schemas"]["Unlocked"]["properties"]["secret"]["properties"]


def test_the_secret_tells_its_owner_how_many_files_and_the_storage_policy_answers_413(app, api, clock):
    clock.advance(minutes=2)
    app.config["FILE_STORAGE_PER_USER"] = 100_000

    def create_with(size: int):
        fields = MultiDict({"secret": json.dumps({**NEW_SECRET, "content": ""})})
        fields.add("files", FileStorage(io.BytesIO(os.urandom(size)), "blob.bin"))
        boundary, body = encode_multipart(fields)
        headers = {"Accept-Language": "de"}  # the API answers in English all the same
        return api.post("/api/secrets", data=body, content_type=f"multipart/form-data; boundary={boundary}", headers=headers)

    created = create_with(70_000)
    assert created.status_code == 201, created.json
    assert (created.json["secret"]["file_count"], created.json["secret"]["file_bytes"]) == (1, 70_000)
    refused = create_with(40_000)
    assert (refused.status_code, refused.json["error"]["reason"]) == (413, "storage_full")
    assert refused.json["error"]["message"].startswith("Your active secrets hold 68.4 KiB of files")
    listed = api.get("/api/secrets").json["secrets"]
    assert [(secret["file_count"], secret["file_bytes"]) for secret in listed] == [(1, 70_000)]
