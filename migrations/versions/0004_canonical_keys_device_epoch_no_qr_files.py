"""Canonical username and email keys (NFKC, case-folded) in place of lower() indexes; the device epoch; no QR files.

Python's lower() and PostgreSQL's lower() disagree on some letters, so the uniqueness check and the unique index
could disagree (a 500 at sign-up). The keys are folded once, in Python, and indexed as they are.

Revision ID: 0004
Revises: 0003
"""

import unicodedata
import warnings
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _canonical(text: str) -> str:
    # schema.canonical as of this revision, written out: a migration must not change when the app's code does.
    return unicodedata.normalize("NFKC", text).casefold()


def _fill_keys() -> None:
    connection = op.get_bind()
    users = sa.table("user", sa.column("id"), sa.column("username"), sa.column("email"), sa.column("username_key"),
                     sa.column("email_key"))  # fmt: skip
    seen: dict[tuple[str, str], int] = {}
    for user_id, username, email in connection.execute(sa.select(users.c.id, users.c.username, users.c.email)).all():
        keys = {"username_key": _canonical(username), "email_key": _canonical(email)}
        for column, key in keys.items():
            if (column, key) in seen:
                raise RuntimeError(
                    f"accounts {seen[column, key]} and {user_id} have the same {column.removesuffix('_key')} once "
                    "normalised: rename one of them, then run the upgrade again"
                )
            seen[column, key] = user_id
        connection.execute(users.update().where(users.c.id == user_id).values(**keys))


@contextmanager
def _rebuilding_users():
    """SQLite rebuilds `user` to alter it and cannot reflect its lower() indexes (0002's), which go anyway."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index", sa.exc.SAWarning)
        yield


def upgrade():
    op.execute("DROP INDEX IF EXISTS uq_user_username_lower")
    op.execute("DROP INDEX IF EXISTS uq_user_email_lower")
    with _rebuilding_users(), op.batch_alter_table("user") as batch_op:
        batch_op.add_column(sa.Column("username_key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("email_key", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("device_epoch", sa.Integer(), nullable=False, server_default="0"))
    _fill_keys()
    with _rebuilding_users(), op.batch_alter_table("user") as batch_op:
        batch_op.alter_column("username_key", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("email_key", existing_type=sa.String(length=320), nullable=False)
        batch_op.create_unique_constraint("uq_user_username_key", ["username_key"])
        batch_op.create_unique_constraint("uq_user_email_key", ["email_key"])
    with op.batch_alter_table("secret") as batch_op:
        batch_op.drop_column("qr_filename")


def downgrade():
    with op.batch_alter_table("secret") as batch_op:
        batch_op.add_column(sa.Column("qr_filename", sa.String(length=64), nullable=True))
    with op.batch_alter_table("user") as batch_op:
        batch_op.drop_constraint("uq_user_email_key", type_="unique")
        batch_op.drop_constraint("uq_user_username_key", type_="unique")
        batch_op.drop_column("device_epoch")
        batch_op.drop_column("email_key")
        batch_op.drop_column("username_key")
    op.create_index("uq_user_username_lower", "user", [sa.text("lower(username)")], unique=True)
    op.create_index("uq_user_email_lower", "user", [sa.text("lower(email)")], unique=True)
