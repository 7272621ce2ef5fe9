"""calls.address_line_1 and calls.town: the address for a visit, optional at intake (issue 12: the
professional's referral page shows it). Patient-identifying like the postcode: pseudonymised by retention
(service/retention.py), never in a text (domain/sms) or a log line.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 09:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('calls') as batch:
        batch.add_column(sa.Column('address_line_1', sa.String(length=100), nullable=True))
        batch.add_column(sa.Column('town', sa.String(length=60), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('calls') as batch:
        batch.drop_column('town')
        batch.drop_column('address_line_1')
