"""Where a handler answers phone calls (issue 15, point 2): users.answer_on, the handler's phone (E.164) or
`client:<identity>` (a Twilio Client in their browser or softphone), set by an administrator. The Answer
button dials the caller through to it (docs/telephony.md, "Answering a call").

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 03:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Not in batch mode (see 0012): SQLite adds a nullable column in place.
    op.add_column('users', sa.Column('answer_on', sa.String(length=140), nullable=True))


def downgrade() -> None:
    op.drop_column('users', 'answer_on')
