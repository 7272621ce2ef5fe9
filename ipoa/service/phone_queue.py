"""The phone queues as people see them (issue 15; the queue page and screen pop read this): a centre's
waiting callers in the order they will be answered, with their place, how long they have waited, the
caller's number masked, how many open calls the number has and the registered professional it is, if any.
Counts and codes only besides the masked number and that name: the full number stays on the leg until a
handler answers. The entry point checks who may see it."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ..adapters.voice_queue_queries import VoiceQueueQueries

if TYPE_CHECKING:
    from ..bootstrap import Services


@dataclass(frozen=True)
class WaitingCaller:
    position: int
    call_sid: str
    centre: str  # whose number was rung
    queue: str
    number_masked: str
    priority: bool
    caller_type: str | None
    enqueued_at: datetime
    waited: timedelta
    overflowed_from: str | None
    matched_call_ref: str | None
    open_calls: int  # open calls for the caller's number
    professional: str | None = None  # a registered professional ringing from their mobile: "Nia, DN"


def masked(number: str | None) -> str:
    """"+447700900123" -> "07700 ••• •123": enough for a handler to say "the number ending 123", not to dial it."""
    if not number:
        return "withheld"
    national = "0" + number[3:] if number.startswith("+44") else number
    return national[:5] + " ••• •" + national[-3:] if len(national) > 8 else "•" * len(national)


def waiting_callers(svc: Services, queue: str) -> list[WaitingCaller]:
    now = svc.clock.now()
    with svc.uow() as uow:
        queries = VoiceQueueQueries(uow.session)
        rows = queries.waiting(queue)
        numbers = [r.caller_number for r in rows if r.caller_number]
        open_counts = queries.open_calls_by_number(numbers)
        known = queries.professionals_by_number(numbers)
    return [WaitingCaller(position=i, call_sid=r.call_sid, centre=r.centre, queue=r.queue,
                          number_masked=masked(r.caller_number), priority=r.priority, caller_type=r.caller_type,
                          enqueued_at=r.enqueued_at, waited=max(now - r.enqueued_at, timedelta(0)),
                          overflowed_from=r.overflowed_from, matched_call_ref=r.matched_call_ref,
                          open_calls=open_counts.get(r.caller_number or "", 0),
                          professional=", ".join(known[r.caller_number]) if r.caller_number in known else None)
            for i, r in enumerate(rows, start=1)]
