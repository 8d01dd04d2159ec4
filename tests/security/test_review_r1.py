"""Findings of security review r1 (docs in the branch's report), as tests that fail until each is fixed.

Each is marked xfail(strict=True): it passes while the weakness is there, and turns the suite red the day it is
fixed, so whoever fixes it removes the marker and keeps the test as the guard.
"""

import pytest

from tests.helpers import AuthActions, create_secret, csrf_token, load_secret, post_form, unlock

NO_GUESS_BODIES = [{}, {"password": 5}, {"pass": "x"}]  # refused before any password is tried


@pytest.mark.xfail(strict=True, reason="r1-1: page forms take JSON bodies, which skip guards._reject_malformed_input")
@pytest.mark.parametrize(
    "body",
    [{"login": 123, "password": "x"}, {"login": {"a": 1}, "password": "x"}, {"login": "alice", "password": 5}],
    ids=["number", "object", "number-password"],
)
def test_a_json_body_on_the_sign_in_form_is_a_400_not_a_500(client, body):
    token = csrf_token(client, "/login")
    assert client.post("/login", json=body, headers={"X-CSRFToken": token}).status_code == 400


@pytest.mark.xfail(strict=True, reason="r1-1: a NUL byte reaches a stored secret through a JSON body on /create")
def test_a_nul_byte_in_a_json_body_on_a_page_form_is_refused(logged_in_client):
    token = csrf_token(logged_in_client, "/create")
    form = {"title": "a\x00b", "content": "c\x00d", "password": "secret-pass-1", "confirm": "secret-pass-1",
            "expiration": "24h", "custom_unit": "hours", "blur_level": "10", "max_views": ""}  # fmt: skip
    assert logged_in_client.post("/create", json=form, headers={"X-CSRFToken": token}).status_code == 400


@pytest.fixture
def config_overrides():
    return {"RATELIMIT_ENABLED": True}


@pytest.mark.xfail(strict=True, reason="r1-2: bodies that are no guess spend the secret's shared unlock budget")
def test_bodies_that_are_no_guess_leave_the_recipient_able_to_unlock(app, logged_in_client):
    app.config["RATELIMIT_UNLOCK_SECRET"] = "3 per minute"
    unique_id = create_secret(logged_in_client)
    stranger = app.test_client()
    stranger.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    statuses = [stranger.post(f"/api/secrets/{unique_id}/unlock", json=body).status_code for body in NO_GUESS_BODIES]
    assert statuses == [400, 400, 422]
    recipient = app.test_client()
    recipient.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    assert load_secret(app, unique_id).failed_attempts == 0  # no try was spent, and no access event written
    assert unlock(recipient, unique_id).status_code == 200


@pytest.mark.xfail(strict=True, reason="r1-3: /account/email says an address is taken before checking the password")
def test_email_change_says_an_address_is_taken_only_after_the_password(app, logged_in_client):
    mallory = app.test_client()
    AuthActions(mallory).register(username="mallory", email="mallory@example.org")
    fields = {"email-email": "alice@example.org", "email-current_password": "not-mallorys-password"}
    page = post_form(mallory, "/account/email", fields, token_page="/account")
    assert page.status_code == 400
    assert "already has an account" not in page.text
