"""The scheduler's index of timers holds only the clocks still running (issue 14; docs/performance.md, "A step
without the ORM session"). ix_timers_due was on (fired_at, due_at): every clock stopped or fired moved its
entry from the running part to the fired part, which only grew (three timers a call, forever), and every
query that reads the index asks for running clocks (fired_at IS NULL). Now a partial index on due_at where
fired_at IS NULL: a clock that stops leaves it, and it stays the size of the clocks running now.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 15:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

RUNNING = "fired_at IS NULL"


def upgrade() -> None:
    op.drop_index('ix_timers_due', table_name='timers')
    op.create_index('ix_timers_due', 'timers', ['due_at'],
                    postgresql_where=sa.text(RUNNING), sqlite_where=sa.text(RUNNING))


def downgrade() -> None:
    op.drop_index('ix_timers_due', table_name='timers')
    op.create_index('ix_timers_due', 'timers', ['fired_at', 'due_at'])
