"""referrals.state indexed (supervisors' dashboard: open referrals per service without a full scan)

The queue figures (/api/v1/queues), the breaches list and the dashboard's figures all select referrals
by state among the open ones; ix_referrals_service_state leads with the service, so with a year of
finished referrals (~400,000 per 1,000,000 calls) PostgreSQL scanned the whole table (~80 ms). See
docs/performance.md, "Supervisor dashboard: bench/dashboard.py".

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 15:00:00
"""
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_referrals_state', 'referrals', ['state'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_referrals_state', table_name='referrals')
