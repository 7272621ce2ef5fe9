"""Hand-overs at shift changes (service/shift_handover.py; docs/domain.md, "Rotas"): the referrals of a
service still awaiting acceptance that were sent before a change, the numbers a referral was already
texted at, and the two tables of migration 0012: handover_resends, whose primary key makes a re-send
happen once whoever runs the job, and handover_checks, how far each service's changes were looked at."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import not_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .orm import calls, handover_checks, handover_resends, referrals, sms_messages
from .state_filters import tagged


class Waiting(NamedTuple):
    """A referral awaiting acceptance, with what its outbox event and text need (codes and references
    only: docs/security.md)."""

    referral_id: str
    service: str
    state: str
    version: int
    sent_at: datetime
    ref: str
    centre: str
    urgency: str
    need: str
    call_version: int


class HandoverStore:
    def __init__(self, session: Session):
        self.session = session

    def _insert(self, table: Any) -> Any:
        dialect = self.session.get_bind().dialect.name
        return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)

    def checked_until(self, service: str) -> datetime | None:
        return self.session.scalar(select(handover_checks.c.checked_until)
                                   .where(handover_checks.c.service == service))

    def advance(self, service: str, until: datetime) -> None:
        """The service's changes up to `until` were looked at; never moved back (a slower racing run)."""
        stmt = self._insert(handover_checks).values(service=service, checked_until=until)
        self.session.execute(stmt.on_conflict_do_update(
            index_elements=["service"], set_={"checked_until": stmt.excluded.checked_until},
            where=handover_checks.c.checked_until < stmt.excluded.checked_until))

    def waiting(self, service: str, before: datetime, not_resent_at: datetime,
                awaiting_by_version: dict[int, frozenset[str]], workflow: str) -> list[Waiting]:
        """The service's referrals in a state its version tags awaiting acceptance, sent before `before`,
        not yet re-sent at the change `not_resent_at`; oldest first (and by id, so two racing runs take
        their rows' locks in one order)."""
        r, c, h = referrals.c, calls.c, handover_resends.c
        resent = select(h.referral_id).where(h.referral_id == r.id, h.handover_at == not_resent_at).exists()
        rows = self.session.execute(
            select(r.id, r.service, r.state, r.version, r.sent_at, c.ref, c.centre, c.urgency, c.need, c.version)
            .join(calls, calls.c.id == r.call_id)
            .where(r.service == service, r.workflow == workflow, r.sent_at < before,
                   tagged(r.state, r.workflow_version, awaiting_by_version), not_(resent))
            .order_by(r.sent_at, r.id))
        return [Waiting._make(row) for row in rows]

    def texted(self, referral_ids: Iterable[str]) -> dict[str, set[str]]:
        """Per referral, the numbers any text about it went (or is to go) to."""
        wanted = sorted(set(referral_ids))
        found: dict[str, set[str]] = {rid: set() for rid in wanted}
        if not wanted:
            return found
        m = sms_messages.c
        for rid, to in self.session.execute(select(m.referral_id, m.to).where(m.referral_id.in_(wanted))):
            found[rid].add(to)
        return found

    def claim(self, referral_id: str, handover_at: datetime, service: str, now: datetime) -> bool:
        """The referral's re-send at this change, recorded; False when another run recorded it first
        (on PostgreSQL this waits for that run's transaction, then does nothing)."""
        stmt = self._insert(handover_resends).values(referral_id=referral_id, handover_at=handover_at,
                                                     service=service, created_at=now)
        # RETURNING rather than the row count, which a driver need not give for ON CONFLICT DO NOTHING.
        return self.session.execute(stmt.on_conflict_do_nothing(index_elements=["referral_id", "handover_at"])
                                    .returning(handover_resends.c.referral_id)).first() is not None

    def resent(self, referral_id: str) -> list[datetime]:
        """The changes a referral was re-sent at, in order."""
        h = handover_resends.c
        return list(self.session.scalars(select(h.handover_at).where(h.referral_id == referral_id)
                                         .order_by(h.handover_at)))


__all__ = ["HandoverStore", "Waiting"]
