"""sms_messages.followed_up_at, followed_up_by and follow_up_note: a supervisor marks a text that was not
delivered as followed up by phone, with a note (issue 12: the dashboard's exceptions panel). The text then
leaves the panel; the follow-up is kept on the text and in the audit trail.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 11:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sms_messages') as batch:
        batch.add_column(sa.Column('followed_up_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('followed_up_by', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('follow_up_note', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('sms_messages') as batch:
        batch.drop_column('follow_up_note')
        batch.drop_column('followed_up_by')
        batch.drop_column('followed_up_at')
