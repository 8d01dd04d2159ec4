"""The recipient's page after the password: a reload spends no view, a double click counts once, and the recipient
can end the secret."""

import pytest

import vault
from app import db
from schema import AccessEvent
from tests.helpers import SECRET_CONTENT, SECRET_PASSWORD, create_secret, load_secret, recipient_form_token


def submit(client, unique_id: str, token: str, password: str = SECRET_PASSWORD, path: str = ""):
    return client.post(f"/view/{unique_id}{path}", data={"csrf_token": token, "password": password})


def outcomes(app) -> list[str]:
    with app.app_context():
        return db.session.scalars(db.select(AccessEvent.outcome).order_by(AccessEvent.id)).all()


@pytest.fixture
def shared(app, logged_in_client):
    unique_id = create_secret(logged_in_client, max_views="3")
    return unique_id, recipient_form_token(app, unique_id)


def test_a_reload_shows_the_secret_again_without_a_view(app, recipient, shared):
    unique_id, token = shared
    first = submit(recipient, unique_id, token)
    again = submit(recipient, unique_id, token)
    assert SECRET_CONTENT in first.text and "Views: 1 of 3" in first.text
    assert again.status_code == 200
    assert SECRET_CONTENT in again.text and "Views: 1 of 3" in again.text
    assert "did not count as a view" in again.text and "did not count as a view" not in first.text
    assert "shows it again without counting a view" in first.text
    assert load_secret(app, unique_id).view_count == 1
    assert outcomes(app) == ["unlocked"]


def test_another_form_counts_another_view(app, recipient, shared):
    unique_id, token = shared
    submit(recipient, unique_id, token)
    submit(recipient, unique_id, recipient_form_token(app, unique_id))
    assert load_secret(app, unique_id).view_count == 2


def test_a_replayed_form_is_no_password_oracle(app, recipient, shared):
    """The same form with another password spends a try as any wrong password does."""
    unique_id, token = shared
    submit(recipient, unique_id, token)
    wrong = submit(recipient, unique_id, token, password="not-the-password")
    assert wrong.status_code == 403
    assert SECRET_CONTENT not in wrong.text
    secret = load_secret(app, unique_id)
    assert (secret.view_count, secret.failed_attempts) == (1, 1)


def test_after_the_window_the_same_form_counts_again(app, recipient, shared, clock):
    unique_id, token = shared
    submit(recipient, unique_id, token)
    clock.advance(seconds=vault.REPLAY_WINDOW.total_seconds() + 1)
    again = submit(recipient, unique_id, token)
    assert "Views: 2 of 3" in again.text
    assert "did not count" not in again.text
    assert submit(recipient, unique_id, token).text.count("did not count as a view") == 1  # its new mark holds


def test_the_last_view_says_a_reload_will_not_show_it(app, logged_in_client, recipient):
    unique_id = create_secret(logged_in_client, max_views="1")
    token = recipient_form_token(app, unique_id)
    last = submit(recipient, unique_id, token)
    assert "This was the last view" in last.text
    assert "Reloading it will not show the secret again" in last.text
    assert "shows it again without counting a view" not in last.text  # no promise the reload cannot keep
    assert "destroy it now" not in last.text  # nothing is left to destroy
    assert submit(recipient, unique_id, token).status_code == 410


def test_a_double_click_counts_once(app, recipient, shared, monkeypatch):
    """Both posts pass the mark check before either counts; the unique mark lets only one view through."""
    unique_id, token = shared
    monkeypatch.setattr(vault, "_form_unlocked", lambda *args: False)
    first = submit(recipient, unique_id, token)
    second = submit(recipient, unique_id, token)
    assert SECRET_CONTENT in first.text and SECRET_CONTENT in second.text
    assert "did not count as a view" in second.text
    secret = load_secret(app, unique_id)
    assert (secret.view_count, secret.tries_in_flight) == (1, 0)
    assert outcomes(app) == ["unlocked"]


def test_the_recipient_ends_the_secret(app, logged_in_client, recipient, shared):
    unique_id, token = shared
    page = submit(recipient, unique_id, token)
    assert f'action="/view/{unique_id}/destroy"' in page.text
    ended = submit(recipient, unique_id, token, path="/destroy")
    assert ended.status_code == 200
    assert "The secret is destroyed" in ended.text
    secret = load_secret(app, unique_id)
    assert secret.status == "destroyed" and secret.ciphertext is None
    assert outcomes(app) == ["unlocked", "recipient_ended"]
    assert "Ended by the recipient" in logged_in_client.get(f"/secrets/{unique_id}").text
    assert submit(recipient, unique_id, token).status_code == 410


def test_only_the_form_that_unlocked_it_may_end_it(app, recipient, shared):
    unique_id, token = shared
    assert submit(recipient, unique_id, token, path="/destroy").status_code == 410  # the link alone is not enough
    assert recipient.post(f"/view/{unique_id}/destroy").status_code == 400
    assert load_secret(app, unique_id).status == "active"
    assert outcomes(app) == []


def test_the_owners_log_names_the_browser_with_the_full_string_on_demand(app, logged_in_client, recipient, shared):
    unique_id, token = shared
    agent = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36"
    recipient.post(f"/view/{unique_id}", data={"csrf_token": token, "password": SECRET_PASSWORD}, headers={"User-Agent": agent})
    log = logged_in_client.get(f"/secrets/{unique_id}").text
    assert "<summary>Chrome on Android</summary>" in log
    assert agent in log
