"""Security headers on every response: pages, errors, the API and static files."""

import pytest

from app import create_app, db
from config import ProductionConfig
from guards import IMAGE_CONTENT_SECURITY_POLICY
from tests.helpers import post_form
from tests.security.conftest import readable_paths

EXPECTED_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)



def test_every_route_sends_the_headers(world):
    anonymous_paths = ["/register", "/login"]
    responses = [world.alice.get(path) for path in readable_paths(world)]
    responses += [world.mallory.application.test_client().get(path) for path in anonymous_paths]
    for response in responses:
        response.close()
        headers = response.headers
        image = headers["Content-Type"].startswith("image/")  # shown on its own by the browser's viewer
        assert headers["Content-Security-Policy"] == (IMAGE_CONTENT_SECURITY_POLICY if image else EXPECTED_CSP)
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
        assert "camera=()" in headers["Permissions-Policy"]
        assert "Access-Control-Allow-Origin" not in headers
        assert "Strict-Transport-Security" not in headers  # only in production, behind TLS
        if headers["Content-Type"].startswith("text/"):
            assert "charset=utf-8" in headers["Content-Type"]


def test_secret_pages_are_noindex_and_no_store(world):
    for path in (f"/view/{world.secret_id}", f"/secrets/{world.secret_id}", "/dashboard"):
        response = world.alice.get(path)
        assert response.headers["X-Robots-Tag"] == "noindex, nofollow"
        assert response.headers["Cache-Control"] == "no-store"


def test_html_has_no_inline_script_or_style(world):
    for path in readable_paths(world):
        response = world.alice.get(path)
        response.close()
        if response.mimetype != "text/html":
            continue
        page = response.get_data(as_text=True)
        assert "<script>" not in page and "<style" not in page and " style=" not in page
        assert "onclick=" not in page and "javascript:" not in page


def test_logout_clears_site_data_but_not_every_cookie(world):
    response = post_form(world.alice, "/logout", {}, token_page="/dashboard")
    # Cookies are cleared by name: "cookies" here would also drop the device cookie that lets the owner back in.
    assert response.headers["Clear-Site-Data"] == '"cache", "storage"'


def test_production_sends_hsts(tmp_path):
    config = type(
        "Prod",
        (ProductionConfig,),
        {
            "SECRET_KEY": "k" * 64,
            "ENCRYPTION_KEYS": "k1:" + "A" * 43 + "=",
            "LOG_FILE": None,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'p.db'}",
            "TRUSTED_HOSTS": ["localhost"],
        },
    )
    app = create_app(config)
    with app.app_context():
        db.create_all()
    response = app.test_client().get("/.well-known/security.txt", base_url="https://localhost")
    assert response.status_code == 200
    assert response.headers["Strict-Transport-Security"] == "max-age=63072000; includeSubDomains"


@pytest.mark.parametrize("method", ["TRACE", "OPTIONS", "PUT", "PATCH", "CONNECT"])
def test_unused_methods_are_405(client, method):
    for path in ("/", "/login", "/view/" + "A" * 22):
        assert client.open(path, method=method).status_code == 405


def test_security_txt(client):
    response = client.get("/.well-known/security.txt")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    lines = response.text.splitlines()
    assert "Contact: mailto:security@example.org" in lines
    assert any(line.startswith("Expires: 2027-") for line in lines)
