"""Twilio Voice (issue 15): phone_legs (one row per inbound call, from ringing to hanging up),
handler_availability (handlers taking calls) and an index on calls.caller_phone (a caller who rings again is
matched to their open calls). docs/telephony.md.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 02:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'phone_legs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('call_sid', sa.String(length=64), nullable=False),
        sa.Column('centre', sa.String(length=8), nullable=False),
        sa.Column('queue', sa.String(length=8), nullable=True),
        sa.Column('caller_number', sa.String(length=20), nullable=True),
        sa.Column('caller_type', sa.String(length=16), nullable=True),
        sa.Column('priority', sa.Boolean(), nullable=False),
        sa.Column('arrived_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('answered_by', sa.String(length=64), nullable=True),
        sa.Column('left_queue_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('hung_up_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('outcome', sa.String(length=24), nullable=True),
        sa.Column('overflowed_from', sa.String(length=8), nullable=True),
        sa.Column('matched_call_ref', sa.String(length=16), nullable=True),
        sa.Column('call_ref', sa.String(length=16), nullable=True),
        sa.Column('last_status', sa.String(length=20), nullable=True),
        sa.Column('menu_attempt', sa.Integer(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_phone_legs')),
        sa.UniqueConstraint('call_sid', name=op.f('uq_phone_legs_call_sid')),
    )
    op.create_index('ix_phone_legs_queue_enqueued_at', 'phone_legs', ['queue', 'enqueued_at'])
    op.create_index('ix_phone_legs_arrived_at', 'phone_legs', ['arrived_at'])
    op.create_index('ix_phone_legs_caller_number', 'phone_legs', ['caller_number'])
    op.create_table(
        'handler_availability',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('taking_calls', sa.Boolean(), nullable=False),
        sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_handler_availability_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_id', name=op.f('pk_handler_availability')),
    )
    op.create_index('ix_calls_caller_phone', 'calls', ['caller_phone'])


def downgrade() -> None:
    op.drop_index('ix_calls_caller_phone', table_name='calls')
    op.drop_table('handler_availability')
    op.drop_index('ix_phone_legs_caller_number', table_name='phone_legs')
    op.drop_index('ix_phone_legs_arrived_at', table_name='phone_legs')
    op.drop_index('ix_phone_legs_queue_enqueued_at', table_name='phone_legs')
    op.drop_table('phone_legs')
