"""Indexes for the reports' period filters: calls by logged_at, referrals by sent_at, texts by created_at

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 15:00:00
"""
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_calls_logged_at', 'calls', ['logged_at'], unique=False)
    op.create_index('ix_referrals_sent_at', 'referrals', ['sent_at'], unique=False)
    op.create_index('ix_sms_messages_created_at', 'sms_messages', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_sms_messages_created_at', table_name='sms_messages')
    op.drop_index('ix_referrals_sent_at', table_name='referrals')
    op.drop_index('ix_calls_logged_at', table_name='calls')
