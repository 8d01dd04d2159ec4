"""Email and webhooks: the outbox, links sent by email (password reset, address verification), webhook endpoints,
confirmed addresses and the notifications each account and secret asks for.

Existing accounts start unconfirmed: with EMAIL_VERIFICATION=required they can sign in and confirm, but not create
secrets until they do. Existing secrets tell nothing (they were made before anyone could choose).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("user") as batch_op:
        batch_op.add_column(sa.Column("email_verified_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("notify_opened", sa.String(length=8), nullable=False, server_default="first"))
        batch_op.add_column(sa.Column("notify_destroyed", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(sa.Column("notify_unopened", sa.Boolean(), nullable=False, server_default=sa.true()))
    with op.batch_alter_table("secret") as batch_op:
        batch_op.add_column(sa.Column("notify_opened", sa.String(length=8), nullable=False, server_default="never"))
        batch_op.add_column(sa.Column("notify_destroyed", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("notify_unopened", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "account_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name=op.f("fk_account_token_user_id_user"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_account_token_token_hash")),
    )
    op.create_index(op.f("ix_account_token_user_id"), "account_token", ["user_id"])
    op.create_index(op.f("ix_account_token_expires_at"), "account_token", ["expires_at"])
    op.create_table(
        "webhook_endpoint",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=253), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("url_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("secret_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_outcome", sa.String(length=120), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name=op.f("fk_webhook_endpoint_user_id_user"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoint")),
    )
    op.create_index(op.f("ix_webhook_endpoint_user_id"), "webhook_endpoint", ["user_id"])
    op.create_table(
        "outbox_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deliver_by", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=True),
        sa.Column("endpoint_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoint.id"],
            name=op.f("fk_outbox_message_endpoint_id_webhook_endpoint"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_message")),
    )
    op.create_index(op.f("ix_outbox_message_endpoint_id"), "outbox_message", ["endpoint_id"])
    op.create_index(op.f("ix_outbox_message_finished_at"), "outbox_message", ["finished_at"])
    op.create_index("ix_outbox_message_state_next_attempt_at", "outbox_message", ["state", "next_attempt_at"])


def downgrade():
    op.drop_table("outbox_message")
    op.drop_table("webhook_endpoint")
    op.drop_table("account_token")
    with op.batch_alter_table("secret") as batch_op:
        for column in ("notify_unopened", "notify_destroyed", "notify_opened"):
            batch_op.drop_column(column)
    with op.batch_alter_table("user") as batch_op:
        for column in ("notify_unopened", "notify_destroyed", "notify_opened", "email_verified_at"):
            batch_op.drop_column(column)
