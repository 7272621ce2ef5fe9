"""The callers waiting in a queue, indexed on their own (issue 15; docs/performance.md, "Voice"): the answer
to every ringing call reads its queue's longest wait (and its overflow's), and the queue page lists who waits.
Through ix_phone_legs_queue_enqueued_at those reads walked past every caller the queue had ever answered (a
queue's whole history, kept for the measures); this partial index holds only the legs waiting now.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 06:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

WAITING = "enqueued_at IS NOT NULL AND left_queue_at IS NULL AND hung_up_at IS NULL AND answered_at IS NULL"


def upgrade() -> None:
    op.create_index('ix_phone_legs_waiting', 'phone_legs', ['queue', 'enqueued_at'],
                    postgresql_where=sa.text(WAITING), sqlite_where=sa.text(WAITING))


def downgrade() -> None:
    op.drop_index('ix_phone_legs_waiting', table_name='phone_legs')
