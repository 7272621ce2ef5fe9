"""The transactional outbox, `outbox`: claiming committed events to handle, recording failures, finding
those left behind (service/outbox.py). Events are added by the unit of work with the change they record."""
from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import String, any_, bindparam, select, true, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from .orm import outbox
from .prepared import Prepared


class ClaimedEvent(NamedTuple):
    id: str
    topic: str
    payload: dict[str, Any]


# "Not yet handled", written so that no index on processed_at can serve it: the claim finds its events by
# their ids (the primary key). Plainly written, PostgreSQL's planner took ix_outbox_unprocessed, thought
# to hold few rows, and read every unhandled event to claim a batch of them: 8 ms for 200 of 12,000
# waiting, against 3.6 ms by the key (docs/performance.md, texts' fourth step). Same result: IS NULL is
# never NULL.
_UNHANDLED = outbox.c.processed_at.is_(None).is_(true())

# The claim on PostgreSQL: the batch's ids as one array (`id = ANY(...)`), so that the statement is the same
# whatever their number, compiled once and run on the DB-API cursor (adapters/prepared.py). An expanding IN
# of up to 200 ids was rendered again by SQLAlchemy at every batch, and parsed again by psycopg (which
# keeps the parsed form of statements of at most 50 parameters only): much of the claim's 13% of the
# relay's CPU (docs/performance.md, texts' fifth step). SQLite keeps the IN.
_CLAIM_ANY = Prepared(
    update(outbox).where(outbox.c.id == any_(bindparam("claim_ids", type_=postgresql.ARRAY(String))), _UNHANDLED)
    .values(processed_at=bindparam("claim_now", type_=outbox.c.processed_at.type), attempts=outbox.c.attempts + 1)
    .returning(outbox.c.id, outbox.c.topic, outbox.c.payload)
)


class OutboxStore:
    def __init__(self, session: Session):
        self.session = session

    def claim(self, ids: list[str], now: datetime) -> list[ClaimedEvent]:
        """Mark the unhandled events among ids handled now (one UPDATE ... RETURNING: two relays never both
        claim one), counting the attempt; the events claimed, in no particular order."""
        if self.session.get_bind().dialect.name == "postgresql":
            return [ClaimedEvent(*r) for r in _CLAIM_ANY.rows(self.session.connection(),
                                                               {"claim_ids": list(ids), "claim_now": now})]
        return [ClaimedEvent(*r) for r in self.session.execute(
            update(outbox).where(outbox.c.id.in_(ids), _UNHANDLED)
            .values(processed_at=now, attempts=outbox.c.attempts + 1)
            .returning(outbox.c.id, outbox.c.topic, outbox.c.payload)).all()]

    def record_failure(self, message_id: str, error: str) -> None:
        self.session.execute(update(outbox).where(outbox.c.id == message_id)
                             .values(attempts=outbox.c.attempts + 1, last_error=error))

    def unhandled(self, created_by: datetime, max_attempts: int, limit: int) -> list[str]:
        """Ids of events committed by `created_by`, not yet handled nor tried max_attempts times; oldest first."""
        return list(self.session.scalars(
            select(outbox.c.id).where(outbox.c.processed_at.is_(None), outbox.c.created_at <= created_by,
                                      outbox.c.attempts < max_attempts)
            .order_by(outbox.c.created_at).limit(limit)))
