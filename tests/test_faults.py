"""Faults spend nothing: a busy key derivation is a 503 with Retry-After, and the try is given back."""

import pytest

from tests.helpers import SECRET_CONTENT, create_secret, load_secret, unlock
from tests.test_api import api_unlock, bearer, create, issue_token


def hold_every_derivation_slot(app):
    """Another visitor's unlocks keep the only derivation slot busy (the app allows one, waits for none)."""
    return app.keys.derivation_slot()


@pytest.fixture
def config_overrides():
    return {"KDF_MAX_CONCURRENT": 1, "KDF_WAIT_SECONDS": 0}


def test_a_busy_derivation_answers_503_and_spends_nothing(app, logged_in_client, recipient):
    unique_id = create_secret(logged_in_client)
    with hold_every_derivation_slot(app):
        for _ in range(6):
            response = unlock(recipient, unique_id)
            assert response.status_code == 503
            assert response.headers["Retry-After"].isdigit()
    secret = load_secret(app, unique_id)
    assert (secret.status, secret.failed_attempts, secret.tries_in_flight, secret.view_count) == ("active", 0, 0, 0)
    assert SECRET_CONTENT in unlock(recipient, unique_id).text


def test_a_busy_derivation_answers_the_api_503_and_spends_nothing(app, logged_in_client):
    script = app.test_client()
    script.environ_base["HTTP_AUTHORIZATION"] = bearer(issue_token(logged_in_client))["Authorization"]
    unique_id = create(script)["id"]
    with hold_every_derivation_slot(app):
        response = api_unlock(app.test_client(), unique_id)
    assert (response.status_code, response.json["error"]["reason"]) == (503, "busy")
    assert int(response.headers["Retry-After"]) > 0
    secret = load_secret(app, unique_id)
    assert (secret.status, secret.failed_attempts, secret.tries_in_flight, secret.view_count) == ("active", 0, 0, 0)
