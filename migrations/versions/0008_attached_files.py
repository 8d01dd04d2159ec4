"""Attached files: each secret's wrapped file key, file count and total size; the sealed files and their chunks.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _digest_key(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["secret_digest"],
        ["secret.id_digest"],
        name=op.f(f"fk_{table}_secret_digest_secret"),
        ondelete="CASCADE",
        deferrable=True,
        initially="DEFERRED",
    )


def upgrade():
    with op.batch_alter_table("secret") as batch_op:
        batch_op.add_column(sa.Column("files_key_sealed", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("file_count", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("file_bytes", sa.BigInteger(), nullable=False, server_default="0"))
    op.create_table(
        "secret_file",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("secret_digest", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("sealed_meta", sa.LargeBinary(), nullable=False),
        _digest_key("secret_file"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_secret_file")),
    )
    op.create_index("ix_secret_file_place", "secret_file", ["secret_digest", "position"], unique=True)
    op.create_table(
        "file_chunk",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("secret_digest", sa.String(length=64), nullable=False),
        sa.Column("file_position", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        _digest_key("file_chunk"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_file_chunk")),
    )
    op.create_index("ix_file_chunk_place", "file_chunk", ["secret_digest", "file_position", "position"], unique=True)


def downgrade():
    op.drop_table("file_chunk")
    op.drop_table("secret_file")
    with op.batch_alter_table("secret") as batch_op:
        batch_op.drop_column("file_bytes")
        batch_op.drop_column("file_count")
        batch_op.drop_column("files_key_sealed")
