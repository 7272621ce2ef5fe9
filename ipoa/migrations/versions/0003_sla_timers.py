"""SLA timers, breaches on calls and referrals, users' mobiles

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 14:50:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('timers',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('call_ref', sa.String(length=16), nullable=False),
    sa.Column('referral_id', sa.String(length=32), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('set_at_version', sa.Integer(), nullable=False),
    sa.Column('rule', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('fired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('stopped_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_timers'))
    )
    op.create_index('ix_timers_due', 'timers', ['fired_at', 'due_at'], unique=False)
    op.create_index(op.f('ix_timers_call_ref'), 'timers', ['call_ref'], unique=False)
    with op.batch_alter_table('calls') as batch:
        batch.add_column(sa.Column('breach', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('breached_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('referrals') as batch:
        batch.add_column(sa.Column('breach', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('breached_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('mobile', sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.drop_column('mobile')
    with op.batch_alter_table('referrals') as batch:
        batch.drop_column('breached_at')
        batch.drop_column('breach')
    with op.batch_alter_table('calls') as batch:
        batch.drop_column('breached_at')
        batch.drop_column('breach')
    op.drop_index(op.f('ix_timers_call_ref'), table_name='timers')
    op.drop_index('ix_timers_due', table_name='timers')
    op.drop_table('timers')
