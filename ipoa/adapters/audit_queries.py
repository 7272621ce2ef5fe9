"""Reading the chained tables back for verification, and the record of verification runs,
`audit_verifications` (service/audit.py; docs/security.md). Appending to the chains is
adapters/audit_store.py's."""
from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from ..domain.audit_chain import Head
from .audit_store import TABLES, content
from .orm import audit_chain_heads as heads
from .orm import audit_verifications as runs
from .results import inserted_int_id


class RunRow(NamedTuple):
    id: int
    started_at: datetime
    finished_at: datetime | None
    by: str
    ok: bool | None
    events: int | None
    problem: str | None


class Unreadable(NamedTuple):
    """An event whose stored values cannot be read back, changed outside the application (SQLite keeps
    any value in any column: text in a time column, JSON that does not parse): its number."""

    seq: int


# What reading a row back raises when a stored value is not what its column's type reads.
_UNREADABLE = (ValueError, TypeError, OverflowError)


def _run_row(r: Any) -> RunRow:
    return RunRow(r.id, r.started_at, r.finished_at, r.by, r.ok, r.events, r.problem)


class AuditTrailQueries:
    def __init__(self, session: Session):
        self.session = session

    # -- the chains ------------------------------------------------------------------------------------

    def head(self, chain: str) -> Head | None:
        row = self.session.execute(select(heads.c.seq, heads.c.hash).where(heads.c.chain == chain)).first()
        return Head(row.seq, row.hash) if row is not None else None

    def page(self, chain: str, after: int | None, upto: int | None,
             limit: int) -> list[tuple[int, str, dict[str, Any]] | Unreadable]:
        """Up to `limit` events of the chain in seq order, numbered above `after` and at most `upto` (None:
        no bound): (seq, hash, the content the hash covers). An event that cannot be read back ends the
        page as Unreadable(seq), after the events before it: a break at that event, not a failure of the
        verification (docs/audit-and-retention.md, "What the check detects")."""
        table = TABLES[chain]
        bounds = []
        if after is not None:
            bounds.append(table.c.seq > after)
        if upto is not None:
            bounds.append(table.c.seq <= upto)
        try:
            return [(r.seq, r.hash, content(chain, r))
                    for r in self.session.execute(select(table).where(*bounds).order_by(table.c.seq)
                                                  .limit(limit)).all()]
        except _UNREADABLE:
            pass
        # Row by row, to find the first that cannot be read (the numbers alone can be).
        out: list[tuple[int, str, dict[str, Any]] | Unreadable] = []
        for seq in self.session.execute(select(table.c.seq).where(*bounds).order_by(table.c.seq)
                                        .limit(limit)).scalars():
            try:
                r = self.session.execute(select(table).where(table.c.seq == seq)).one()
                out.append((r.seq, r.hash, content(chain, r)))
            except _UNREADABLE:
                out.append(Unreadable(seq))
                break
        return out

    def top_seq(self, chain: str) -> int | None:
        return self.session.execute(select(func.max(TABLES[chain].c.seq))).scalar()

    def first_event_at(self, chain: str) -> Any:
        """When the chain's first event happened (None: it has none), found by its key: no scan of a large
        table."""
        table = TABLES[chain]
        return self.session.execute(select(table.c.at).order_by(table.c.seq).limit(1)).scalar()

    # -- verification runs -----------------------------------------------------------------------------

    def start_run(self, started_at: datetime, by: str) -> int:
        return inserted_int_id(self.session.execute(insert(runs).values(started_at=started_at, by=by)))

    def finish_run(self, run_id: int, *, finished_at: datetime, ok: bool | None, events: int | None,
                   problem: str | None) -> None:
        self.session.execute(update(runs).where(runs.c.id == run_id).values(
            finished_at=finished_at, ok=ok, events=events, problem=problem))

    def runs_since(self, since: datetime) -> list[RunRow]:
        """Runs started since then, oldest first."""
        return [_run_row(r) for r in
                self.session.execute(select(runs).where(runs.c.started_at >= since).order_by(runs.c.id)).all()]

    def latest_completed_run(self) -> RunRow | None:
        """The latest run that finished and said whether the trail is intact."""
        r = self.session.execute(select(runs).where(runs.c.finished_at.is_not(None), runs.c.ok.is_not(None))
                                 .order_by(runs.c.id.desc()).limit(1)).first()
        return _run_row(r) if r is not None else None

    def last_success(self) -> Any:
        """When the latest successful run finished (an aggregate: SQLite hands back text, and no zone)."""
        return self.session.execute(select(func.max(runs.c.finished_at)).where(runs.c.ok.is_(True))).scalar()

    def most_events_verified(self) -> tuple[int, datetime] | None:
        """The most events a successful run counted, and when that run started (None: no successful run)."""
        r = self.session.execute(select(runs.c.events, runs.c.started_at)
                                 .where(runs.c.ok.is_(True), runs.c.events.is_not(None))
                                 .order_by(runs.c.events.desc(), runs.c.id.desc()).limit(1)).first()
        return (int(r.events), r.started_at) if r is not None else None

    def any_run(self) -> bool:
        return self.session.execute(select(runs.c.id).limit(1)).first() is not None

    def latest_unfinished_run(self, started_since: datetime) -> RunRow | None:
        r = self.session.execute(select(runs).where(runs.c.finished_at.is_(None),
                                                    runs.c.started_at >= started_since)
                                 .order_by(runs.c.id.desc()).limit(1)).first()
        return _run_row(r) if r is not None else None
