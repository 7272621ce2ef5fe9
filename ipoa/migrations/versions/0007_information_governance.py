"""Information governance: the chained, append-only audit trail (audit_events renumbered as seq and
hashed; access_events, security_events and their chain heads), break-glass grants, audit verification
runs, consent to share on calls and the sharing basis on referrals, the centres a call has been with,
and pseudonymisation under retention. See docs/information-governance.md.

On PostgreSQL, triggers refuse UPDATE, DELETE and TRUNCATE on the three chained tables, and any change
to a chain head that would move it backwards or remove it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 23:00:00
"""
import json
from datetime import UTC

import sqlalchemy as sa
from alembic import op

from ipoa.domain.audit_chain import CHAINS, GENESIS, canonical, link

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

CHAINED = ("audit_events", "access_events", "security_events")

REFUSE_CHANGE = """
CREATE OR REPLACE FUNCTION ipoa_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'ipoa: % on % refused: the audit trail is append-only', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END $$;
"""
HEAD_FORWARD_ONLY = """
CREATE OR REPLACE FUNCTION ipoa_chain_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'UPDATE' OR NEW.chain <> OLD.chain OR NEW.seq < OLD.seq THEN
    RAISE EXCEPTION 'ipoa: % on audit_chain_heads refused: a chain head only moves forward', TG_OP
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $$;
"""


def _utc(value):
    from datetime import datetime

    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"

    with op.batch_alter_table('calls') as batch:
        batch.add_column(sa.Column('centre_path', sa.String(length=120), nullable=True))
        batch.add_column(sa.Column('consent', sa.String(length=40), nullable=True))
        batch.add_column(sa.Column('consent_recorded_by', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('consent_recorded_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('pseudonymised_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('referrals') as batch:
        batch.add_column(sa.Column('sharing_basis', sa.String(length=40), nullable=True))
        batch.add_column(sa.Column('sharing_reason', sa.Text(), nullable=True))

    # The centres each existing call has been with: where it was logged, then each transfer's destination.
    paths = {}
    for ref, origin in bind.execute(sa.text("SELECT ref, origin_centre FROM calls")):
        paths[ref] = [origin]
    for ref, data in bind.execute(sa.text(
            "SELECT call_ref, data FROM audit_events WHERE entity = 'call' AND trigger = 'transfer' ORDER BY id")):
        data = json.loads(data) if isinstance(data, str) else (data or {})
        centre = data.get("centre")
        if ref in paths and centre and centre not in paths[ref]:
            paths[ref].append(centre)
    for ref, centres in paths.items():
        bind.execute(sa.text("UPDATE calls SET centre_path = :p WHERE ref = :r"), {"p": " ".join(centres), "r": ref})
    with op.batch_alter_table('calls') as batch:
        batch.alter_column('centre_path', existing_type=sa.String(length=120), nullable=False)

    # audit_events: numbered by the application (seq) and hashed into the chain.
    with op.batch_alter_table('audit_events') as batch:
        batch.alter_column('id', new_column_name='seq', existing_type=sa.Integer())
        batch.add_column(sa.Column('hash', sa.String(length=64), nullable=True))
    if postgres:
        op.execute("ALTER TABLE audit_events ALTER COLUMN seq DROP DEFAULT")
        op.execute("DROP SEQUENCE IF EXISTS audit_events_id_seq")
    rows = bind.execute(sa.text(
        "SELECT seq, call_ref, entity, entity_id, actor, at, from_state, to_state, trigger, reason, data "
        "FROM audit_events ORDER BY seq")).all()
    if any(r.seq != n for n, r in enumerate(rows, 1)):  # gaps: number them 1..N in their order
        bind.execute(sa.text("UPDATE audit_events SET seq = -seq"))
        for n, r in enumerate(rows, 1):
            bind.execute(sa.text("UPDATE audit_events SET seq = :n WHERE seq = :old"), {"n": n, "old": -r.seq})
    prev = GENESIS
    for n, r in enumerate(rows, 1):
        data = json.loads(r.data) if isinstance(r.data, str) else (r.data or {})
        fields = {"call_ref": r.call_ref, "entity": r.entity, "entity_id": r.entity_id, "actor": r.actor,
                  "at": _utc(r.at), "from_state": r.from_state, "to_state": r.to_state, "trigger": r.trigger,
                  "reason": r.reason, "data": data}
        prev = link(prev, n, canonical(fields))
        bind.execute(sa.text("UPDATE audit_events SET hash = :h WHERE seq = :n"), {"h": prev, "n": n})
    with op.batch_alter_table('audit_events') as batch:
        batch.alter_column('hash', existing_type=sa.String(length=64), nullable=False)

    op.create_table('access_events',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('centre', sa.String(length=8), nullable=True),
    sa.Column('call_ref', sa.String(length=16), nullable=False),
    sa.Column('referral_id', sa.String(length=32), nullable=True),
    sa.Column('route', sa.String(length=120), nullable=False),
    sa.Column('purpose', sa.String(length=40), nullable=False),
    sa.Column('grant_id', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_access_events'))
    )
    op.create_index('ix_access_events_call_ref', 'access_events', ['call_ref', 'seq'], unique=False)
    op.create_table('security_events',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('subject', sa.String(length=80), nullable=True),
    sa.Column('client', sa.String(length=64), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_security_events'))
    )
    op.create_index('ix_security_events_kind_at', 'security_events', ['kind', 'at'], unique=False)
    heads = op.create_table('audit_chain_heads',
    sa.Column('chain', sa.String(length=16), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('chain', name=op.f('pk_audit_chain_heads'))
    )
    op.bulk_insert(heads, [{"chain": c, "seq": len(rows) if c == "audit" else 0,
                            "hash": prev if c == "audit" else GENESIS} for c in CHAINS])
    op.create_table('audit_verifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('by', sa.String(length=80), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=True),
    sa.Column('events', sa.Integer(), nullable=True),
    sa.Column('problem', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_verifications'))
    )
    op.create_table('break_glass_grants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_ref', sa.String(length=16), nullable=False),
    sa.Column('centre', sa.String(length=8), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('user_centre', sa.String(length=8), nullable=True),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reviewed_by', sa.String(length=64), nullable=True),
    sa.Column('review_comment', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_break_glass_grants'))
    )
    op.create_index('ix_break_glass_grants_lookup', 'break_glass_grants', ['username', 'call_ref', 'expires_at'],
                    unique=False)
    op.create_index('ix_break_glass_grants_review', 'break_glass_grants', ['centre', 'reviewed_at'], unique=False)

    if postgres:
        op.execute(REFUSE_CHANGE)
        op.execute(HEAD_FORWARD_ONLY)
        for table in CHAINED:
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION ipoa_refuse_change()")
            op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION ipoa_refuse_change()")
        op.execute("CREATE TRIGGER audit_chain_heads_forward_only BEFORE UPDATE OR DELETE ON audit_chain_heads "
                   "FOR EACH ROW EXECUTE FUNCTION ipoa_chain_head_forward_only()")
        op.execute("CREATE TRIGGER audit_chain_heads_no_truncate BEFORE TRUNCATE ON audit_chain_heads "
                   "FOR EACH STATEMENT EXECUTE FUNCTION ipoa_refuse_change()")


def downgrade() -> None:
    # The append-only history cannot be un-chained by a downgrade without deleting what it protects; a
    # downgrade is refused rather than silently dropping the access and security logs.
    raise RuntimeError("0007 (information governance) cannot be downgraded: it would destroy the audit "
                       "trail's access and security logs")
