"""The dial result of Answer's <Dial> on the phone leg: an answered leg whose dial result never came (ipoa down,
the network) is asked about through Twilio's REST API, so a caller the handler's phone never reached is not
counted answered and is called back (docs/telephony.md, "Lost webhooks").

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


def upgrade() -> None:
    op.add_column('phone_legs', sa.Column('dial_status', sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('phone_legs') as batch:
        batch.drop_column('dial_status')
