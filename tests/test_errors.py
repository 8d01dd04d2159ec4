"""Error pages: one friendly page per status, JSON under /api/, never a stack trace."""

import pytest
from flask import abort

ERROR_CODES = [400, 403, 404, 405, 410, 413, 429, 500]


@pytest.fixture
def app(app):
    """The app with routes that fail on purpose (added before its first request)."""

    def fail(code: int):
        if code == 500:
            raise RuntimeError("boom: internal detail that must stay private")
        abort(code)

    app.add_url_rule("/boom/<int:code>", "boom", fail)
    app.add_url_rule("/api/boom/<int:code>", "api_boom", fail)
    return app


@pytest.mark.parametrize("code", ERROR_CODES)
def test_error_pages_are_friendly_html(client, code):
    response = client.get(f"/boom/{code}")
    assert response.status_code == code
    assert response.mimetype == "text/html"
    assert "SecureShare" in response.text
    assert "Traceback" not in response.text and "boom:" not in response.text
    assert "Werkzeug" not in response.text


@pytest.mark.parametrize("code", ERROR_CODES)
def test_api_errors_are_json(client, code):
    response = client.get(f"/api/boom/{code}")
    assert response.status_code == code
    assert response.json["error"]["code"] == code
    assert response.json["error"]["message"]
    assert "boom:" not in response.text


def test_500_is_logged_with_the_request_id_the_page_shows(client, log_text):
    response = client.get("/boom/500")
    request_id = response.headers["X-Request-ID"]
    assert request_id in response.text
    log = log_text()
    assert f"[{request_id}] unhandled error" in log
    assert "RuntimeError" in log


def test_unknown_page_is_404(client):
    assert client.get("/no/such/page").status_code == 404


def test_wrong_method_is_405_with_allow(client):
    response = client.delete("/login")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
