"""Professionals managed in the product and hand-overs (issue 13): professionals.active (deactivated, never
deleted) and unavailable_until (a professional's OFF text within their shift); handover_resends (a
referral re-sent to the incoming shift, once per shift change) and handover_checks (how far each service's
shift changes have been looked at). docs/domain.md, "Rotas".

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 14:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Not in batch mode: on SQLite that copies the table and drops the old one, and with foreign keys on
    # the drop would empty every reference to a professional (their shifts, texts and replies). SQLite adds
    # a column with a constant default, and drops one (3.35 and later), in place.
    op.add_column('professionals', sa.Column('active', sa.Boolean(), nullable=False, server_default=sa.true()))
    op.add_column('professionals', sa.Column('unavailable_until', sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        'handover_resends',
        sa.Column('referral_id', sa.String(length=32), nullable=False),
        sa.Column('handover_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('service', sa.String(length=8), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'],
                                name=op.f('fk_handover_resends_referral_id_referrals'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('referral_id', 'handover_at', name=op.f('pk_handover_resends')),
    )
    op.create_table(
        'handover_checks',
        sa.Column('service', sa.String(length=8), nullable=False),
        sa.Column('checked_until', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('service', name=op.f('pk_handover_checks')),
    )


def downgrade() -> None:
    op.drop_table('handover_checks')
    op.drop_table('handover_resends')
    op.execute('ALTER TABLE professionals DROP COLUMN unavailable_until')
    op.execute('ALTER TABLE professionals DROP COLUMN active')
