"""Languages and time zones: each account's language and time zone (issue 20).

Existing accounts get neither: their pages follow the browser's language, their emails are in English, and their times
are in UTC, until they choose on the Account page.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("user") as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("time_zone", sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table("user") as batch_op:
        batch_op.drop_column("time_zone")
        batch_op.drop_column("language")
