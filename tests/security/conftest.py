"""A small world to attack: alice with an active secret and an ended one, and mallory, another user."""

from dataclasses import dataclass

import pytest

from tests.helpers import AuthActions, create_secret, unlock


@dataclass
class World:
    alice: object
    mallory: object
    secret_id: str
    ended_id: str


@pytest.fixture
def world(app, logged_in_client):
    secret_id = create_secret(logged_in_client, title="Alice's secret")
    ended_id = create_secret(logged_in_client, max_views="1")
    unlock(app.test_client(), ended_id)
    mallory = app.test_client()
    AuthActions(mallory).register(username="mallory", email="mallory@example.org")
    return World(alice=logged_in_client, mallory=mallory, secret_id=secret_id, ended_id=ended_id)


def readable_paths(world: World) -> list[str]:
    """Every GET route of the app, as alice would reach it."""
    sid = world.secret_id
    return [
        "/",
        "/dashboard",
        "/dashboard?status=active",
        "/account",
        "/create",
        f"/secrets/{sid}",
        f"/secrets/{sid}/edit",
        f"/secrets/{sid}/delete",
        f"/secrets/{sid}/card",
        f"/secrets/{sid}/qr.png",
        f"/secrets/{sid}/qr.svg",
        f"/secrets/{world.ended_id}",
        f"/view/{sid}",
        f"/view/{world.ended_id}",
        "/.well-known/security.txt",
        "/api/auth/check",
        "/api/secrets",
        f"/api/secrets/{sid}",
        "/static/css/app.css",
        "/static/js/app.js",
        "/no/such/page",
        "/logout",
    ]
