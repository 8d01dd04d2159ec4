"""Findings of security review r1 that only PostgreSQL shows (it enforces column lengths and integer ranges), as
tests that fail until each is fixed (xfail strict: see test_review_r1.py)."""

import pytest

from tests.helpers import PASSWORD, AuthActions, post_form
from tests.test_postgres import app  # noqa: F401 - this module's app is on PostgreSQL

# NFKC turns U+FDFA into 18 characters: a 76-character address (email_validator accepts it) has a 1,164-character
# canonical key, over the email_key column's 320.
LONG_KEY_EMAIL = "\ufdfa" * 64 + "@example.org"


@pytest.mark.xfail(strict=True, reason="r1-4: a canonical key longer than its column is a DataError, not 'taken' or 400")
def test_an_address_whose_canonical_key_overflows_its_column_is_no_500_at_sign_up(client):
    assert AuthActions(client).register(username="bob", email=LONG_KEY_EMAIL).status_code in {302, 400}


@pytest.mark.xfail(strict=True, reason="r1-4: the same overflow on the email change")
def test_an_address_whose_canonical_key_overflows_its_column_is_no_500_on_email_change(logged_in_client):
    fields = {"email-email": LONG_KEY_EMAIL, "email-current_password": PASSWORD}
    assert post_form(logged_in_client, "/account/email", fields, token_page="/account").status_code in {302, 400}
