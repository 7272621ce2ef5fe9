"""Hardening: server-side sessions, sign-in throttling and lockout, multi-factor sign-in (TOTP and
recovery codes), named expiring API tokens, Idempotency-Key records, and texts' retry times kept in the
database. See docs/security.md.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 00:30:00
"""
from datetime import UTC

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

# Tokens issued before tokens expired get the default lifetime from the upgrade (docs/security.md).
TOKEN_DAYS = 90


def upgrade() -> None:
    # -- sign-in: throttling, lockout, multi-factor ------------------------------------------------
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('failures_since', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('password_changed_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('mfa_secret', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('mfa_enrolled_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table('mfa_recovery_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_mfa_recovery_codes_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mfa_recovery_codes'))
    )
    op.create_index(op.f('ix_mfa_recovery_codes_user_id'), 'mfa_recovery_codes', ['user_id'], unique=False)

    # -- sessions ---------------------------------------------------------------------------------------
    op.create_table('user_sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('mfa_verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.String(length=32), nullable=True),
    sa.Column('client', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_sessions_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_sessions'))
    )
    op.create_index(op.f('ix_user_sessions_user_id'), 'user_sessions', ['user_id'], unique=False)

    # -- sign-in and sessions, as built (ipoa/service/sessions.py, signin.py, mfa.py) -------------------
    # A visitor not signed in yet has a session too (the sign-in form's CSRF token, "Signed out."): a row
    # with no user. `data` holds the session's contents (JSON), so the cookie holds only the opaque id.
    with op.batch_alter_table('user_sessions') as batch:
        batch.alter_column('user_id', existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column('data', sa.Text(), nullable=True))
    # The last TOTP time step accepted: a code is never accepted twice (RFC 6238, section 5.2).
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('mfa_last_step', sa.Integer(), nullable=True))
    # Failed sign-ins are counted per username (known or not) from the security log, at every attempt.
    op.create_index('ix_security_events_actor_at', 'security_events', ['actor', 'at'], unique=False)

    # -- API tokens: named, expiring ------------------------------------------------------------------
    with op.batch_alter_table('api_tokens') as batch:
        batch.add_column(sa.Column('name', sa.String(length=80), nullable=True))
        batch.add_column(sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True))
    from datetime import datetime, timedelta

    expires = datetime.now(UTC) + timedelta(days=TOKEN_DAYS)
    if op.get_bind().dialect.name == "sqlite":
        expires = expires.replace(tzinfo=None)
    op.execute(sa.text("UPDATE api_tokens SET expires_at = :e WHERE expires_at IS NULL AND revoked_at IS NULL")
               .bindparams(e=expires))

    # -- idempotency ----------------------------------------------------------------------------------
    op.create_table('idempotency_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('method', sa.String(length=8), nullable=False),
    sa.Column('path', sa.String(length=200), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('response_body', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_idempotency_keys_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_keys')),
    sa.UniqueConstraint('user_id', 'key', name='uq_idempotency_keys_user_id_key')
    )
    op.create_index('ix_idempotency_keys_created_at', 'idempotency_keys', ['created_at'], unique=False)

    # -- texts: retries held in the database ------------------------------------------------------------
    with op.batch_alter_table('sms_messages') as batch:
        batch.add_column(sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True))

    # -- texts: short links and escalation digests (docs/security.md, "Links in texts", "Escalations") ----
    op.create_table('sms_links',
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('referral_id', sa.String(length=32), nullable=True),
    sa.Column('scope', sa.String(length=24), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_sms_links')),
    sa.UniqueConstraint('referral_id', name=op.f('uq_sms_links_referral_id')),
    sa.UniqueConstraint('scope', name=op.f('uq_sms_links_scope'))
    )
    op.create_table('sms_escalation_windows',
    sa.Column('to', sa.String(length=20), nullable=False),
    sa.Column('last_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('digest_id', sa.String(length=32), nullable=True),
    sa.Column('held', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=24), nullable=True),
    sa.PrimaryKeyConstraint('to', name=op.f('pk_sms_escalation_windows'))
    )


def downgrade() -> None:
    # -- texts: short links and escalation digests ------------------------------------------------------
    op.drop_table('sms_escalation_windows')
    op.drop_table('sms_links')
    with op.batch_alter_table('sms_messages') as batch:
        batch.drop_column('next_attempt_at')
    op.drop_index('ix_idempotency_keys_created_at', table_name='idempotency_keys')
    op.drop_table('idempotency_keys')
    with op.batch_alter_table('api_tokens') as batch:
        batch.drop_column('last_used_at')
        batch.drop_column('expires_at')
        batch.drop_column('name')
    # -- sign-in and sessions, as built -------------------------------------------------------------
    op.drop_index('ix_security_events_actor_at', table_name='security_events')
    with op.batch_alter_table('users') as batch:
        batch.drop_column('mfa_last_step')

    op.drop_index(op.f('ix_user_sessions_user_id'), table_name='user_sessions')
    op.drop_table('user_sessions')
    op.drop_index(op.f('ix_mfa_recovery_codes_user_id'), table_name='mfa_recovery_codes')
    op.drop_table('mfa_recovery_codes')
    with op.batch_alter_table('users') as batch:
        batch.drop_column('mfa_enrolled_at')
        batch.drop_column('mfa_secret')
        batch.drop_column('password_changed_at')
        batch.drop_column('failures_since')
        batch.drop_column('locked_until')
