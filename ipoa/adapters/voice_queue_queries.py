"""Read model of the phone queues (phone_legs, handler_availability): who waits in a centre's queue, in the
order they are answered (professionals first, then by when they joined), how long the longest has waited,
the queue's recent average wait of answered calls, and how many of a centre's handlers are taking calls.
The later queue page and screen pop read it through service/phone_queue.py."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .orm import calls, handler_availability, phone_legs, professionals, users

CALL_TAKING_ROLES = ("handler", "supervisor")


class WaitingLeg(NamedTuple):
    call_sid: str
    centre: str  # whose number was rung
    queue: str
    caller_number: str | None
    caller_type: str | None
    priority: bool
    enqueued_at: datetime
    overflowed_from: str | None
    matched_call_ref: str | None


def _waiting(queues: Iterable[str]):
    return (phone_legs.c.queue.in_(sorted(set(queues))), phone_legs.c.enqueued_at.is_not(None),
            phone_legs.c.left_queue_at.is_(None), phone_legs.c.hung_up_at.is_(None),
            phone_legs.c.answered_at.is_(None))


class VoiceQueueQueries:
    def __init__(self, session: Session):
        self.session = session

    def waiting(self, queue: str, limit: int = 500) -> list[WaitingLeg]:
        """The callers waiting in the queue, first to be answered first: position is index + 1."""
        rows = self.session.execute(
            select(phone_legs.c.call_sid, phone_legs.c.centre, phone_legs.c.queue, phone_legs.c.caller_number,
                   phone_legs.c.caller_type, phone_legs.c.priority, phone_legs.c.enqueued_at,
                   phone_legs.c.overflowed_from, phone_legs.c.matched_call_ref)
            .where(*_waiting([queue]))
            .order_by(phone_legs.c.priority.desc(), phone_legs.c.enqueued_at, phone_legs.c.id).limit(limit))
        return [WaitingLeg(*row) for row in rows]

    def longest_waiting_since(self, queues: Iterable[str]) -> dict[str, datetime]:
        """Per queue with anyone waiting, when its longest-waiting caller joined."""
        rows = self.session.execute(select(phone_legs.c.queue, func.min(phone_legs.c.enqueued_at))
                                    .where(*_waiting(queues)).group_by(phone_legs.c.queue))
        return {str(queue): at for queue, at in rows if at is not None}

    def average_answer_wait(self, queue: str, since: datetime, limit: int = 200) -> timedelta | None:
        """The mean wait of the calls answered from this queue since then (the latest `limit`), or None."""
        rows = self.session.execute(
            select(phone_legs.c.enqueued_at, phone_legs.c.answered_at)
            .where(phone_legs.c.queue == queue, phone_legs.c.answered_at >= since,
                   phone_legs.c.enqueued_at.is_not(None))
            .order_by(phone_legs.c.answered_at.desc()).limit(limit)).all()
        if not rows:
            return None
        return sum((answered - enqueued for enqueued, answered in rows), timedelta(0)) / len(rows)

    def handlers_available(self, centres: Iterable[str], seen_since: datetime) -> dict[str, int]:
        """Per centre, its active handlers and supervisors taking calls and signed in (seen since then)."""
        rows = self.session.execute(
            select(users.c.centre, func.count())
            .join(handler_availability, handler_availability.c.user_id == users.c.id)
            .where(users.c.centre.in_(sorted(set(centres))), users.c.active.is_(True),
                   users.c.role.in_(CALL_TAKING_ROLES), handler_availability.c.taking_calls.is_(True),
                   users.c.last_seen_at >= seen_since)
            .group_by(users.c.centre))
        return {str(centre): int(count) for centre, count in rows if centre}

    def open_calls_by_number(self, numbers: Iterable[str]) -> dict[str, int]:
        """How many open calls each of these numbers has (screen pop: "2 open calls for this number")."""
        wanted = sorted({n for n in numbers if n})
        if not wanted:
            return {}
        rows = self.session.execute(select(calls.c.caller_phone, func.count())
                                    .where(calls.c.caller_phone.in_(wanted), calls.c.closed_at.is_(None))
                                    .group_by(calls.c.caller_phone))
        return {str(number): int(count) for number, count in rows}

    def professionals_by_number(self, numbers: Iterable[str]) -> dict[str, tuple[str, str]]:
        """The active registered professionals ringing from these numbers: number -> (name, service code)
        (screen pop: "Nia, district nurse")."""
        return professionals_by_number(self.session, numbers)


def professionals_by_number(session: Session, numbers: Iterable[str]) -> dict[str, tuple[str, str]]:
    """The active registered professional each number belongs to: number -> (name, service code)."""
    wanted = sorted({n for n in numbers if n})
    if not wanted:
        return {}
    rows = session.execute(select(professionals.c.mobile, professionals.c.name, professionals.c.service)
                           .where(professionals.c.mobile.in_(wanted), professionals.c.active.is_(True)))
    return {str(mobile): (str(name), str(service)) for mobile, name, service in rows}
