"""The same rules on PostgreSQL (DATABASE_URL=postgresql+psycopg://…): the guarded updates under real concurrency,
expiry, erasure and purge. Skips without POSTGRES_URL, except where SECURESHARE_REQUIRE_SERVICES is set (CI)."""

import os

import pytest

from app import create_app, db
from tests.helpers import SECRET_CONTENT, AuthActions, create_secret, load_secret, make_config, unlock
from tests.test_concurrency import race


def _postgres_url() -> str:
    url = os.environ.get("POSTGRES_URL")
    if not url:
        if os.environ.get("SECURESHARE_REQUIRE_SERVICES"):
            pytest.fail("POSTGRES_URL is required here")
        pytest.skip("set POSTGRES_URL to run against a real PostgreSQL")
    return url


@pytest.fixture
def app(tmp_path, clock):
    application = create_app(make_config(tmp_path, clock, SQLALCHEMY_DATABASE_URI=_postgres_url()))
    with application.app_context():
        db.drop_all()
        db.create_all()
    yield application
    with application.app_context():
        db.drop_all()
        db.engine.dispose()


def test_runs_on_postgresql(app):
    with app.app_context():
        assert db.engine.dialect.name == "postgresql"


def test_create_unlock_and_burn(app, logged_in_client, recipient):
    unique_id = create_secret(logged_in_client, max_views="1")
    assert SECRET_CONTENT in unlock(recipient, unique_id).text
    secret = load_secret(app, unique_id)
    assert (secret.status, secret.ciphertext, secret.view_count) == ("used_up", None, 1)
    assert unlock(recipient, unique_id).status_code == 410


def test_usernames_are_unique_ignoring_case(app, client, auth):
    auth.register()
    auth.logout()
    assert AuthActions(app.test_client()).register(username="ALICE", email="x@example.org").status_code == 400


def test_parallel_unlocks_reveal_once(app, logged_in_client):
    unique_id = create_secret(logged_in_client, max_views="1")
    responses = race(app, unique_id, "open-sesame-42")
    assert sum(status == 200 and SECRET_CONTENT in body for status, body in responses) == 1
    assert load_secret(app, unique_id).view_count == 1


def test_parallel_guesses_stop_at_the_limit(app, logged_in_client):
    unique_id = create_secret(logged_in_client)
    race(app, unique_id, "wrong-guess")
    secret = load_secret(app, unique_id)
    assert (secret.failed_attempts, secret.status) == (5, "destroyed")


def test_expiry_and_purge(app, logged_in_client, recipient, clock):
    unique_id = create_secret(logged_in_client, expiration="1h")
    clock.advance(minutes=59, seconds=59)
    assert unlock(recipient, unique_id).status_code == 200
    clock.advance(seconds=1)
    assert recipient.get(f"/view/{unique_id}").status_code == 410
    assert load_secret(app, unique_id).ciphertext is None
    clock.advance(days=31)
    assert "purged 1" in app.test_cli_runner().invoke(args=["purge"]).output
