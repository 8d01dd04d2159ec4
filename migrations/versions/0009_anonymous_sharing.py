"""Sharing without an account: a secret may have no owner, and then the digest of its private manage link finds it.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("secret") as batch_op:
        batch_op.alter_column("owner_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("manage_digest", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_secret_manage_digest"), ["manage_digest"])


def downgrade():
    op.execute("DELETE FROM secret WHERE owner_id IS NULL")
    with op.batch_alter_table("secret") as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_secret_manage_digest"), type_="unique")
        batch_op.drop_column("manage_digest")
        batch_op.alter_column("owner_id", existing_type=sa.Integer(), nullable=False)
