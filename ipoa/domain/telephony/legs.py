"""A phone leg: one inbound call as Twilio handles it (its CallSid), from ringing to hanging up, and what
its end means. A caller who hangs up while queued after more than the threshold (sla.yaml `abandoned_call`,
5 s by default) abandoned the call: counted as abandoned (docs/domain.md, "Telephony measures") and called
back (service/phone_calls.py). Shorter waits are not counted."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

# Outcomes (phone_legs.outcome): how the leg ended, or for a leg still live, nothing.
ANSWERED = "answered"           # bridged to a handler
ABANDONED = "abandoned"         # hung up in the queue after more than the threshold: a callback is made
SHORT_ABANDON = "short_abandon"  # hung up in the queue within the threshold: not counted
QUEUE_FAILED = "queue_failed"   # Twilio could not hold the call (queue full, an error): called back
HUNG_UP_BEFORE_QUEUE = "hung_up_before_queue"  # during the greeting or the menu
OUT_OF_HOURS = "out_of_hours"   # put through to the out-of-hours centre, or told 999 and 111
OVERFLOW_DIAL = "overflow_dial"  # put through to the overflow centre's number
LEFT = "left"                   # left the queue some other way (redirected elsewhere, not by us)
OUTCOMES = (ANSWERED, ABANDONED, SHORT_ABANDON, QUEUE_FAILED, HUNG_UP_BEFORE_QUEUE, OUT_OF_HOURS,
            OVERFLOW_DIAL, LEFT)

# Twilio's CallStatus values, ranked: a late or repeated callback never moves a leg back
# (docs/stack-notes.md, "twilio": callbacks arrive out of order).
STATUS_RANK = {"queued": 0, "initiated": 0, "ringing": 1, "in-progress": 2,
               "completed": 3, "busy": 3, "failed": 3, "no-answer": 3, "canceled": 3}
FINAL_STATUSES = frozenset(s for s, rank in STATUS_RANK.items() if rank == 3)

# The Enqueue action's QueueResult values (Twilio).
BRIDGED = "bridged"
HANGUP = "hangup"
LEAVE = "leave"
REDIRECTED = "redirected"
QUEUE_RESULTS = frozenset({"bridged", "bridging-in-process", "queue-full", "hangup", "leave", "redirected",
                           "redirected-from-bridged", "error", "system-error"})
QUEUE_FAILURES = frozenset({"queue-full", "error", "system-error"})

# The DialCallStatus values of the <Dial> Answer puts a caller through with (Twilio requests the Dial's action
# when it ends): the handler was reached, or not (the caller then waits again).
DIAL_REACHED = frozenset({"completed", "answered"})
DIAL_STATUSES = DIAL_REACHED | {"busy", "no-answer", "failed", "canceled"}
# A leg's dial_status when its dial result never came (service/lost_calls.py): Twilio's record of the calls the
# <Dial> made said nobody was reached, or it could not say (the console gateway, or Twilio past asking).
DIAL_NOT_REACHED = "not-reached"
DIAL_UNKNOWN = "unknown"


@dataclass
class PhoneLeg:
    call_sid: str
    centre: str                      # whose number was rung
    arrived_at: datetime
    caller_number: str | None        # E.164 UK number; None when withheld or not a UK number
    queue: str | None = None         # the centre whose queue it is (or was) in
    priority: bool = False           # a professional (menu 1): answered before the public
    caller_type: str | None = None   # professional | public, from the menu
    # When the caller first joined a queue: their wait, and their place in line, count from it, across an
    # overflow into another centre's queue (docs/telephony.md, "Configuring a centre's line").
    enqueued_at: datetime | None = None
    # When they joined the queue they are in now (`queue`): enqueued_at's instant, or the overflow into this
    # queue; kept when put back in the same queue after a failed Answer. The queue's longest wait, behind the
    # overflow decision, is read from it (adapters/voice_queue_queries.py), so that a caller moved here after a
    # long wait elsewhere does not make this queue look as if it had been waited in that long.
    queue_joined_at: datetime | None = None
    answered_at: datetime | None = None
    answered_by: str | None = None
    left_queue_at: datetime | None = None
    hung_up_at: datetime | None = None
    outcome: str | None = None
    overflowed_from: str | None = None
    matched_call_ref: str | None = None  # an open call for the caller's number when it rang
    call_ref: str | None = None      # the call made (or matched) for the callback it needs, or logged from it
    last_status: str | None = None
    menu_attempt: int = 0
    # The DialCallStatus of the <Dial> Answer put the caller through with (the dial result's webhook); None
    # until it comes. An answered leg whose dial result never came is asked about (service/lost_calls.py).
    dial_status: str | None = None

    @property
    def in_queue(self) -> bool:
        return (self.enqueued_at is not None and self.left_queue_at is None and self.hung_up_at is None
                and self.answered_at is None)

    @property
    def held_by_answer(self) -> bool:
        """Marked answered by Answer (service/phone_calls.bridge) but not yet out of the queue by Twilio's
        record: its REST redirect to the handler is on its way, or failed and is being undone. The caller is
        still in Twilio's queue until then."""
        return self.answered_at is not None and self.left_queue_at is None and self.hung_up_at is None

    def waited(self, now: datetime) -> timedelta:
        """How long the caller has been (or was) in the queue."""
        if self.enqueued_at is None:
            return timedelta(0)
        end = self.left_queue_at or self.answered_at or self.hung_up_at or now
        return max(end - self.enqueued_at, timedelta(0))


_ONE_SECOND = timedelta(seconds=1)
_HALF_SECOND = timedelta(milliseconds=500)


def twilio_dated(reading: datetime, now: datetime) -> datetime:
    """When something happened that Twilio counts in whole seconds, rounded down (the enqueue's QueueTime,
    a status callback's CallDuration or Timestamp): at `reading` or within the second after it. ipoa's own
    `now` where it is no later than the end of that second (the callback came on time: its own reading is
    the finer one, so a caller who hung up after 5.5 s, QueueTime 5, waited more than 5 s); otherwise (a
    retry, a slow network) the middle of that second, so that a whole-second threshold classifies it right.
    Safe for any datetime: a reading in the calendar's last second (datetime.max) is after now."""
    try:
        on_time = now <= reading + _ONE_SECOND
    except OverflowError:
        return now
    return now if on_time else reading + _HALF_SECOND


def end_in_queue(waited: timedelta, threshold: timedelta) -> str:
    """A hang-up while queued: abandoned after more than the threshold, else not counted."""
    return ABANDONED if waited > threshold else SHORT_ABANDON


def status_moves_on(current: str | None, new: str) -> bool:
    """Whether a status callback's CallStatus is news: a higher rank than the last one recorded."""
    return STATUS_RANK.get(new, -1) > STATUS_RANK.get(current or "", -1)
