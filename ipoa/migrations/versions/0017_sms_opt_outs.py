"""Opt-outs (STOP) of numbers that are not a professional's: a supervisor who texted STOP was texted on
(docs/domain.md, "SMS to professionals": STOP/START are honoured). One row per number opted out; START
deletes it.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 10:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sms_opt_outs',
                    sa.Column('number', sa.String(length=20), nullable=False),
                    sa.Column('opted_out_at', sa.DateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint('number', name=op.f('pk_sms_opt_outs')))


def downgrade() -> None:
    op.drop_table('sms_opt_outs')
