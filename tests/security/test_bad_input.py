"""Hostile input gets a clear 4xx and changes nothing."""

import pytest
from sqlalchemy import event

from app import create_app, db
from tests.helpers import PASSWORD, csrf_token, database_snapshot, make_config, post_form, secret_form, unlock


def raw_post(client, path: str, body: bytes, token_page: str = "/login"):
    token = csrf_token(client, token_page).encode()
    return client.post(path, data=b"csrf_token=" + token + b"&" + body, content_type="application/x-www-form-urlencoded")


@pytest.mark.parametrize(
    "bad",
    [
        b"%FF",  # invalid UTF-8
        b"%00",  # NUL byte
        b"%ED%A0%80",  # a lone surrogate, UTF-8 encoded
        b"%C0%AF",  # overlong encoding
    ],
)
def test_malformed_text_in_a_form_is_400(app, client, bad):
    # A sign-up that would succeed but for the bad bytes in its (matching) passwords.
    password = PASSWORD.encode() + bad
    body = b"username=alice&email=alice%40example.org&password=" + password + b"&confirm=" + password
    before = database_snapshot(app)
    response = raw_post(client, "/register", body)
    assert response.status_code == 400
    assert database_snapshot(app) == before


@pytest.mark.parametrize("query", ["q=%FF", "q=%00", "q=%ED%B0%80"])
def test_malformed_text_in_the_query_is_400(client, query):
    assert client.get(f"/login?{query}").status_code == 400


def multipart_body(fields: dict[str, bytes]) -> bytes:
    part = b'--X\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
    return b"".join(part % (name.encode(), value) for name, value in fields.items()) + b"--X--\r\n"


def test_malformed_multipart_form_is_400(app, logged_in_client):
    # A complete, valid new secret but for the bad byte in its title.
    fields = {name: value.encode() for name, value in secret_form().items()}
    token = csrf_token(logged_in_client, "/create")
    body = multipart_body({"csrf_token": token.encode(), **fields, "title": b"bad \xff byte"})
    before = database_snapshot(app)
    response = logged_in_client.post("/create", data=body, content_type="multipart/form-data; boundary=X")
    assert response.status_code == 400
    assert database_snapshot(app) == before


def test_body_over_the_limit_is_413(app, logged_in_client):
    before = database_snapshot(app)
    response = post_form(logged_in_client, "/create", {"title": "t", "content": "x" * (256 * 1024)})
    assert response.status_code == 413
    assert "larger than SecureShare accepts" in response.text
    assert database_snapshot(app) == before


def test_json_body_over_the_limit_is_413_json(client):
    response = client.post("/api/secrets", data=b"{" + b" " * (300 * 1024) + b"}", content_type="application/json")
    assert response.status_code == 413
    assert response.json["error"]["code"] == 413


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "multipart/form-data"])
def test_too_many_form_parts_is_413(client, content_type):
    fields = {f"field{number}": "x" for number in range(60)}
    if content_type.startswith("application"):
        response = client.post("/login", data="&".join(f"{k}={v}" for k, v in fields.items()), content_type=content_type)
    else:
        response = client.post("/login", data=fields, content_type=content_type)
    assert response.status_code == 413


def test_ids_that_do_not_match_the_pattern_are_404_without_a_query(app, client):
    client.get("/")  # let the once-a-minute maintenance run first
    statements = []
    with app.app_context():
        engine = db.engine
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        for bad in ("short", "x" * 44, "has.dots.in.it.aaaaaaaaaaaa", "%27%20OR%201%3D1--aaaaaaaaaaaaaaa"):
            assert client.get(f"/view/{bad}").status_code == 404
            assert client.post(f"/view/{bad}").status_code == 404
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert statements == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("blur_level", "99"), ("blur_level", "1e3"), ("max_views", "-5"), ("max_views", "ten"), ("custom_amount", "0x10")],
)
def test_out_of_range_settings_are_field_errors(app, logged_in_client, field, value):
    before = database_snapshot(app)
    data = secret_form(**{"expiration": "custom", "custom_amount": "2", field: value})
    response = post_form(logged_in_client, "/create", data)
    assert response.status_code == 400
    assert 'aria-invalid="true"' in response.text
    assert database_snapshot(app) == before


def test_untrusted_host_is_400(app, client):
    response = client.get("/", headers={"Host": "evil.example"})
    assert response.status_code == 400
    assert "evil.example" not in response.text


@pytest.mark.parametrize(
    ("trusted", "host", "status"),
    [
        (["localhost"], "LOCALHOST", 200),  # host names have no letter case
        (["localhost"], "localhost:9999", 400),  # a port not listed is another site
        (["secrets.example.org:8443"], "Secrets.Example.Org:8443", 200),
        (["secrets.example.org:8443"], "secrets.example.org", 400),
        (["secrets.example.org:8443"], "secrets.example.org:8444", 400),
        ([".example.org"], "a.b.Example.org", 200),
        ([".example.org"], "example.org", 200),
        ([".example.org"], "badexample.org", 400),
        (["[::1]:5000"], "[::1]:5000", 200),
        (["[::1]:5000"], "[::1]", 400),
    ],
)
def test_trusted_hosts_ignore_letter_case_and_match_ports(tmp_path, clock, trusted, host, status):
    """Fault: `LOCALHOST` was refused and `localhost:9999` accepted: Werkzeug's check was case-sensitive and
    ignored ports."""
    app = create_app(make_config(tmp_path, clock, TRUSTED_HOSTS=trusted))
    assert app.test_client().get("/", headers={"Host": host}).status_code == status


def test_forwarded_host_never_reaches_links_or_codes(app, logged_in_client):
    from tests.helpers import create_secret

    logged_in_client.environ_base["HTTP_X_FORWARDED_HOST"] = "evil.example"
    unique_id = create_secret(logged_in_client)
    page = logged_in_client.get(f"/secrets/{unique_id}").text
    assert "evil.example" not in page
    assert f"http://localhost/view/{unique_id}" in page


def test_overlong_password_is_a_field_error_not_a_crash(world):
    response = unlock(world.mallory, world.secret_id, "p" * 129)
    assert response.status_code == 400
    assert PASSWORD not in response.text


def test_a_400_digit_custom_amount_is_a_field_error(app, logged_in_client):
    before = database_snapshot(app)
    response = post_form(logged_in_client, "/create", secret_form(expiration="custom", custom_amount="9" * 400))
    assert response.status_code == 400
    assert "Choose between" in response.text
    assert database_snapshot(app) == before


@pytest.mark.parametrize("page", ["9223372036854775808", "0", "-1", "abc", "1e3"])
def test_a_page_number_out_of_range_is_400(logged_in_client, page):
    assert logged_in_client.get(f"/dashboard?page={page}").status_code == 400
    assert logged_in_client.get(f"/api/secrets?page={page}").status_code == 400


def test_deeply_nested_json_is_400(app, logged_in_client):
    token = csrf_token(logged_in_client, "/dashboard")
    body = '{"title": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = logged_in_client.post(
        "/api/secrets", data=body, content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert response.status_code == 400
    assert response.json["error"]["code"] == 400


@pytest.mark.parametrize("max_views", [1.0, True, [1], {"n": 1}])
def test_max_views_of_the_wrong_type_is_refused(app, logged_in_client, max_views):
    from tests.test_api import NEW_SECRET

    before = database_snapshot(app)
    token = csrf_token(logged_in_client, "/dashboard")
    response = logged_in_client.post(
        "/api/secrets", json={**NEW_SECRET, "max_views": max_views}, headers={"X-CSRFToken": token}
    )
    assert response.status_code in {400, 422}
    assert database_snapshot(app) == before


def test_a_chunked_body_over_the_limit_is_413_not_cut(app, logged_in_client):
    import io

    before = database_snapshot(app)
    token = csrf_token(logged_in_client, "/create").encode()
    body = b"csrf_token=" + token + b"&title=t&password=open-sesame-42&confirm=open-sesame-42&content=" + b"x" * (300 * 1024)
    response = logged_in_client.post(
        "/create",
        input_stream=io.BytesIO(body),
        headers={"Transfer-Encoding": "chunked", "Content-Type": "application/x-www-form-urlencoded"},
        environ_overrides={"wsgi.input_terminated": True},  # what gunicorn sets for a chunked body
    )
    assert response.status_code == 413
    assert database_snapshot(app) == before
# --- the JSON API: strict input, never a 500, nothing changed --------------------------------------------------------

API_SECRET = {"title": "Deploy key", "content": "s3cret", "password": "open-sesame-42", "expiration": "1h", "blur_level": 10}


@pytest.fixture
def script(app, logged_in_client):
    """A client with alice's API token, for calls that must be refused."""
    from tests.test_api import issue_token

    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {issue_token(logged_in_client)}"
    assert client.get("/api/auth/check").status_code == 200  # first use noted now, so refusals change nothing
    return client


def assert_refused(app, before, response, status: int, reason: str):
    assert response.status_code == status, response.text
    assert response.json["success"] is False
    assert response.json["error"]["reason"] == reason
    assert database_snapshot(app) == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_views", 1.0),
        ("max_views", True),
        ("max_views", "1"),
        ("blur_level", "10"),
        ("blur_level", 10.5),
        ("blur_level", False),
        ("blur_level", None),
        ("title", 5),
        ("title", ["a"]),
        ("password", None),
        ("expires_in", "3600"),
        ("custom_amount", 10**400),
        ("expiration", "forever"),
    ],
)
def test_a_value_of_the_wrong_type_or_range_is_400_naming_the_field(app, script, field, value):
    before = database_snapshot(app)
    body = {**API_SECRET, field: value}
    if field in {"custom_amount", "expires_in"}:
        body.pop("expiration")
    response = script.post("/api/secrets", json=body)
    assert_refused(app, before, response, 400, "invalid_fields")
    assert list(response.json["error"]["fields"]) == [field]


def test_a_custom_expiry_without_its_amount_is_400_not_a_crash(app, script):
    before = database_snapshot(app)
    response = script.post("/api/secrets", json={**API_SECRET, "expiration": "custom", "custom_unit": "days"})
    assert_refused(app, before, response, 400, "invalid_fields")
    assert list(response.json["error"]["fields"]) == ["custom_amount"]


def test_unknown_fields_are_422_naming_them(app, script):
    before = database_snapshot(app)
    response = script.post("/api/secrets", json={**API_SECRET, "owner_id": 2, "status": "active"})
    assert_refused(app, before, response, 422, "unknown_fields")
    assert set(response.json["error"]["fields"]) == {"owner_id", "status"}
    assert "owner_id" in response.json["error"]["message"]


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", None])
def test_a_body_that_is_not_declared_json_is_415(app, script, content_type):
    before = database_snapshot(app)
    response = script.post("/api/secrets", data=b'{"title": "x"}', content_type=content_type)
    assert_refused(app, before, response, 415, "unsupported_media_type")


def test_a_multipart_create_without_its_json_part_is_refused(app, script):
    """Multipart is the create with files: its JSON must come as the part `secret`."""
    before = database_snapshot(app)
    response = script.post("/api/secrets", data=b'{"title": "x"}', content_type="multipart/form-data; boundary=X")
    assert_refused(app, before, response, 400, "invalid_json")


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,  # Flask's own parser raised RecursionError on this: a 500
        b'{"title": ' + b"[" * 20 + b"]" * 20 + b"}",
        b'{"title": "' + b"[" * 100 + b'"}',  # brackets inside a string are text, not nesting
        b'{"max_views": NaN}',
        b'{"max_views": ' + b"9" * 5000 + b"}",  # beyond Python's int-from-text limit
        b"\xff\xfe{}",
        b"",
    ],
)
def test_bad_or_too_deep_json_is_400(app, script, body):
    before = database_snapshot(app)
    response = script.post("/api/secrets", data=body, content_type="application/json")
    if body.startswith(b'{"title": "['):
        assert_refused(app, before, response, 400, "invalid_fields")  # parsed fine; only the form's rules refuse it
    else:
        assert_refused(app, before, response, 400, "invalid_json")


def test_deep_json_on_the_unauthenticated_unlock_is_400(app, client):
    response = client.post("/api/secrets/" + "A" * 22 + "/unlock", data=b"{" * 50_000, content_type="application/json")
    assert response.status_code == 400
    assert response.json["error"]["reason"] == "invalid_json"


@pytest.mark.parametrize("password", [1234, None, True, ["x"], "", "p" * 129])
def test_unlock_password_must_be_a_string_of_the_forms_length(app, world, password):
    before = database_snapshot(app)
    response = world.mallory.post(f"/api/secrets/{world.secret_id}/unlock", json={"password": password})
    assert_refused(app, before, response, 400, "invalid_fields")
    assert list(response.json["error"]["fields"]) == ["password"]


@pytest.mark.parametrize(
    ("query", "status", "reason"),
    [
        ("page=0", 400, "invalid_fields"),
        ("page=-1", 400, "invalid_fields"),
        ("page=abc", 400, "invalid_fields"),
        ("page=1.5", 400, "invalid_fields"),
        ("page=" + "9" * 30, 400, "invalid_fields"),
        ("per_page=101", 400, "invalid_fields"),
        ("status=everything", 400, "invalid_fields"),
        ("sort=title", 422, "unknown_fields"),
    ],
)
def test_query_parameters_are_typed_too(app, script, query, status, reason):
    before = database_snapshot(app)
    assert_refused(app, before, script.get(f"/api/secrets?{query}"), status, reason)


def test_a_page_beyond_the_last_is_empty_not_an_error(script):
    response = script.get("/api/secrets?page=100000&per_page=100")
    assert response.status_code == 200
    assert response.json["secrets"] == []


def test_a_custom_expiry_left_out_on_the_page_is_a_field_error(app, logged_in_client):
    before = database_snapshot(app)
    response = post_form(logged_in_client, "/create", secret_form(expiration="custom", custom_amount=""))
    assert response.status_code == 400
    assert "Enter how long it should last." in response.text
    assert database_snapshot(app) == before


@pytest.mark.parametrize(
    "body",
    [{"login": 123, "password": "x"}, {"login": {"a": 1}, "password": "x"}, {"login": "a\u0000b", "password": "x"}],
    ids=["number", "object", "nul"],
)
def test_a_page_form_sent_as_json_is_415(client, body):
    """Fault: Flask-WTF read a JSON body as the form, past the malformed-input checks: numbers and objects were 500s,
    and a NUL byte reached the database."""
    token = csrf_token(client, "/login")
    assert client.post("/login", json=body, headers={"X-CSRFToken": token}).status_code == 415


def test_a_secret_sent_as_json_to_the_page_is_refused_and_nothing_is_stored(app, logged_in_client):
    token = csrf_token(logged_in_client, "/create")
    form = {"title": "a\x00b", "content": "c\x00d", "password": "secret-pass-1", "confirm": "secret-pass-1",
            "expiration": "24h", "custom_unit": "hours", "blur_level": "10", "max_views": ""}  # fmt: skip
    before = database_snapshot(app)
    assert logged_in_client.post("/create", json=form, headers={"X-CSRFToken": token}).status_code == 415
    assert database_snapshot(app) == before
