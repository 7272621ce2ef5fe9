"""Rotas (issue 13): rota_shifts (weekly patterns and one-off shifts), rota_shift_members, rota_changes
(cover, leave, swap), standing_duty_leads, and sms_recipient_choices (who a referral's texts went to and
why). professionals.on_duty goes: who is on duty comes from the rota at the instant (docs/domain.md,
"Rotas").

The flag's meaning is kept: for each service with professionals on duty, seven pattern shifts (one per
weekday, 00:00-00:00, a whole day) with those professionals as members, so they stay on duty at every
instant as before. Downgrade puts the flag back on for the members of an active pattern shift.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 12:00:00
"""
from datetime import time

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'rota_shifts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('service', sa.String(length=8), nullable=False),
        sa.Column('weekday', sa.Integer(), nullable=True),
        sa.Column('day', sa.Date(), nullable=True),
        sa.Column('start_time', sa.Time(), nullable=False),
        sa.Column('end_time', sa.Time(), nullable=False),
        sa.Column('label', sa.String(length=20), nullable=True),
        sa.Column('duty_lead_id', sa.Integer(), nullable=True),
        sa.Column('valid_from', sa.Date(), nullable=True),
        sa.Column('valid_to', sa.Date(), nullable=True),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['duty_lead_id'], ['professionals.id'],
                                name=op.f('fk_rota_shifts_duty_lead_id_professionals'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_rota_shifts')),
    )
    op.create_index('ix_rota_shifts_service_day', 'rota_shifts', ['service', 'day'], unique=False)
    op.create_table(
        'rota_shift_members',
        sa.Column('shift_id', sa.Integer(), nullable=False),
        sa.Column('professional_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['shift_id'], ['rota_shifts.id'],
                                name=op.f('fk_rota_shift_members_shift_id_rota_shifts'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['professional_id'], ['professionals.id'],
                                name=op.f('fk_rota_shift_members_professional_id_professionals'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('shift_id', 'professional_id', name=op.f('pk_rota_shift_members')),
    )
    op.create_table(
        'rota_changes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('service', sa.String(length=8), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('shift_id', sa.Integer(), nullable=True),
        sa.Column('day', sa.Date(), nullable=True),
        sa.Column('professionals', sa.JSON(), nullable=True),
        sa.Column('duty_lead_id', sa.Integer(), nullable=True),
        sa.Column('professional_id', sa.Integer(), nullable=True),
        sa.Column('first_day', sa.Date(), nullable=True),
        sa.Column('last_day', sa.Date(), nullable=True),
        sa.Column('other_professional_id', sa.Integer(), nullable=True),
        sa.Column('other_shift_id', sa.Integer(), nullable=True),
        sa.Column('other_day', sa.Date(), nullable=True),
        sa.Column('reason', sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(['shift_id'], ['rota_shifts.id'],
                                name=op.f('fk_rota_changes_shift_id_rota_shifts'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['other_shift_id'], ['rota_shifts.id'],
                                name=op.f('fk_rota_changes_other_shift_id_rota_shifts'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['duty_lead_id'], ['professionals.id'],
                                name=op.f('fk_rota_changes_duty_lead_id_professionals'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['professional_id'], ['professionals.id'],
                                name=op.f('fk_rota_changes_professional_id_professionals'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['other_professional_id'], ['professionals.id'],
                                name=op.f('fk_rota_changes_other_professional_id_professionals'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_rota_changes')),
    )
    op.create_index('ix_rota_changes_service_kind', 'rota_changes', ['service', 'kind'], unique=False)
    op.create_table(
        'standing_duty_leads',
        sa.Column('service', sa.String(length=8), nullable=False),
        sa.Column('professional_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['professional_id'], ['professionals.id'],
                                name=op.f('fk_standing_duty_leads_professional_id_professionals'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('service', name=op.f('pk_standing_duty_leads')),
    )
    op.create_table(
        'sms_recipient_choices',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('outbox_id', sa.String(length=32), nullable=False),
        sa.Column('call_ref', sa.String(length=16), nullable=False),
        sa.Column('referral_id', sa.String(length=32), nullable=True),
        sa.Column('service', sa.String(length=8), nullable=False),
        sa.Column('step', sa.String(length=20), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_recipient_choices')),
        sa.UniqueConstraint('outbox_id', name=op.f('uq_sms_recipient_choices_outbox_id')),
    )
    op.create_index('ix_sms_recipient_choices_call_ref', 'sms_recipient_choices', ['call_ref'], unique=False)
    op.create_index('ix_sms_recipient_choices_step_created', 'sms_recipient_choices', ['step', 'created_at'],
                    unique=False)

    # The flag becomes a rota that keeps everyone on duty who was.
    conn = op.get_bind()
    professionals = sa.table('professionals', sa.column('id', sa.Integer), sa.column('service', sa.String),
                             sa.column('on_duty', sa.Boolean))
    shifts = sa.table('rota_shifts', sa.column('id', sa.Integer), sa.column('service', sa.String),
                      sa.column('weekday', sa.Integer), sa.column('start_time', sa.Time),
                      sa.column('end_time', sa.Time), sa.column('active', sa.Boolean))
    members = sa.table('rota_shift_members', sa.column('shift_id', sa.Integer),
                       sa.column('professional_id', sa.Integer))
    by_service: dict[str, list[int]] = {}
    for pid, service in conn.execute(sa.select(professionals.c.id, professionals.c.service)
                                     .where(professionals.c.on_duty.is_(True)).order_by(professionals.c.id)):
        by_service.setdefault(service, []).append(pid)
    for service in sorted(by_service):
        for weekday in range(7):
            shift_id = conn.execute(sa.insert(shifts).values(
                service=service, weekday=weekday, start_time=time(0, 0), end_time=time(0, 0), active=True)
                .returning(shifts.c.id)).scalar_one()
            conn.execute(sa.insert(members), [{'shift_id': shift_id, 'professional_id': pid}
                                              for pid in by_service[service]])

    # Not in batch mode: on SQLite that copies the table and drops the old one, and with foreign keys on
    # the drop would empty every reference to a professional (texts, replies, these shifts). SQLite
    # 3.35 and later drop a column in place.
    op.drop_index('ix_professionals_service_on_duty', table_name='professionals')
    op.execute('ALTER TABLE professionals DROP COLUMN on_duty')
    op.create_index('ix_professionals_service', 'professionals', ['service'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_professionals_service', table_name='professionals')
    op.add_column('professionals', sa.Column('on_duty', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_index('ix_professionals_service_on_duty', 'professionals', ['service', 'on_duty'], unique=False)
    # Everyone who is a member of an active weekly pattern shift was on duty by the flag's meaning.
    conn = op.get_bind()
    conn.execute(sa.text(
        "UPDATE professionals SET on_duty = :yes WHERE id IN (SELECT m.professional_id FROM rota_shift_members m "
        "JOIN rota_shifts s ON s.id = m.shift_id WHERE s.active = :yes AND s.weekday IS NOT NULL)"),
        {'yes': True})
    op.drop_index('ix_sms_recipient_choices_step_created', table_name='sms_recipient_choices')
    op.drop_index('ix_sms_recipient_choices_call_ref', table_name='sms_recipient_choices')
    op.drop_table('sms_recipient_choices')
    op.drop_table('standing_duty_leads')
    op.drop_index('ix_rota_changes_service_kind', table_name='rota_changes')
    op.drop_table('rota_changes')
    op.drop_table('rota_shift_members')
    op.drop_index('ix_rota_shifts_service_day', table_name='rota_shifts')
    op.drop_table('rota_shifts')
