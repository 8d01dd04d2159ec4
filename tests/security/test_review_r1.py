"""Findings of security review r1 (docs in the branch's report), as tests that fail until each is fixed.

Each is marked xfail(strict=True): it passes while the weakness is there, and turns the suite red the day it is
fixed, so whoever fixes it removes the marker and keeps the test as the guard.
"""

import pytest

from tests.helpers import AuthActions, post_form


@pytest.mark.xfail(strict=True, reason="r1-3: /account/email says an address is taken before checking the password")
def test_email_change_says_an_address_is_taken_only_after_the_password(app, logged_in_client):
    mallory = app.test_client()
    AuthActions(mallory).register(username="mallory", email="mallory@example.org")
    fields = {"email-email": "alice@example.org", "email-current_password": "not-mallorys-password"}
    page = post_form(mallory, "/account/email", fields, token_page="/account")
    assert page.status_code == 400
    assert "already has an account" not in page.text
