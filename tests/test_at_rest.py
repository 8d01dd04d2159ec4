"""Encryption at rest: nothing readable in the database, its WAL or the logs; rows cannot be moved or weakened."""

import base64
import os
import stat

import pytest

import vault
from app import create_app, db
from schema import Secret
from tests.helpers import SECRET_CONTENT, SECRET_PASSWORD, AuthActions, create_secret, load_secret, make_config, post_form, unlock

CANARY = "CANARY-5f1e9c"


def stored_bytes(app) -> bytes:
    """Everything SQLite has on disk for this app: the database, its WAL and its shared memory file."""
    path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    blobs = b""
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            with open(path + suffix, "rb") as handle:
                blobs += handle.read()
    return blobs


def assert_nowhere(app, log_text, *needles: str) -> None:
    disk = stored_bytes(app)
    logs = log_text()
    for needle in needles:
        assert needle.encode() not in disk, needle
        assert needle not in logs, needle


def test_canary_never_reaches_the_database_wal_or_logs(app, logged_in_client, recipient, log_text):
    unique_id = create_secret(logged_in_client, title="Title-CANARY-7a", max_views="2")
    ciphertext = load_secret(app, unique_id).ciphertext
    assert ciphertext in stored_bytes(app)  # the scan finds what is there
    assert_nowhere(app, log_text, CANARY, "Title-CANARY-7a", SECRET_PASSWORD, unique_id)
    assert CANARY in unlock(recipient, unique_id).text
    assert_nowhere(app, log_text, CANARY, "Title-CANARY-7a", SECRET_PASSWORD, unique_id)
    unlock(recipient, unique_id)
    assert load_secret(app, unique_id).status == "used_up"
    assert_nowhere(app, log_text, CANARY, "Title-CANARY-7a", SECRET_PASSWORD, unique_id)
    assert ciphertext not in stored_bytes(app)  # sealed is not enough: once used up, the sealed bytes go too


def test_row_stores_crypto_fields_and_no_password_hash(app, logged_in_client):
    unique_id = create_secret(logged_in_client)
    secret = load_secret(app, unique_id)
    assert len(secret.salt) == 16 and len(secret.nonce) == 12
    assert len(secret.ciphertext) == len(SECRET_CONTENT.encode()) + 16  # GCM tag
    assert secret.kdf_memory_kib >= 19456 and secret.kdf_iterations >= 2
    assert secret.format_version == 1
    assert secret.key_id == secret.label_key_id == app.keys.newest_id
    columns = {column.name for column in Secret.__table__.columns}
    assert not any("hash" in name or name == "password" for name in columns)


def test_two_secrets_with_the_same_text_and_password_share_nothing(app, logged_in_client):
    first = load_secret(app, create_secret(logged_in_client))
    second = load_secret(app, create_secret(logged_in_client))
    assert first.salt != second.salt and first.nonce != second.nonce and first.ciphertext != second.ciphertext


def _decrypts(app, secret, password=SECRET_PASSWORD) -> bool:
    return vault.open_content(app.keys, secret, secret.unique_id, password) == SECRET_CONTENT


def test_row_moved_to_another_id_does_not_decrypt(app, logged_in_client):
    secret = load_secret(app, create_secret(logged_in_client))
    assert _decrypts(app, secret)
    secret.unique_id = load_secret(app, create_secret(logged_in_client)).unique_id
    assert not _decrypts(app, secret)


@pytest.mark.parametrize(("field", "value"), [("kdf_memory_kib", 8192), ("kdf_iterations", 1), ("kdf_lanes", 2)])
def test_lowered_or_changed_kdf_parameters_do_not_decrypt(app, logged_in_client, field, value):
    secret = load_secret(app, create_secret(logged_in_client))
    setattr(secret, field, value)
    assert not _decrypts(app, secret)


def test_tampered_ciphertext_wrong_password_and_unknown_key_fail_alike(app, logged_in_client):
    secret = load_secret(app, create_secret(logged_in_client))
    assert not _decrypts(app, secret, "wrong-password")
    tampered = load_secret(app, secret.unique_id)
    tampered.ciphertext = bytes([tampered.ciphertext[0] ^ 1]) + tampered.ciphertext[1:]
    assert not _decrypts(app, tampered)
    unknown = load_secret(app, secret.unique_id)
    unknown.key_id = "gone"
    assert not _decrypts(app, unknown)


def test_tampered_row_fails_as_a_wrong_password_through_the_app(app, logged_in_client, recipient):
    unique_id = create_secret(logged_in_client)
    with app.app_context():
        db.session.execute(db.update(Secret).values(kdf_iterations=3))
        db.session.commit()
    response = unlock(recipient, unique_id)
    assert response.status_code == 403
    assert SECRET_CONTENT not in response.text


def test_old_keys_keep_decrypting_after_rotation(tmp_path, clock, logged_in_client, app):
    unique_id = create_secret(logged_in_client)
    old_id = app.keys.newest_id
    new_key = base64.b64encode(os.urandom(32)).decode()
    rotated_keys = f"k2:{new_key},{app.config['ENCRYPTION_KEYS']}"
    rotated = create_app(make_config(tmp_path, clock, SECRET_KEY=app.secret_key, ENCRYPTION_KEYS=rotated_keys))
    reader = rotated.test_client()
    assert SECRET_CONTENT in unlock(reader, unique_id).text
    owner = rotated.test_client()
    from tests.helpers import AuthActions

    AuthActions(owner).login()
    new_id = create_secret(owner)
    assert load_secret(rotated, new_id).key_id == "k2"
    assert load_secret(rotated, unique_id).key_id == "k2"  # re-sealed under the newest key at that right unlock
    with rotated.app_context():
        assert vault.title_of(rotated.keys, load_secret(rotated, unique_id)) == "Office Wi-Fi"
    assert load_secret(rotated, unique_id).label_key_id == old_id  # labels move with `flask keys rewrap`


def test_kdf_floor_holds_even_when_configured_lower(tmp_path, clock):
    weak = create_app(make_config(tmp_path, clock, KDF_MEMORY_KIB=1024, KDF_ITERATIONS=1))
    with weak.app_context():
        db.create_all()
    client = weak.test_client()
    from tests.helpers import AuthActions

    AuthActions(client).register()
    secret = load_secret(weak, create_secret(client))
    assert (secret.kdf_memory_kib, secret.kdf_iterations) == (19456, 2)


def test_sqlite_connections_use_secure_delete(app):
    with app.app_context():
        assert db.session.execute(db.text("PRAGMA secure_delete")).scalar() == 1


def test_edit_form_never_echoes_the_secret(app, logged_in_client):
    unique_id = create_secret(logged_in_client)
    page = logged_in_client.get(f"/secrets/{unique_id}/edit").text
    assert SECRET_CONTENT not in page
    response = post_form(
        logged_in_client,
        f"/secrets/{unique_id}/edit",
        {"title": "", "blur_level": "10", "expiration": "keep", "custom_unit": "hours", "current_password": SECRET_PASSWORD},
    )
    assert response.status_code == 400
    assert SECRET_PASSWORD not in response.text


def test_database_and_log_files_are_readable_by_their_owner_only(tmp_path, clock):
    """Fault: in development the SQLite file and logs/app.log were created 0644, readable by every local user."""
    app = create_app(make_config(tmp_path, clock))
    with app.app_context():
        db.create_all()
    AuthActions(app.test_client()).register()
    made = [tmp_path / name for name in ("secureshare.db", "secureshare.db-wal", "secureshare.db-shm", "logs/app.log")]
    assert {path.name: stat.S_IMODE(path.stat().st_mode) for path in made} == {path.name: 0o600 for path in made}
    rotated = tmp_path / "logs" / "app.log"
    rotated.rename(tmp_path / "logs" / "app.log.1")  # what logrotate does without `create`
    AuthActions(app.test_client()).login()
    assert stat.S_IMODE(rotated.stat().st_mode) == 0o600  # the new file is private too
    database = tmp_path / "secureshare.db"
    database.chmod(0o644)  # as an earlier version left it
    create_app(make_config(tmp_path, clock))
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
