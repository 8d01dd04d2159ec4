"""Attached files on their own: no app, no request; a real SQLite file, real keys, a frozen clock."""

import os
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select, update

import attachments
import vault
from schema import FileChunk, Secret, SecretFile, User
from tests import test_vault
from tests.test_vault import CHEAP, CONTENT, PASSWORD, POLICY, T0, key_setting, row

# The vault's fixtures: a real SQLite file with two users, a one-key ring, a frozen clock.
engine, session, keys, clock = test_vault.engine, test_vault.session, test_vault.keys, test_vault.clock

CHUNK = attachments.CHUNK_BYTES


def upload(session, files: list[tuple[str, bytes]], max_bytes=10 * CHUNK, max_files=5, piece=7000):
    """Stream `files` into an Upload as a form parser would: in pieces of `piece` bytes."""
    sending = attachments.Upload(session, max_bytes, max_files)
    for name, data in files:
        sink = sending.open_file(name, "text/plain")
        for start in range(0, len(data), piece):
            sink.write(data[start : start + piece])
        sink.seek(0)
    return sending


def create_with(session, keys, clock, files, **limits) -> str:
    attached = upload(session, files, **limits).finish()
    created = vault.create(session, keys, 1, "Files", CONTENT, PASSWORD, timedelta(hours=1), None, 10, clock(), attached=attached)
    return created.share_id


def opened_files(session, keys, clock, share_id) -> dict[str, bytes]:
    unlocked = vault.unlock(session, keys, POLICY, share_id, PASSWORD, clock)
    assert isinstance(unlocked, vault.Unlocked)
    return {
        file.name: b"".join(attachments.open_chunks(session, share_id, unlocked.files_key, file))
        for file in attachments.list_files(session, share_id, unlocked.files_key)
    }


def test_files_round_trip_whatever_their_size(session, keys, clock):
    files = {
        "one.bin": os.urandom(1),
        "exact.bin": os.urandom(CHUNK),
        "more.bin": os.urandom(2 * CHUNK + 5),
    }
    share_id = create_with(session, keys, clock, list(files.items()))
    assert opened_files(session, keys, clock, share_id) == files
    secret = row(session, share_id)
    assert (secret.file_count, secret.file_bytes) == (3, sum(map(len, files.values())))
    chunks = session.scalar(select(func.count()).select_from(FileChunk))
    assert chunks == 1 + 1 + 3  # the last chunk is held back until the file ends: a full one is never followed by ""


def test_nothing_of_a_file_is_stored_in_the_clear(session, keys, clock):
    marker = b"CANARY-attached-file-" + os.urandom(8).hex().encode()
    share_id = create_with(session, keys, clock, [("secret-name.txt", marker * 5000)])
    stored = b"".join(session.scalars(select(FileChunk.sealed))) + b"".join(session.scalars(select(SecretFile.sealed_meta)))
    assert marker not in stored and b"secret-name" not in stored
    assert opened_files(session, keys, clock, share_id)["secret-name.txt"] == marker * 5000


def test_an_upload_that_is_not_finished_stores_nothing(session, keys, clock):
    upload(session, [("cut.bin", os.urandom(3 * CHUNK))])  # cut off: the request ends before the secret is created
    session.rollback()
    assert session.scalar(select(func.count()).select_from(FileChunk)) == 0


@pytest.mark.parametrize(
    "files, limits, refusal",
    [
        ([("big.bin", os.urandom(CHUNK + 1))], {"max_bytes": CHUNK}, attachments.TooLarge),
        ([("a", b"x" * 600), ("b", b"y" * 600)], {"max_bytes": 1000}, attachments.TooLarge),
        ([(f"{n}.txt", b"x") for n in range(4)], {"max_files": 3}, attachments.TooMany),
    ],
)
def test_limits_stop_an_upload_as_it_streams(session, files, limits, refusal):
    with pytest.raises(refusal):
        upload(session, files, **limits)


def test_a_chosen_empty_file_is_refused_and_an_empty_input_is_no_file(session):
    sending = upload(session, [("", b"")])
    assert sending.finish() is None
    with pytest.raises(attachments.EmptyFile):
        upload(session, [("a.txt", b"x"), ("empty.txt", b"")]).finish()


@pytest.mark.parametrize(
    "given, cleaned",
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\key.pem", "key.pem"),
        ("bad\x00na\x1bme\u202e.txt", "badname.txt"),
        ("..", "file"),
        ("", "file"),
        (None, "file"),
        ("a" * 1000 + ".pdf", "a" * 251 + ".pdf"),
    ],
)
def test_names_are_cleaned_never_trusted(given, cleaned):
    assert attachments.clean_name(given) == cleaned


def test_types_that_are_no_media_type_become_the_generic_one():
    assert attachments.clean_type("Image/PNG; charset=x") == "image/png"
    assert attachments.clean_type("text/html\r\nX-Evil: 1") == attachments.DEFAULT_TYPE


def _tamper(session, share_id, change):
    digest = row(session, share_id).id_digest
    change(digest)
    session.commit()


def _chunk_where(digest, file_position, position):
    return (FileChunk.secret_digest == digest, FileChunk.file_position == file_position, FileChunk.position == position)


def _swap_chunks(session, digest):
    first, second = (session.scalar(select(FileChunk.sealed).where(*_chunk_where(digest, 0, n))) for n in (0, 1))
    session.execute(update(FileChunk).where(*_chunk_where(digest, 0, 0)).values(sealed=second))
    session.execute(update(FileChunk).where(*_chunk_where(digest, 0, 1)).values(sealed=first))


@pytest.mark.parametrize(
    "attack",
    ["reorder", "drop the last chunk", "drop a middle chunk", "flip a bit", "drop a file", "move to another secret"],
)
def test_chunks_cannot_be_dropped_reordered_cut_or_moved(session, keys, clock, attack):
    data = os.urandom(3 * CHUNK)
    share_id = create_with(session, keys, clock, [("a.bin", data), ("b.bin", b"second")])
    digest = row(session, share_id).id_digest
    if attack == "reorder":
        _swap_chunks(session, digest)
    elif attack == "drop the last chunk":
        session.execute(delete(FileChunk).where(*_chunk_where(digest, 0, 2)))
    elif attack == "drop a middle chunk":
        session.execute(delete(FileChunk).where(*_chunk_where(digest, 0, 1)))
        session.execute(update(FileChunk).where(*_chunk_where(digest, 0, 2)).values(position=1))
    elif attack == "flip a bit":
        sealed = session.scalar(select(FileChunk.sealed).where(*_chunk_where(digest, 0, 1)))
        session.execute(update(FileChunk).where(*_chunk_where(digest, 0, 1)).values(sealed=sealed[:-1] + bytes([sealed[-1] ^ 1])))
    elif attack == "drop a file":
        session.execute(delete(SecretFile).where(SecretFile.secret_digest == digest, SecretFile.position == 1))
    else:
        other = create_with(session, keys, clock, [("c.bin", os.urandom(3 * CHUNK))])
        other_digest = row(session, other).id_digest
        session.execute(delete(FileChunk).where(FileChunk.secret_digest == digest, FileChunk.file_position == 0))
        session.execute(update(FileChunk).where(FileChunk.secret_digest == other_digest).values(secret_digest=digest))
    session.commit()
    with pytest.raises(attachments.Tampered):
        opened_files(session, keys, clock, share_id)


def test_one_derivation_opens_content_and_files_and_a_wrong_password_opens_neither(session, keys, clock, monkeypatch):
    share_id = create_with(session, keys, clock, [("a.txt", b"hello")])
    derivations = []
    derive = keys.derive
    monkeypatch.setattr(keys, "derive", lambda *args: derivations.append(1) or derive(*args))
    assert opened_files(session, keys, clock, share_id) == {"a.txt": b"hello"}
    assert len(derivations) == 1
    assert vault.open_sealed(keys, row(session, share_id), share_id, "wrong") is None


def test_a_secret_without_files_has_no_file_key(session, keys, clock):
    share_id = create_with(session, keys, clock, [])
    unlocked = vault.unlock(session, keys, POLICY, share_id, PASSWORD, clock)
    assert (unlocked.content, unlocked.files_key, row(session, share_id).files_key_sealed) == (CONTENT, None, None)


def test_the_file_key_moves_with_the_content_to_a_new_server_key_and_a_new_password(session, clock):
    old = vault.KeyRing.parse(key_setting("k1"), CHEAP, max_derivations=1, wait_seconds=0)
    share_id = create_with(session, old, clock, [("a.txt", b"kept")])
    rotated = vault.KeyRing({"k2": os.urandom(32), **{k: old._keys[k] for k in old.ids}}, CHEAP, 1, 0)
    assert opened_files(session, rotated, clock, share_id) == {"a.txt": b"kept"}  # the re-seal on unlock
    assert row(session, share_id).key_id == "k2"
    changes = vault.Changes("Files", 10, None, current_password=PASSWORD, password="a-new-password-99")
    assert isinstance(vault.edit(session, rotated, POLICY, share_id, 1, changes, clock), vault.Saved)
    unlocked = vault.unlock(session, rotated, POLICY, share_id, "a-new-password-99", clock)
    file = attachments.list_files(session, share_id, unlocked.files_key)[0]
    assert b"".join(attachments.open_chunks(session, share_id, unlocked.files_key, file)) == b"kept"


@pytest.mark.parametrize("ending", ["destroyed", "deleted", "expired", "account deleted"])
def test_every_end_but_the_last_view_erases_the_files_at_once(session, keys, clock, ending):
    share_id = create_with(session, keys, clock, [("a.txt", b"x" * 100)])
    clock.advance(minutes=30)
    attached = upload(session, [("b.txt", b"bob's")]).finish()
    bobs = vault.create(session, keys, 2, "B", CONTENT, PASSWORD, timedelta(hours=3), None, 10, clock(), attached=attached)
    if ending == "destroyed":
        for _ in range(POLICY.max_failed_attempts):
            vault.unlock(session, keys, POLICY, share_id, "wrong", clock)
    elif ending == "deleted":
        vault.delete(session, share_id, 1, clock())
    elif ending == "expired":
        clock.advance(hours=2)
        vault.purge(session, POLICY, clock())
    else:
        vault.delete_account(session, session.get(User, 1))
    session.expire_all()
    assert session.scalars(select(SecretFile.secret_digest)).all() == [row(session, bobs.share_id).id_digest]
    assert session.scalar(select(func.count()).select_from(Secret).where(Secret.files_key_sealed.is_not(None))) == 1
    assert opened_files(session, keys, clock, bobs.share_id) == {"b.txt": b"bob's"}  # another's files are untouched


def test_the_unlocking_form_shown_again_opens_the_files_again(session, keys, clock):
    share_id = create_with(session, keys, clock, [("a.txt", b"again")])
    first = vault.unlock(session, keys, POLICY, share_id, PASSWORD, clock, form_mark="m" * 64)
    again = vault.unlock(session, keys, POLICY, share_id, PASSWORD, clock, form_mark="m" * 64)
    assert again.replayed and again.files_key == first.files_key is not None


def test_the_last_view_keeps_the_chunks_for_the_link_window_then_the_purge_erases_them(session, keys, clock):
    still_active = create_with(session, keys, clock, [("kept.txt", b"kept")])
    attached = upload(session, [("a.txt", b"last")]).finish()
    created = vault.create(session, keys, 1, "F", CONTENT, PASSWORD, timedelta(hours=1), 1, 10, clock(), attached=attached)
    unlocked = vault.unlock(session, keys, POLICY, created.share_id, PASSWORD, clock)
    assert unlocked.secret.status == "used_up" and unlocked.secret.files_key_sealed is None
    clock.advance(seconds=POLICY.file_link_window.total_seconds())  # the window's last moment: a link still works
    vault.purge(session, POLICY, clock())
    file = attachments.list_files(session, created.share_id, unlocked.files_key)[0]
    assert b"".join(attachments.open_chunks(session, created.share_id, unlocked.files_key, file)) == b"last"
    clock.advance(seconds=1)
    vault.purge(session, POLICY, clock())
    files_left = session.scalars(select(SecretFile.secret_digest).distinct()).all()
    assert files_left == [row(session, still_active).id_digest]  # an active secret's files, however old, stay
    assert opened_files(session, keys, clock, still_active) == {"kept.txt": b"kept"}


def test_a_download_link_opens_only_its_secrets_files_and_only_until_it_expires(keys, clock):
    files_key = os.urandom(32)
    token = attachments.link_token(keys, "share-a", files_key, T0 + timedelta(minutes=15))
    assert attachments.key_of_link(keys, "share-a", token, T0) == files_key
    assert attachments.key_of_link(keys, "share-b", token, T0) is None
    assert attachments.key_of_link(keys, "share-a", token, T0 + timedelta(minutes=15)) is None
    key_id, _, sealed = token.partition(".")
    forged = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    assert attachments.key_of_link(keys, "share-a", f"{key_id}.{forged}", T0) is None
    assert attachments.key_of_link(keys, "share-a", "k1.", T0) is None
    assert attachments.key_of_link(keys, "share-a", "nope.%%%", T0) is None
