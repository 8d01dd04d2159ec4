"""Themes: each account's light, dark or system theme (issue 19).

Existing accounts get none: their pages follow the device's theme until they choose one from the menu at the foot.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("user") as batch_op:
        batch_op.add_column(sa.Column("theme", sa.String(length=8), nullable=True))


def downgrade():
    with op.batch_alter_table("user") as batch_op:
        batch_op.drop_column("theme")
