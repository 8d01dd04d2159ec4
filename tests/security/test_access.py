"""Access control: GET never changes state, and no owner route or API path serves another user's secret."""

import pytest

from tests.helpers import csrf_token, database_snapshot, post_form
from tests.security.conftest import readable_paths


def test_get_and_head_never_change_state(app, world):
    world.alice.get("/")  # the once-a-minute maintenance may write; let it run first
    before = database_snapshot(app)
    for path in readable_paths(world):
        world.alice.get(path).close()
        world.alice.head(path).close()
        world.mallory.get(path).close()
    assert database_snapshot(app) == before


def owner_routes(world) -> list[tuple[str, str]]:
    sid = world.secret_id
    pages = ["", "/edit", "/delete", "/card", "/qr.png", "/qr.svg"]
    return [("GET", f"/secrets/{sid}{page}") for page in pages] + [
        ("POST", f"/secrets/{sid}/edit"),
        ("POST", f"/secrets/{sid}/delete"),
        ("GET", f"/api/secrets/{sid}"),
        ("DELETE", f"/api/secrets/{sid}"),
        ("GET", f"/secrets/{world.ended_id}"),
        ("GET", f"/api/secrets/{world.ended_id}"),
    ]


def test_another_user_gets_404_on_every_owner_route(app, world):
    before = database_snapshot(app)
    token_headers = {"X-CSRFToken": csrf_token(world.mallory, "/dashboard")}
    for method, path in owner_routes(world):
        if method == "GET":
            response = world.mallory.get(path)
        elif path.startswith("/api/"):
            response = world.mallory.open(path, method=method, headers=token_headers)
        else:
            response = post_form(
                world.mallory, path, {"title": "pwned", "blur_level": "0", "expiration": "keep"}, token_page="/dashboard"
            )
        assert response.status_code == 404, (method, path)
    assert world.mallory.get("/api/secrets").json["secrets"] == []
    assert database_snapshot(app) == before


@pytest.mark.parametrize("path", ["/dashboard", "/account", "/create", "/api/secrets"])
def test_signed_out_visitors_are_sent_to_sign_in(app, path):
    response = app.test_client().get(path)
    assert response.status_code in {302, 401}
    if response.status_code == 302:
        assert response.headers["Location"].startswith("/login?next=")


def test_signed_out_visitors_cannot_reach_owner_routes(app, world):
    anonymous = app.test_client()
    token = csrf_token(anonymous, "/login")  # a valid token of this visitor, so the check that answers is authorization
    before = database_snapshot(app)
    for method, path in owner_routes(world):
        response = anonymous.open(path, method=method, data={"csrf_token": token}, headers={"X-CSRFToken": token})
        assert response.status_code in {302, 401}, (method, path)
        if response.status_code == 302:
            assert response.headers["Location"].startswith("/login?next=")
        assert "Alice" not in response.get_data(as_text=True)
    assert database_snapshot(app) == before
