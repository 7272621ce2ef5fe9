"""Phone legs (phone_legs, migration 0013): one row per inbound call Twilio handles, written by
service/phone_calls.py in the webhooks' own units of work; and the open calls a caller's number matches."""
from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..domain.telephony.legs import PhoneLeg
from .orm import calls, phone_legs
from .results import rowcount
from .upsert import insert_one_ignoring_conflict

_FIELDS = tuple(f.name for f in fields(PhoneLeg))


def _leg(row: Any) -> PhoneLeg:
    return PhoneLeg(**{name: getattr(row, name) for name in _FIELDS})


class PhoneLegStore:
    def __init__(self, session: Session):
        self.session = session

    def get(self, call_sid: str, *, lock: bool = False) -> PhoneLeg | None:
        """The leg; lock: held until commit (PostgreSQL; SQLite's writers already wait for each other), so
        that two of Twilio's callbacks for one call (the enqueue's action and the status callback often
        come together) take turns, and the second sees what the first did."""
        stmt = select(*(phone_legs.c[name] for name in _FIELDS)).where(phone_legs.c.call_sid == call_sid)
        row = self.session.execute(stmt.with_for_update() if lock else stmt).first()
        return _leg(row) if row is not None else None

    def add(self, leg: PhoneLeg, now: datetime) -> bool:
        """Records a new leg; False if one with its CallSid is there already (Twilio retried the webhook). One
        statement: the CallSid's unique key decides (a retry racing the first attempt waits for it on
        PostgreSQL, then finds it there)."""
        values = {name: getattr(leg, name) for name in _FIELDS} | {"updated_at": now}
        return insert_one_ignoring_conflict(self.session, phone_legs, values)

    def save(self, leg: PhoneLeg, now: datetime) -> None:
        values = {name: getattr(leg, name) for name in _FIELDS if name != "call_sid"} | {"updated_at": now}
        self.session.execute(update(phone_legs).where(phone_legs.c.call_sid == leg.call_sid).values(**values))

    def open_calls_for(self, number: str, limit: int = 10) -> list[Any]:
        """The open calls (not closed nor cancelled: no closed_at) whose caller rang from this number, the
        most recent first: (ref, centre, state, logged_at)."""
        return list(self.session.execute(
            select(calls.c.ref, calls.c.centre, calls.c.state, calls.c.logged_at)
            .where(calls.c.caller_phone == number, calls.c.closed_at.is_(None))
            .order_by(calls.c.logged_at.desc()).limit(limit)))

    def forget_numbers_before(self, cutoff: datetime) -> int:
        """Retention (service/retention.py): the caller's number removed from the legs that rang before the
        cutoff. How many were."""
        return rowcount(self.session.execute(update(phone_legs).where(
            phone_legs.c.arrived_at < cutoff, phone_legs.c.caller_number.is_not(None)).values(caller_number=None)))
