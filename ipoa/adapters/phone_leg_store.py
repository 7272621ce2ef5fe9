"""Phone legs (phone_legs, migration 0013): one row per inbound call Twilio handles, written by
service/phone_calls.py in the webhooks' own units of work; and the open calls a caller's number matches."""
from __future__ import annotations

import functools
import hashlib
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, false, literal, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..domain.telephony.legs import PhoneLeg
from .orm import calls, phone_legs
from .prepared import Prepared
from .results import rowcount

_FIELDS = tuple(f.name for f in fields(PhoneLeg))
# pg_advisory_xact_lock(space, key): this space is the abandoned callers', apart from the intake's duplicate
# check (adapters/repository.py, 0x1A0A).
_CALLER_LOCK_SPACE = 0x1A0C
_LOCK_CALLER = text(f"SELECT pg_advisory_xact_lock({_CALLER_LOCK_SPACE}, :key)")


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

    def new_leg(self, leg: PhoneLeg, now: datetime,
                awaiting_callback: frozenset[str]) -> tuple[Prepared, dict[str, Any]]:
        """new_leg (below) on this store's database."""
        return new_leg(self.session.get_bind().dialect.name, leg, now, awaiting_callback)

    def save(self, leg: PhoneLeg, now: datetime) -> None:
        values = {name: getattr(leg, name) for name in _FIELDS if name != "call_sid"} | {"updated_at": now}
        self.session.execute(update(phone_legs).where(phone_legs.c.call_sid == leg.call_sid).values(**values))

    def one_caller_at_a_time(self, number: str) -> None:
        """Callers from one number (two of their legs hanging up at once) take turns from here to the end of
        the unit of work, so the second sees the callback call the first made (service/abandoned_calls.py)
        instead of making another. On PostgreSQL a transaction-scoped advisory lock, in a statement of its
        own before the read, which READ COMMITTED then runs on a snapshot taken after the first committed;
        the key is a hash of the number, not the number (locks show in pg_locks). SQLite needs none: every
        writing unit of work holds the single writer's lock (adapters/repository.lock_and_find_open)."""
        if self.session.get_bind().dialect.name == "postgresql":
            key = int.from_bytes(hashlib.sha256(number.encode()).digest()[:4], "big", signed=True)
            self.session.execute(_LOCK_CALLER, {"key": key})

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


def new_leg(dialect: str, leg: PhoneLeg, now: datetime,
            awaiting_callback: frozenset[str]) -> tuple[Prepared, dict[str, Any]]:
    """The statement recording a new leg, for the unit of work to send at commit (UnitOfWork.at_commit):
    its rows are the leg's id, or none if a leg with its CallSid is there already (Twilio retried the
    webhook; nothing is written). The caller is matched in the statement itself (matched_call_ref): the
    latest of their open calls in a state awaiting a callback (`awaiting_callback`), else the latest
    (as `open_calls_for` orders them). One statement instead of a read and an insert; with BEGIN and
    COMMIT, one round trip on PostgreSQL (docs/performance.md, "Voice"). `dialect`: the database's
    ("postgresql", "sqlite")."""
    params = {f"b_{name}": getattr(leg, name) for name in _FIELDS if name != "matched_call_ref"}
    params["b_updated_at"] = now
    return _new_leg(dialect, tuple(sorted(awaiting_callback))), params


@functools.lru_cache(maxsize=16)
def _new_leg(dialect: str, awaiting_callback: tuple[str, ...]) -> Prepared:
    """Built and prepared once per dialect and set of states awaiting a callback (they change only when a new
    version of the call workflow is deployed). The states are literals of the statement, not an expanding
    list (a prepared statement's SQL is fixed)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    caller = bindparam("b_caller_number", type_=phone_legs.c.caller_number.type)
    awaiting = or_(*(calls.c.state == literal(state) for state in awaiting_callback)) if awaiting_callback \
        else false()
    match = (select(calls.c.ref).where(calls.c.caller_phone == caller, calls.c.closed_at.is_(None))
             .order_by(case((awaiting, literal(0)), else_=literal(1)), calls.c.logged_at.desc())
             .limit(1).scalar_subquery())
    values: dict[str, Any] = {name: bindparam(f"b_{name}", type_=phone_legs.c[name].type)
                              for name in _FIELDS if name != "matched_call_ref"}
    values["matched_call_ref"] = match
    values["updated_at"] = bindparam("b_updated_at", type_=phone_legs.c.updated_at.type)
    return Prepared(insert(phone_legs).values(values).on_conflict_do_nothing().returning(phone_legs.c.id))
