"""Erasure you can prove on disk: once a secret ends, its ciphertext, salt and nonce are in no database file."""

import os
from pathlib import Path

import pytest
from sqlalchemy import select

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
    assert "It has already ended" in page.text and "Delete the record" in page.text
    assert "stop working at once" not in page.text  # the link died with the last view: no false warning
    response = post_form(logged_in_client, f"/secrets/{unique_id}/delete", {})
    assert response.status_code == 302
    assert "Record removed." in logged_in_client.get("/dashboard").text
    assert logged_in_client.get(f"/secrets/{unique_id}").status_code == 404


def chunk_bytes(app, unique_id: str) -> list[bytes]:
    from extensions import db
    from schema import FileChunk, SecretFile, share_id_digest

    digest = share_id_digest(unique_id)
    with app.app_context():
        chunks = db.session.scalars(select(FileChunk.sealed).where(FileChunk.secret_digest == digest)).all()
        metas = db.session.scalars(select(SecretFile.sealed_meta).where(SecretFile.secret_digest == digest)).all()
        # A blob's first bytes sit whole in its row's cell; the rest may be split over overflow pages.
        return [blob[:32] for blob in (*chunks, *metas, load_secret(app, unique_id).files_key_sealed)]


@pytest.mark.parametrize("ending", ["used up", "destroyed", "expired", "deleted", "account deleted"])
def test_file_chunks_leave_the_database_and_its_wal(app, logged_in_client, recipient, clock, ending):
    from tests.test_files import post_files

    response = post_files(logged_in_client, [("a.bin", os.urandom(150_000))], max_views="1")
    unique_id = response.headers["Location"].rsplit("/", 1)[1]
    needles = chunk_bytes(app, unique_id)
    assert len(needles) == 5 and all(needle in disk_bytes(app) for needle in needles)  # 3 chunks, 1 description, 1 key
    end_it(app, logged_in_client, recipient, clock, unique_id, ending)
    if ending == "used up":  # its download links' window first
        clock.advance(minutes=app.config["FILE_LINK_MINUTES"], seconds=1)
        app.test_cli_runner().invoke(args=["purge"])
    on_disk = disk_bytes(app)
    for needle in needles:
        assert needle not in on_disk
