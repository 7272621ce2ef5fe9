"""Read model of the phone queues (phone_legs, handler_availability): who waits in a centre's queue, in the
order they are answered (professionals first, then by when they first joined a queue), how long the longest
has waited in this queue (an overflowed caller since they came in: queue_joined_at),
the queue's recent average wait of answered calls, how many of a centre's handlers are taking calls, and
the answers whose dial result never came (service/lost_calls.py).
The later queue page and screen pop read it through service/phone_queue.py."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import Connection, String, bindparam, case, func, literal, literal_column, or_, select
from sqlalchemy.orm import Session

from ..domain.telephony import legs
from .orm import UTCDateTime, calls, handler_availability, phone_legs, professionals, users
from .prepared import Prepared

CALL_TAKING_ROLES = ("handler", "supervisor")


class UnheardDial(NamedTuple):
    """An answer whose dial result never came (service/lost_calls.py)."""
    call_sid: str
    answered_by: str
    answered_at: datetime
    hung_up_at: datetime | None


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


class QueueNow(NamedTuple):
    """One queue's state for the answer to a ringing call: when its longest-waiting caller joined it (None:
    nobody waits; an overflowed caller joined it when they overflowed in), and how many of its centre's
    handlers are taking calls and signed in."""

    longest_waiting_since: datetime | None
    handlers_available: int


def _longest_waiting_since(queue):
    # The first of the waiting callers in ix_phone_legs_waiting's order, not min(): PostgreSQL planned min()
    # as an aggregate over every caller waiting (and each one's heap row), however deep the queue; the first
    # entry is one read (docs/performance.md, "The ratio and the workers' connections").
    # By when each joined *this* queue (queue_joined_at), not enqueued_at: a caller who overflowed in after a
    # long wait in another centre's queue has waited here only since then, and the overflow decision measures
    # this queue's wait (docs/telephony.md, "Configuring a centre's line"). IS NOT NULL: SQLite sorts NULLs
    # first, and a row written without it (none is, since migration 0019) must not hide the others.
    return (select(phone_legs.c.queue_joined_at)
            .where(phone_legs.c.queue == queue, phone_legs.c.enqueued_at.is_not(None),
                   phone_legs.c.left_queue_at.is_(None), phone_legs.c.hung_up_at.is_(None),
                   phone_legs.c.answered_at.is_(None), phone_legs.c.queue_joined_at.is_not(None))
            .order_by(phone_legs.c.queue_joined_at).limit(literal_column("1")).scalar_subquery())


def _handlers_available(centre, seen_since):
    return (select(func.count()).select_from(users.join(handler_availability,
                                                        handler_availability.c.user_id == users.c.id))
            .where(users.c.centre == centre, users.c.active.is_(True),
                   users.c.role.in_([literal(role) for role in CALL_TAKING_ROLES]),  # (not expanding: prepared)
                   handler_availability.c.taking_calls.is_(True), users.c.last_seen_at >= seen_since)
            .scalar_subquery())


def _queues_now() -> Prepared:
    """Both queues an incoming call may need (the centre's and its overflow's) in one statement of four
    scalar subqueries, prepared once (adapters/prepared.py): one round trip, or none of its own as a
    transaction's first statement (sent with its BEGIN). Each subquery is the same read as
    longest_waiting_since's and handlers_available's for one queue."""
    seen = bindparam("b_seen_since", type_=UTCDateTime())
    first, second = bindparam("b_first", type_=String()), bindparam("b_second", type_=String())
    return Prepared(select(_longest_waiting_since(first).label("first_since"),
                           _handlers_available(first, seen).label("first_available"),
                           _longest_waiting_since(second).label("second_since"),
                           _handlers_available(second, seen).label("second_available")))


_QUEUES_NOW = _queues_now()


def queues_now(connection: Connection, first: str, second: str | None,
               seen_since: datetime) -> dict[str, QueueNow]:
    """The state of one queue, or two (a centre's and its overflow centre's), for the answer to a ringing
    call (service/phone_calls.queue_states): one statement (docs/performance.md, "Voice"), on the unit of
    work's connection."""
    # A plain read: before the transaction's write, on its own (adapters/prepared.rows_before_transaction).
    (row,) = _QUEUES_NOW.rows_before_transaction(connection, {
        "b_first": first, "b_second": second or first, "b_seen_since": seen_since})  # (always one row)
    out = {first: QueueNow(row[0], int(row[1]))}
    if second is not None:
        out[second] = QueueNow(row[2], int(row[3]))
    return out


class VoiceQueueQueries:
    def __init__(self, session: Session):
        self.session = session

    def queues_now(self, first: str, second: str | None, seen_since: datetime) -> dict[str, QueueNow]:
        """queues_now (below) on this session's connection."""
        return queues_now(self.session.connection(), first, second, seen_since)

    def handlers_available(self, centre: str, seen_since: datetime) -> int:
        """How many of the centre's handlers are taking calls and signed in (seen since then): the same count
        as queues_now's, on its own, for the wait URL of a line that overflows when nobody is available."""
        return int(self.session.execute(select(_handlers_available(centre, seen_since))).scalar_one())

    def waiting(self, queue: str, limit: int = 500) -> list[WaitingLeg]:
        """The callers waiting in the queue, first to be answered first: position is index + 1."""
        rows = self.session.execute(
            select(phone_legs.c.call_sid, phone_legs.c.centre, phone_legs.c.queue, phone_legs.c.caller_number,
                   phone_legs.c.caller_type, phone_legs.c.priority, phone_legs.c.enqueued_at,
                   phone_legs.c.overflowed_from, phone_legs.c.matched_call_ref)
            .where(*_waiting([queue]))
            .order_by(phone_legs.c.priority.desc(), phone_legs.c.enqueued_at, phone_legs.c.id).limit(limit))
        return [WaitingLeg(*row) for row in rows]

    def waiting_since_before(self, cutoff: datetime, limit: int = 50) -> list[tuple[str, datetime]]:
        """(call SID, when queued) of the callers in any queue who have waited since before `cutoff`, longest
        first: those service/lost_calls.py asks Twilio about (ix_phone_legs_waiting holds only the waiting)."""
        rows = self.session.execute(
            select(phone_legs.c.call_sid, phone_legs.c.enqueued_at)
            .where(phone_legs.c.queue.is_not(None), phone_legs.c.enqueued_at.is_not(None),
                   phone_legs.c.left_queue_at.is_(None), phone_legs.c.hung_up_at.is_(None),
                   phone_legs.c.answered_at.is_(None), phone_legs.c.enqueued_at <= cutoff)
            .order_by(phone_legs.c.enqueued_at).limit(limit))
        return [(str(sid), enqueued_at) for sid, enqueued_at in rows]

    def answered_without_dial_result(self, hung_up_before: datetime, answered_before: datetime,
                                     limit: int = 50) -> list[UnheardDial]:
        """The callers Answer put through (answered_by) whose dial result never came (dial_status NULL), and who
        either hung up before `hung_up_before` or were answered before `answered_before`: those
        service/lost_calls.py asks Twilio about, the hung-up first, then the oldest answer first. A
        <Dial><Queue> answer (no Dial action, no answered_by) is not one of them."""
        rows = self.session.execute(
            select(phone_legs.c.call_sid, phone_legs.c.answered_by, phone_legs.c.answered_at,
                   phone_legs.c.hung_up_at)
            .where(phone_legs.c.outcome == literal(legs.ANSWERED), phone_legs.c.answered_by.is_not(None),
                   phone_legs.c.dial_status.is_(None),
                   or_(phone_legs.c.hung_up_at <= hung_up_before, phone_legs.c.answered_at <= answered_before))
            .order_by(case((phone_legs.c.hung_up_at.is_(None), literal(1)), else_=literal(0)),
                      phone_legs.c.answered_at)
            .limit(limit))
        return [UnheardDial(*row) for row in rows]

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
