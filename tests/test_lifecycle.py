"""How secrets end: expiry, views, wrong passwords, deletion; the content is erased the moment they do."""

import pytest

import vault
from app import db
from schema import AccessEvent, Secret
from tests.helpers import SECRET_CONTENT, AuthActions, create_secret, database_snapshot, load_secret, post_form, unlock


def assert_wiped(secret, status: str) -> None:
    assert secret.status == status
    assert (secret.ciphertext, secret.salt, secret.nonce) == (None, None, None)


def test_burn_after_reading(app, logged_in_client, recipient):
    unique_id = create_secret(logged_in_client, max_views="1")
    first = unlock(recipient, unique_id)
    assert first.status_code == 200
    assert SECRET_CONTENT in first.text
    assert "This was the last view." in first.text
    assert_wiped(load_secret(app, unique_id), "used_up")
    again = unlock(recipient, unique_id)
    assert again.status_code == 410
    assert "This secret is no longer available" in again.text
    assert recipient.get(f"/view/{unique_id}").status_code == 410


def test_three_views_then_gone(app, logged_in_client, recipient):
    unique_id = create_secret(logged_in_client, max_views="3")
    for view in (1, 2):
        page = unlock(recipient, unique_id)
        assert f"Views: {view} of 3" in page.text
        assert "last view" not in page.text
    assert load_secret(app, unique_id).status == "active"
    third = unlock(recipient, unique_id)
    assert "Views: 3 of 3" in third.text and "This was the last view." in third.text
    assert_wiped(load_secret(app, unique_id), "used_up")
    assert unlock(recipient, unique_id).status_code == 410
    assert load_secret(app, unique_id).view_count == 3


def test_unlimited_views_until_expiry(app, logged_in_client, recipient):
    unique_id = create_secret(logged_in_client, max_views="")
    for _ in range(5):
        assert unlock(recipient, unique_id).status_code == 200
    assert load_secret(app, unique_id).view_count == 5


def test_expiry_on_both_sides_of_the_second(app, logged_in_client, recipient, clock):
    unique_id = create_secret(logged_in_client, expiration="1h")
    clock.advance(minutes=59, seconds=59)
    assert unlock(recipient, unique_id).status_code == 200
    clock.advance(seconds=1)
    assert recipient.get(f"/view/{unique_id}").status_code == 410
    assert unlock(recipient, unique_id).status_code == 410
    app.test_cli_runner().invoke(args=["purge"])
    assert_wiped(load_secret(app, unique_id), "expired")


def test_get_of_an_expired_secret_writes_nothing_and_says_it_is_gone(app, logged_in_client, recipient, clock):
    unique_id = create_secret(logged_in_client, expiration="1h")
    clock.advance(hours=1, minutes=1)
    before = database_snapshot(app)
    for _ in range(3):
        page = recipient.get(f"/view/{unique_id}")
        assert page.status_code == 410
        assert "This secret is no longer available" in page.text
        assert recipient.head(f"/view/{unique_id}").status_code == 410
    assert database_snapshot(app) == before
    assert load_secret(app, unique_id).status == "active"  # the purge (cron) or an unlock attempt erases it


def test_purge_command_erases_expired_secrets(app, logged_in_client, clock):
    unique_id = create_secret(logged_in_client, expiration="1h")
    clock.advance(hours=1)
    result = app.test_cli_runner().invoke(args=["purge"])
    assert "Expired 1, purged 0." in result.output
    assert_wiped(load_secret(app, unique_id), "expired")


def test_expired_secrets_show_as_expired_on_the_dashboard(logged_in_client, clock):
    unique_id = create_secret(logged_in_client, expiration="1h")
    clock.advance(minutes=50)
    logged_in_client.get("/dashboard")  # stay within the idle timeout
    clock.advance(minutes=20)
    page = logged_in_client.get("/dashboard").text
    assert 'badge-expired">Expired' in page
    assert "Was due to expire" in logged_in_client.get(f"/secrets/{unique_id}").text  # when its time ran out


def test_five_wrong_passwords_destroy(app, logged_in_client, recipient):
    unique_id = create_secret(logged_in_client)
    for left in (4, 3, 2, 1):
        response = unlock(recipient, unique_id, "wrong-guess")
        assert response.status_code == 403
        assert f"{left} {'try' if left == 1 else 'tries'} left" in response.text
    assert load_secret(app, unique_id).status == "active"
    last = unlock(recipient, unique_id, "wrong-guess")
    assert last.status_code == 410
    assert "destroyed" in last.text
    assert_wiped(load_secret(app, unique_id), "destroyed")
    assert unlock(recipient, unique_id).status_code == 410


def test_right_password_after_four_wrong_still_works(app, logged_in_client, recipient):
    unique_id = create_secret(logged_in_client)
    for _ in range(4):
        unlock(recipient, unique_id, "wrong-guess")
    assert SECRET_CONTENT in unlock(recipient, unique_id).text
    assert load_secret(app, unique_id).failed_attempts == 4


def test_owner_edit_guesses_count_as_attempts(app, logged_in_client):
    unique_id = create_secret(logged_in_client)
    data = {
        "title": "t",
        "blur_level": "10",
        "expiration": "keep",
        "custom_unit": "hours",
        "content": "replace",
        "current_password": "wrong-guess",
    }
    for _ in range(4):
        assert post_form(logged_in_client, f"/secrets/{unique_id}/edit", data).status_code == 400
    assert post_form(logged_in_client, f"/secrets/{unique_id}/edit", data).status_code == 410
    assert_wiped(load_secret(app, unique_id), "destroyed")


def _used_up_secret(app, logged_in_client) -> str:
    unique_id = create_secret(logged_in_client, max_views="1")
    unlock(app.test_client(), unique_id)
    return unique_id


def test_purge_deletes_old_records_with_their_events(app, logged_in_client, clock):
    active_id = create_secret(logged_in_client)
    ended_id = _used_up_secret(app, logged_in_client)
    clock.advance(days=29, hours=23)
    result = app.test_cli_runner().invoke(args=["purge"])
    assert "purged 0" in result.output
    clock.advance(hours=2)
    result = app.test_cli_runner().invoke(args=["purge"])
    assert "purged 1" in result.output
    with app.app_context():
        remaining = [vault.share_id_of(app.keys, secret) for secret in db.session.scalars(db.select(Secret))]
        events = db.session.scalar(db.select(db.func.count(AccessEvent.id)))
    assert ended_id not in remaining
    assert events == 0
    # The active one expired meanwhile (24 h), so the same run erased it, but its record stays.
    assert remaining == [active_id]
    assert_wiped(load_secret(app, active_id), "expired")


def test_requests_never_run_maintenance(app, logged_in_client, clock):
    ended_id = _used_up_secret(app, logged_in_client)
    clock.advance(days=31)
    logged_in_client.get("/")
    assert load_secret(app, ended_id).status == "used_up"  # only `flask purge` deletes records


@pytest.mark.parametrize("ending", ["delete", "expire", "use_up", "destroy"])
def test_qr_code_is_refused_after_every_ending(app, logged_in_client, recipient, clock, ending):
    unique_id = create_secret(logged_in_client, max_views="1")
    assert logged_in_client.get(f"/secrets/{unique_id}/qr.png").status_code == 200
    if ending == "delete":
        post_form(logged_in_client, f"/secrets/{unique_id}/delete", {})
    elif ending == "expire":
        clock.advance(days=2)
        app.test_cli_runner().invoke(args=["purge"])
        AuthActions(logged_in_client).login()  # two days on, the owner's session has ended too
    elif ending == "use_up":
        unlock(recipient, unique_id)
    else:
        for _ in range(5):
            unlock(recipient, unique_id, "wrong-guess")
    assert load_secret(app, unique_id).status != "active"
    for path in ("qr.png", "qr.svg", "card"):
        assert logged_in_client.get(f"/secrets/{unique_id}/{path}").status_code == 410
