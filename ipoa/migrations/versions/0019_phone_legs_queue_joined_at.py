"""When a phone leg joined the queue it is in now (docs/telephony.md, "Configuring a centre's line"): an overflowed
caller keeps `enqueued_at`, when they first joined the first centre's queue (their wait and their place in line
count from it), but the overflow decision measures how long the queue they are in has been waited in. Read from
`enqueued_at`, one caller who overflowed into a centre's queue after 181 s made that queue's longest wait 181 s,
and every new caller of that centre overflowed back. Existing legs take `enqueued_at`; the partial index of the
callers waiting now (0015) is on (queue, queue_joined_at), the order of that read, so it stays one entry.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 18:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

WAITING = "enqueued_at IS NOT NULL AND left_queue_at IS NULL AND hung_up_at IS NULL AND answered_at IS NULL"


def upgrade() -> None:
    op.add_column('phone_legs', sa.Column('queue_joined_at', sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE phone_legs SET queue_joined_at = enqueued_at WHERE enqueued_at IS NOT NULL")
    op.drop_index('ix_phone_legs_waiting', table_name='phone_legs')
    op.create_index('ix_phone_legs_waiting', 'phone_legs', ['queue', 'queue_joined_at'],
                    postgresql_where=sa.text(WAITING), sqlite_where=sa.text(WAITING))


def downgrade() -> None:
    op.drop_index('ix_phone_legs_waiting', table_name='phone_legs')
    with op.batch_alter_table('phone_legs') as batch:
        batch.drop_column('queue_joined_at')
    op.create_index('ix_phone_legs_waiting', 'phone_legs', ['queue', 'enqueued_at'],
                    postgresql_where=sa.text(WAITING), sqlite_where=sa.text(WAITING))
