"""professionals and sms messages

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 09:12:48.428339
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('professionals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('mobile', sa.String(length=20), nullable=False),
    sa.Column('service', sa.String(length=8), nullable=False),
    sa.Column('on_duty', sa.Boolean(), nullable=False),
    sa.Column('opted_out_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_professionals_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_professionals')),
    sa.UniqueConstraint('mobile', name=op.f('uq_professionals_mobile'))
    )
    with op.batch_alter_table('professionals', schema=None) as batch_op:
        batch_op.create_index('ix_professionals_service_on_duty', ['service', 'on_duty'], unique=False)

    op.create_table('sms_inbound',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider_sid', sa.String(length=64), nullable=False),
    sa.Column('professional_id', sa.Integer(), nullable=True),
    sa.Column('command', sa.String(length=16), nullable=False),
    sa.Column('call_ref', sa.String(length=16), nullable=True),
    sa.Column('outcome', sa.String(length=32), nullable=False),
    sa.Column('reply', sa.String(length=320), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['professional_id'], ['professionals.id'], name=op.f('fk_sms_inbound_professional_id_professionals'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_inbound')),
    sa.UniqueConstraint('provider_sid', name=op.f('uq_sms_inbound_provider_sid'))
    )
    op.create_table('sms_messages',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('call_ref', sa.String(length=16), nullable=False),
    sa.Column('referral_id', sa.String(length=32), nullable=True),
    sa.Column('recipient_kind', sa.String(length=16), nullable=False),
    sa.Column('professional_id', sa.Integer(), nullable=True),
    sa.Column('to', sa.String(length=20), nullable=False),
    sa.Column('template', sa.String(length=40), nullable=False),
    sa.Column('body', sa.String(length=320), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('provider_sid', sa.String(length=64), nullable=True),
    sa.Column('error_code', sa.Integer(), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('outbox_id', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['professional_id'], ['professionals.id'], name=op.f('fk_sms_messages_professional_id_professionals'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_messages')),
    sa.UniqueConstraint('outbox_id', 'to', 'template', name='uq_sms_messages_outbox_to_template'),
    sa.UniqueConstraint('provider_sid', name=op.f('uq_sms_messages_provider_sid'))
    )
    with op.batch_alter_table('sms_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sms_messages_call_ref'), ['call_ref'], unique=False)
        batch_op.create_index('ix_sms_messages_status_created', ['status', 'created_at'], unique=False)

    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.add_column(sa.Column('updates_to', sa.String(length=20), nullable=True))




def downgrade() -> None:
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_column('updates_to')

    with op.batch_alter_table('sms_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_sms_messages_status_created')
        batch_op.drop_index(batch_op.f('ix_sms_messages_call_ref'))

    op.drop_table('sms_messages')
    op.drop_table('sms_inbound')
    with op.batch_alter_table('professionals', schema=None) as batch_op:
        batch_op.drop_index('ix_professionals_service_on_duty')

    op.drop_table('professionals')

