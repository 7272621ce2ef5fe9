"""Read-side queries for screens and figures: plain SQL over indexed columns, no entity loading."""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from ..domain.model import URGENCY_RANK, Call
from .orm import calls, referrals


def _age(now: datetime, oldest: datetime | None) -> int | None:
    if oldest is None:
        return None
    if oldest.tzinfo is None:  # SQLite aggregates bypass the column type
        oldest = oldest.replace(tzinfo=UTC)
    return max(0, int((now - oldest).total_seconds()))


def _parse(value):
    if isinstance(value, str):  # SQLite returns min() of a datetime column as text
        return datetime.fromisoformat(value)
    return value


def counts_by(session: Session, table, group_col, time_col, open_states: set[str],
              waiting_states: set[str], now: datetime) -> dict[str, dict]:
    """group -> {counts: {state: n}, total, oldest_wait_seconds} for records in open states."""
    rows = session.execute(
        select(group_col, table.c.state, func.count(), func.min(time_col))
        .where(table.c.state.in_(sorted(open_states)))
        .group_by(group_col, table.c.state)
    ).all()
    out: dict[str, dict] = {}
    for group, state, n, oldest in rows:
        entry = out.setdefault(group, {"counts": {}, "total": 0, "oldest_wait_seconds": None})
        entry["counts"][state] = n
        entry["total"] += n
        if state in waiting_states:
            age = _age(now, _parse(oldest))
            if age is not None and (entry["oldest_wait_seconds"] is None or age > entry["oldest_wait_seconds"]):
                entry["oldest_wait_seconds"] = age
    return out


def workflow_state_counts(session: Session, workflow: str, version: int) -> dict[str, int]:
    """Records per state on one workflow version: calls and referrals each carry their workflow, so
    whichever table runs it answers."""
    out: dict[str, int] = {}
    for table in (calls, referrals):
        for state, n in session.execute(
                select(table.c.state, func.count())
                .where(table.c.workflow == workflow, table.c.workflow_version == version)
                .group_by(table.c.state)).all():
            out[state] = out.get(state, 0) + n
    return out


def centre_queue(session: Session, centre: str, open_states: set[str], limit: int = 200) -> list[Call]:
    """A centre's open calls, most urgent first, then longest waiting."""
    rank = case(URGENCY_RANK, value=calls.c.urgency, else_=9)
    stmt = (select(Call).where(calls.c.centre == centre, calls.c.state.in_(sorted(open_states)))
            .order_by(rank, calls.c.queued_at).limit(limit))
    return list(session.scalars(stmt))
