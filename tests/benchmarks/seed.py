"""Fast seeding of realistic sealed rows: real share ids and titles sealed by the app, content copied from a real secret.

Rows go in with bulk inserts (one statement per batch), so 100,000 take seconds, not the hours 100,000 key
derivations would. The content fields of every seeded row are those of one secret created through the real form:
the same sizes and KDF parameters as the real thing (nobody unlocks a seeded row).
"""

import os
import secrets
from datetime import datetime, timedelta

from flask import current_app

import vault
from app import db
from schema import AccessEvent, Secret, SecretStatus, User, new_unique_id, share_id_digest

BATCH = 5000
CONTENT_COLUMNS = ("format_version", "key_id", "kdf_memory_kib", "kdf_iterations", "kdf_lanes", "salt", "nonce", "ciphertext")
ENDED = (SecretStatus.EXPIRED, SecretStatus.USED_UP, SecretStatus.DESTROYED, SecretStatus.DELETED)


def owner_id(username: str) -> int:
    return db.session.execute(db.select(User.id).filter_by(username=username)).scalar_one()


def content_template(share_id: str) -> dict:
    """Return the sealed content fields of a secret created through the real form."""
    secret = db.session.execute(Secret.by_share_id(share_id)).scalar_one()
    return {column: getattr(secret, column) for column in CONTENT_COLUMNS}


def _sealed_labels(keys: vault.KeyRing, index: int, real: bool) -> dict:
    """Return a share id digest and the sealed id and title: sealed by the vault, or random bytes of the same sizes."""
    title = f"Seeded secret {index}"
    unique_id = new_unique_id()
    id_digest = share_id_digest(unique_id)
    if not real:  # rows only a purge reads: nothing ever opens their labels
        sealed = {"label_key_id": keys.newest_id, "unique_id_sealed": os.urandom(28 + len(unique_id)),
                  "title_sealed": os.urandom(28 + len(title))}  # fmt: skip
        return {"id_digest": id_digest, **sealed}
    return {"id_digest": id_digest, **vault.seal_labels(keys, id_digest, unique_id, title)}


def _row(owner: int, index: int, template: dict, now: datetime, ended: bool, age: timedelta, real: bool) -> dict:
    labels = _sealed_labels(current_app.keys, index, real)
    status = ENDED[index % len(ENDED)] if ended else SecretStatus.ACTIVE
    content = {**template, "salt": None, "nonce": None, "ciphertext": None} if ended else template
    moment = now - age
    return {
        **content,
        **labels,
        "owner_id": owner,
        "blur_level": 10,
        "max_views": None if index % 3 else 5,
        "view_count": index % 5,
        "failed_attempts": index % 2,
        "status": status,
        "expires_at": moment - timedelta(hours=1) if ended else now + timedelta(days=7),
        "created_at": moment - timedelta(days=1),
        "updated_at": moment,
        "last_viewed_at": moment if index % 5 else None,
    }


def seed(owner: int, count: int, template: dict, now: datetime, *, ended: bool, age: timedelta, events_every: int = 0,
         real_labels: bool = True) -> None:
    """Insert `count` secrets for `owner`, ended ones `age` old (content erased) or active ones; every
    `events_every`-th secret gets an access event. Without `real_labels`, ids and titles are random bytes."""
    first_id = db.session.execute(db.select(db.func.coalesce(db.func.max(Secret.id), 0))).scalar_one() + 1
    for start in range(0, count, BATCH):
        rows = [_row(owner, index, template, now, ended, age, real_labels) for index in range(start, min(start + BATCH, count))]
        db.session.execute(Secret.__table__.insert(), rows)  # Core executemany: no RETURNING, no ORM bookkeeping
    if events_every:
        event = db.select(Secret.id, db.literal(now - age, AccessEvent.at.type), db.literal("unlocked"), db.literal("bench"),
                          db.literal("127.0.0.0/24"))  # fmt: skip
        db.session.execute(
            db.insert(AccessEvent).from_select(
                ["secret_id", "at", "outcome", "user_agent", "ip_prefix"],
                event.where(Secret.owner_id == owner, Secret.id >= first_id, Secret.id % events_every == 0),
            )
        )
    db.session.commit()


def database_bytes() -> int:
    """Return the bytes the database holds now (SQLite: pages in use after a checkpoint; PostgreSQL: the tables)."""
    if db.engine.dialect.name == "sqlite":
        db.session.execute(db.text("PRAGMA wal_checkpoint(TRUNCATE)"))
        pages = db.session.execute(db.text("PRAGMA page_count")).scalar_one()
        free = db.session.execute(db.text("PRAGMA freelist_count")).scalar_one()
        size = db.session.execute(db.text("PRAGMA page_size")).scalar_one()
        return (pages - free) * size
    tables = [table.name for table in db.metadata.sorted_tables]
    return sum(
        db.session.execute(db.text("SELECT pg_total_relation_size(:name)"), {"name": f'"{name}"'}).scalar_one()
        for name in tables
    )


def random_password() -> str:
    return "bench-" + secrets.token_urlsafe(18)
