"""Account enumeration: sign-in answers an unknown user and a wrong password with the same words, status and work."""

import pytest
from argon2 import PasswordHasher

from tests.helpers import AuthActions, post_form


@pytest.mark.parametrize("login", ["alice", "nobody"])
def test_wrong_password_and_unknown_user_answer_alike(client, auth, login):
    auth.register()
    auth.logout()
    response = auth.login(login=login, password="not-the-password-at-all")
    assert response.status_code == 400
    assert "That username or email and password don&#39;t match." in response.text
    assert client.get("/api/auth/check").status_code == 401


class CountingHasher(PasswordHasher):
    """The real Argon2id hasher, counting how often it verifies."""

    verified = 0

    def verify(self, hash, password):
        type(self).verified += 1
        return super().verify(hash, password)


def test_unknown_user_costs_a_full_hash_like_a_wrong_password(app, auth):
    auth.register()
    auth.logout()
    hasher = app.passwords.hasher
    counting = CountingHasher(time_cost=hasher.time_cost, memory_cost=hasher.memory_cost, parallelism=hasher.parallelism)
    app.passwords.hasher = counting
    auth.login(login="nobody-here", password="whatever-it-is")
    assert counting.verified == 1
    auth.login(login="alice", password="whatever-it-is")
    assert counting.verified == 2


def test_dummy_hash_has_the_same_cost_as_real_ones(app, auth):
    auth.register()
    from tests.test_accounts import get_user

    real = get_user(app).password_hash
    dummy = app.passwords.dummy_hash
    assert real.split("$")[3] == dummy.split("$")[3]  # m=…,t=…,p=…


def test_email_change_says_an_address_is_taken_only_after_the_password(app, logged_in_client):
    """Fault: /account/email said "already has an account" before checking the password, so any signed-in session
    could test addresses at the guess throttle's pace."""
    mallory = app.test_client()
    AuthActions(mallory).register(username="mallory", email="mallory@example.org")
    fields = {"email-email": "alice@example.org", "email-current_password": "not-mallorys-password"}
    page = post_form(mallory, "/account/email", fields, token_page="/account")
    assert page.status_code == 400
    assert "already has an account" not in page.text
