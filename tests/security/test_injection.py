"""Stored XSS, template injection and SQL injection: every payload stays inert text."""

import html

import pytest

from tests.helpers import AuthActions, create_secret, database_snapshot, unlock

XSS_PAYLOADS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "javascript:alert(1)",
    "<svg/onload=alert(1)>",
]
SQL_PAYLOADS = ["' OR '1'='1", "'; DROP TABLE secret; --", '" OR 1=1 --', "1; SELECT * FROM user"]


def pages_showing(world, unique_id: str) -> list[str]:
    paths = [
        "/dashboard",
        f"/secrets/{unique_id}",
        f"/secrets/{unique_id}/edit",
        f"/secrets/{unique_id}/card",
        f"/secrets/{unique_id}/delete",
    ]
    return [world.alice.get(path).get_data(as_text=True) for path in paths]


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_xss_in_title_and_content_is_rendered_inert(app, world, payload):
    unique_id = create_secret(world.alice, title=payload[:100], content=payload)
    unlocked = unlock(app.test_client(), unique_id).get_data(as_text=True)
    for page in [*pages_showing(world, unique_id), unlocked]:
        if "<" in payload:
            assert payload not in page
    assert payload.replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;") in unlocked
    api = world.alice.get(f"/api/secrets/{unique_id}")
    assert api.mimetype == "application/json"
    assert api.json["secret"]["title"] == payload[:100]


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_xss_in_username_and_email_is_refused_and_not_reflected(app, payload):
    client = app.test_client()
    response = AuthActions(client).register(username=payload, email=f"{payload}@example.org")
    assert response.status_code == 400
    if "<" in payload:
        assert payload not in response.get_data(as_text=True)


def test_template_injection_stays_text(app, world):
    unique_id = create_secret(world.alice, title="{{7*7}} {% print 7*7 %}", content="{{ config.SECRET_KEY }} ${7*7}")
    unlocked = unlock(app.test_client(), unique_id).get_data(as_text=True)
    assert "{{ config.SECRET_KEY }} ${7*7}" in unlocked
    assert app.secret_key not in unlocked
    detail = world.alice.get(f"/secrets/{unique_id}").get_data(as_text=True)
    assert "{{7*7}}" in detail and ">49<" not in detail


@pytest.mark.parametrize("payload", SQL_PAYLOADS)
def test_sql_injection_in_sign_in_is_just_a_failed_sign_in(app, world, payload):
    before = database_snapshot(app)
    client = app.test_client()
    assert AuthActions(client).login(login=payload, password=payload).status_code == 400
    assert client.get("/api/auth/check").status_code == 401
    assert database_snapshot(app) == before


@pytest.mark.parametrize("payload", SQL_PAYLOADS)
def test_sql_injection_in_fields_is_stored_verbatim(app, world, payload):
    unique_id = create_secret(world.alice, title=payload, content=payload, password=payload + "-pw")
    assert payload in html.unescape(unlock(app.test_client(), unique_id, payload + "-pw").get_data(as_text=True))
    assert world.alice.get("/api/secrets").json["secrets"][0]["title"] == payload


@pytest.mark.parametrize("payload", ["%27%20OR%20%271%27%3D%271", "1%3B%20DROP%20TABLE%20user", "..%2F..%2Fetc%2Fpasswd"])
def test_sql_injection_in_paths_and_queries_is_harmless(app, world, payload):
    before = database_snapshot(app)
    for path in (f"/view/{payload}", f"/secrets/{payload}", f"/api/secrets/{payload}"):
        assert world.alice.get(path).status_code == 404
    assert world.alice.get(f"/dashboard?status={payload}").status_code == 200
    assert world.alice.get(f"/dashboard?page={payload}").status_code == 400  # refused, never read as page 1
    assert database_snapshot(app) == before
