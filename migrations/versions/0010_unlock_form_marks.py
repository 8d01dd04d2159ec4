"""A reload of the revealed secret spends no view: an unlock event keeps a keyed hash of its form's token.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("access_event") as batch_op:
        batch_op.add_column(sa.Column("form_mark", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_access_event_form_mark"), ["form_mark"])


def downgrade():
    with op.batch_alter_table("access_event") as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_access_event_form_mark"), type_="unique")
        batch_op.drop_column("form_mark")
