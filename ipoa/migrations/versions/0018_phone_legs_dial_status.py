"""The dial result of Answer's <Dial> on the phone leg: an answered leg whose dial result never came (ipoa down,
the network) is asked about through Twilio's REST API, so a caller the handler's phone never reached is not
counted answered and is called back (docs/telephony.md, "Lost webhooks"). Legs answered before this migration
are marked `unknown`: nobody asks Twilio about weeks-old answers, nor turns them into callbacks due at once and
past periods' measures into others. A partial index holds the answers whose dial result is still to come, the
lost-call check's read every minute.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 12:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


PENDING = "outcome = 'answered' AND answered_by IS NOT NULL AND dial_status IS NULL"


def upgrade() -> None:
    op.add_column('phone_legs', sa.Column('dial_status', sa.String(length=20), nullable=True))
    op.execute(f"UPDATE phone_legs SET dial_status = 'unknown' WHERE {PENDING}")
    op.create_index('ix_phone_legs_dial_pending', 'phone_legs', ['answered_at'],
                    postgresql_where=sa.text(PENDING), sqlite_where=sa.text(PENDING))


def downgrade() -> None:
    op.drop_index('ix_phone_legs_dial_pending', table_name='phone_legs')
    with op.batch_alter_table('phone_legs') as batch:
        batch.drop_column('dial_status')
