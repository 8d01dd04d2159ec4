"""Erasure you can prove on disk: once a secret ends, its ciphertext, salt and nonce are in no database file."""

from pathlib import Path

import pytest

from tests.helpers import PASSWORD, create_secret, load_secret, post_form, unlock


def disk_bytes(app) -> bytes:
    """The SQLite database, its WAL and its shared-memory file, as they are on disk now."""
    database = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    return b"".join(Path(database + suffix).read_bytes() for suffix in ("", "-wal", "-shm") if Path(database + suffix).exists())


def sealed_bytes(app, unique_id: str) -> list[bytes]:
    secret = load_secret(app, unique_id)
    return [secret.ciphertext, secret.salt, secret.nonce]


def end_it(app, owner, recipient, clock, unique_id: str, ending: str) -> None:
    if ending == "used up":
        assert unlock(recipient, unique_id).status_code == 200
    elif ending == "destroyed":
        for _ in range(5):
            unlock(recipient, unique_id, "wrong-guess")
    elif ending == "expired":
        clock.advance(days=2)
        app.test_cli_runner().invoke(args=["purge"])  # what cron runs every minute
    elif ending == "deleted":
        post_form(owner, f"/secrets/{unique_id}/delete", {})
    else:
        post_form(owner, "/account/delete", {"delete-current_password": PASSWORD}, token_page="/account")


@pytest.mark.parametrize("ending", ["used up", "destroyed", "expired", "deleted", "account deleted"])
def test_sealed_bytes_leave_the_database_and_its_wal(app, logged_in_client, recipient, clock, ending):
    unique_id = create_secret(logged_in_client, max_views="1")
    needles = sealed_bytes(app, unique_id)
    on_disk = disk_bytes(app)
    assert all(needle in on_disk for needle in needles)  # the search can find them while they live
    end_it(app, logged_in_client, recipient, clock, unique_id, ending)
    on_disk = disk_bytes(app)
    for name, needle in zip(("ciphertext", "salt", "nonce"), needles, strict=True):
        assert needle not in on_disk, name


def test_deleting_an_ended_record_removes_it(app, logged_in_client, recipient):
    unique_id = create_secret(logged_in_client, max_views="1")
    unlock(recipient, unique_id)
    page = logged_in_client.get(f"/secrets/{unique_id}/delete")
    assert page.status_code == 200
    response = post_form(logged_in_client, f"/secrets/{unique_id}/delete", {})
    assert response.status_code == 302
    assert "Record removed." in logged_in_client.get("/dashboard").text
    assert logged_in_client.get(f"/secrets/{unique_id}").status_code == 404
