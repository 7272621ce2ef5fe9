"""What a ringing call is told and where it goes: a small description of the answer (say this, offer the
menu, queue here, put through to that number, leave the queue, hang up), decided from the centre's line
(centre_voice.py), its calendar, the time and the queues' state. Rendered as TwiML at the edge
(ipoa/web/twiml.py). A caller is never left with silence: every answer that does not queue or put the
caller through ends with the 999 and 111 advice (docs/domain.md, "Telephony measures"; docs/telephony.md)."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from ..directory import Centre, Directory
from .centre_voice import Overflow

LONDON = ZoneInfo("Europe/London")

ADVICE = ("If someone's life is at risk, hang up and call 999 now. "
          "For urgent medical help at any time, call 111.")
MENU_PROMPT = "If you are a health or care professional, press 1. For anything else, press 2."
MENU_RETRY = "Sorry, that was not one of the choices."
MENU_TRIES = 2  # a caller who presses nothing or a wrong key twice is queued as a member of the public
WAIT_PAUSE_SECONDS = 20  # between the announcements of the caller's place in the queue

# What the answer does to the leg (adapters' phone_legs.outcome, or the step the leg is at).
OUT_OF_HOURS = "out_of_hours"
MENU = "menu"
QUEUED = "queued"
OVERFLOW_QUEUE = "overflow_queue"
OVERFLOW_DIAL = "overflow_dial"
NOT_OURS = "not_ours"
WAITING = "waiting"
LEAVING = "leaving"
ENDED = "ended"


@dataclass(frozen=True)
class Say:
    text: str


@dataclass(frozen=True)
class Menu:
    """Gather one digit after saying the prompt; no key pressed comes back as no choice (`attempt` counts)."""

    prompt: str
    attempt: int = 1


@dataclass(frozen=True)
class Enqueue:
    queue: str  # a centre code: one Twilio queue per centre
    # A caller who was queued before (back in the queue after a handler did not pick up, back_in_queue; or moved
    # to the overflow centre's queue, after_leaving): how long after first joining a queue they joined this
    # one, in whole milliseconds. Twilio's QueueTime then counts from this <Enqueue>, so the enqueue's action
    # needs it to date the caller's leaving (service/phone_calls.py _left_at).
    rejoined_ms: int | None = None


@dataclass(frozen=True)
class Dial:
    number: str  # E.164


@dataclass(frozen=True)
class Pause:
    seconds: int


@dataclass(frozen=True)
class Leave:
    """Out of the queue: the enqueue's action then says where the caller goes next (the overflow)."""


@dataclass(frozen=True)
class Hangup:
    pass


Step = Say | Menu | Enqueue | Dial | Pause | Leave | Hangup


@dataclass(frozen=True)
class Answer:
    steps: tuple[Step, ...]
    kind: str  # OUT_OF_HOURS, MENU, QUEUED, ...
    queue: str | None = None  # the centre whose queue the caller enters
    overflowed_from: str | None = None  # the centre the caller overflowed from


@dataclass(frozen=True)
class QueueState:
    """A centre's queue now: how long its longest-waiting caller has waited (None: nobody waits), and how
    many of its handlers are taking calls."""

    longest_wait: timedelta | None
    handlers_available: int


def spoken_time(at: datetime, now: datetime) -> str:
    """"8:30 today", "8:30 tomorrow", "8:30 on Monday": Europe/London, for text-to-speech."""
    local, today = at.astimezone(LONDON), now.astimezone(LONDON).date()
    clock = f"{local.hour}:{local.minute:02d}"
    if local.date() == today:
        return f"{clock} today"
    if local.date() == today + timedelta(days=1):
        return f"{clock} tomorrow"
    return f"{clock} on {local:%A}"


def not_ours() -> Answer:
    """A number no centre's line is configured for (or a call we know nothing of): the advice, not silence."""
    return Answer((Say(f"Sorry, this number cannot take your call. {ADVICE}"), Hangup()), NOT_OURS)


def incoming(centre: Centre, directory: Directory, now: datetime,
             queues: Callable[[], Mapping[str, QueueState]]) -> Answer:
    """The first answer: closed by the calendar, the out-of-hours route; open, the greeting and the menu if
    the line has one, else the queue (or its overflow). `queues` is asked only then, and only when the
    line's overflow may apply now (overflow_may_apply): the queues' state costs the caller's first answer
    a round trip, for nothing when the centre is closed, the menu comes first or no overflow could follow."""
    voice = centre.voice
    if voice is None:
        return not_ours()
    if not centre.calendar.is_open(now):
        return _out_of_hours(centre, directory, now)
    if voice.menu:
        return Answer((Say(voice.greeting), Menu(MENU_PROMPT)), MENU)
    return to_queue_asking(centre, directory, now, queues, greeting=voice.greeting)


def overflow_may_apply(centre: Centre, directory: Directory, now: datetime) -> bool:
    """Whether the centre's overflow could send a caller elsewhere now, whatever its queue's state: the line
    has an overflow, to a centre the directory knows and whose calendar has it open. Otherwise to_queue
    queues the caller in the centre's own queue without looking at any queue's state."""
    return _open_overflow(centre, directory, now) is not None


def _open_overflow(centre: Centre, directory: Directory, now: datetime) -> tuple[Overflow, Centre] | None:
    """The line's overflow and the centre it sends callers to, when that centre is known and open now."""
    overflow = centre.voice.overflow if centre.voice else None
    if overflow is None:
        return None
    target = directory.centres.get(overflow.to)
    return (overflow, target) if target is not None and target.calendar.is_open(now) else None


def menu_choice(digits: str | None, attempt: int) -> tuple[bool | None, Answer | None]:
    """(priority, None) for a choice made (1: a professional, answered first; 2: the public), or (None, the
    menu again) after a key that is not a choice; after MENU_TRIES the caller is taken as the public."""
    if digits == "1":
        return True, None
    if digits == "2" or attempt >= MENU_TRIES:
        return False, None
    return None, Answer((Say(MENU_RETRY), Menu(MENU_PROMPT, attempt + 1)), MENU)


def to_queue_asking(centre: Centre, directory: Directory, now: datetime,
                    queues: Callable[[], Mapping[str, QueueState]], *, greeting: str | None = None) -> Answer:
    """to_queue, asking `queues` for their state only when the line's overflow may apply now: otherwise the
    caller joins the centre's own queue whatever the state, and reading it would be a round trip for
    nothing (the first answer, and the menu's choice: service/phone_calls.py)."""
    return to_queue(centre, directory, now, queues() if overflow_may_apply(centre, directory, now) else {},
                    greeting=greeting)


def to_queue(centre: Centre, directory: Directory, now: datetime, queues: Mapping[str, QueueState], *,
             greeting: str | None = None) -> Answer:
    """Into the centre's queue, or, when its overflow applies now, to the centre the directory names."""
    lead = (Say(greeting),) if greeting else ()
    target = _overflow_target(centre, directory, now, queues.get(centre.code))
    if target is not None:
        return _overflow(centre, target, lead)
    return Answer((*lead, Enqueue(centre.code)), QUEUED, queue=centre.code)


def waiting(centre: Centre, directory: Directory, now: datetime, *, waited: timedelta, position: int,
            expected: timedelta | None, overflowed: bool, handlers_available: Callable[[], int]) -> Answer:
    """The wait URL's answer, asked again each time it ends: the caller's place and expected wait; or, for a
    caller who has not overflowed already (a caller overflows once), out of the queue to be put through to the
    open overflow centre when the line's overflow applies to them: their own wait has passed its threshold,
    or, with `when_nobody_available`, none of the centre's handlers is taking calls (a caller already waiting
    when the last one stops is moved on too); or, once the centre has closed by its calendar, out of the queue
    to its out-of-hours route (after_leaving): nobody is left waiting in a queue nobody works.
    `handlers_available` is asked only when that is all the answer turns on (the line's overflow applies when
    nobody is available, to a centre open now, for a caller not yet moved and within the threshold): the wait
    URL is asked every ~25 s by every caller waiting, and the figure is a read of its own."""
    if not centre.calendar.is_open(now):
        return Answer((Say("We are sorry to keep you waiting."), Leave()), LEAVING, queue=centre.code)
    found = None if overflowed else _open_overflow(centre, directory, now)
    if found is not None:
        overflow, target = found
        too_long = (overflow.longest_wait_seconds is not None
                    and waited > timedelta(seconds=overflow.longest_wait_seconds))
        if too_long or (overflow.when_nobody_available and handlers_available() == 0):
            return Answer((Say(f"We are sorry to keep you waiting. We are putting you through to the "
                               f"{target.name}."), Leave()), LEAVING, queue=centre.code)
    return holding(position, expected, queue=centre.code)


def holding(position: int | None, expected: timedelta | None, *, queue: str | None = None) -> Answer:
    """The caller's place and expected wait (either may be unknown), then a pause before the next telling."""
    place = f"You are number {position} in the queue. " if position else ""
    if expected is None:
        wait = "We will answer you as soon as we can."
    else:
        minutes = max(1, -(-int(expected.total_seconds()) // 60))
        wait = f"Your expected wait is about {minutes} minute{'s' if minutes > 1 else ''}."
    return Answer((Say(place + wait), Pause(WAIT_PAUSE_SECONDS)), WAITING, queue=queue)


def after_leaving(centre: Centre, directory: Directory, now: datetime, *, overflowed: bool = False,
                  rejoined: timedelta | None = None) -> Answer:
    """The caller left `centre`'s queue (the wait URL's Leave). The centre closed: its out-of-hours route.
    Else to the overflow centre, once (`overflowed`: a retried action for a caller who overflowed already,
    who goes back into the queue they are in); if that has closed since, back into the centre's own queue.
    `rejoined`: how long after first joining a queue the caller left this one; the <Enqueue> carries it,
    since Twilio's QueueTime restarts there (Enqueue.rejoined_ms)."""
    if not centre.calendar.is_open(now):
        return _out_of_hours(centre, directory, now, greet=False)
    overflow = centre.voice.overflow if centre.voice else None
    target = directory.centres.get(overflow.to) if overflow else None
    if overflowed or target is None or not target.calendar.is_open(now):
        return Answer((Enqueue(centre.code, _ms(rejoined)),), QUEUED, queue=centre.code)
    # The wait URL's answer told the caller already.
    return _overflow(centre, target, (), told=True, rejoined=rejoined)


def put_through_again(centre: Centre, directory: Directory, now: datetime, outcome: str, *,
                      greet: bool, told: bool = False) -> Answer:
    """A retried (or late) webhook for a caller whose answer put them through elsewhere (`outcome`: the
    out-of-hours route, OUT_OF_HOURS, or the overflow centre by phone, OVERFLOW_DIAL): Twilio never got that
    answer, so the same transfer again; never the menu again, never silence. `greet`: the retried webhook
    is the call's first (the caller has not heard the greeting); `told`: the wait URL's answer said where they
    go (a retried Leave), as after_leaving."""
    if outcome == OUT_OF_HOURS or not centre.calendar.is_open(now):
        return _out_of_hours(centre, directory, now, greet=greet)
    found = _open_overflow(centre, directory, now)
    lead = (Say(centre.voice.greeting),) if greet and centre.voice else ()
    if found is not None and found[0].via == "dial" and found[1].phone is not None:
        return _overflow(centre, found[1], lead, told=told)
    return Answer((*lead, Say(f"Sorry, we cannot put you through just now. {ADVICE}"), Hangup()), ENDED)


def queue_failed(call_back: bool) -> Answer:
    """Twilio could not hold the call (queue full, an error): said so, with the callback if there will be one."""
    then = ("We will call you back on this number as soon as we can." if call_back
            else "Please ring again.")
    return Answer((Say(f"We are sorry, we cannot hold your call just now. {then} {ADVICE}"), Hangup()), ENDED)


NOT_PUT_THROUGH = "Sorry, we could not put you through. You are still in the queue."


def back_in_queue(queue: str, rejoined: timedelta) -> Answer:
    """Answer put the caller through to a handler whose phone did not pick up: told, and back in the same
    queue (their wait still counts from when they first joined it)."""
    return Answer((Say(NOT_PUT_THROUGH), Enqueue(queue, _ms(rejoined) or 0)), QUEUED, queue=queue)


def still_in_queue(queue: str, rejoined: timedelta) -> Answer:
    """The wait URL's Leave crossed Answer: the enqueue's action came while Answer held the caller (marked
    answered, its REST redirect on its way to Twilio). Back into the same queue without a word (they are not
    leaving: the words they heard were the overflow's), so that the redirect finds them there and puts them
    through to the handler, or, if Twilio refuses it and Answer is undone, they are still waiting. Never a
    hang-up without a word. `rejoined`: how long after first joining the queue, as back_in_queue's."""
    return Answer((Enqueue(queue, _ms(rejoined) or 0),), QUEUED, queue=queue)


def _ms(span: timedelta | None) -> int | None:
    return None if span is None else max(span // timedelta(milliseconds=1), 0)


# The dial result (the action of the <Dial> Answer puts the caller through with) names the answer it ends:
# who answered, and when, in whole milliseconds since 1970 (its URL's `by` and `at`; Twilio signs the whole URL).
# A late or retried dial result then acts on that answer only, never on a later one (service/phone_calls.py
# dial_result; docs/telephony.md, "Answering a call"). The entry point renders it (web/twiml.bridge_twiml) once
# phone_calls.bridge has made the answer and knows its instant.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def answer_ms(at: datetime) -> int:
    """An answer's time as the dial result's URL carries it: whole milliseconds since 1970, rounded down."""
    return (at - _EPOCH) // timedelta(milliseconds=1)


def answer_from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def ended() -> Answer:
    """After the caller was answered (or hung up): nothing more to do."""
    return Answer((Hangup(),), ENDED)


def expected_wait(recent_average: timedelta | None, waited: timedelta) -> timedelta | None:
    """How much longer a caller may wait: the queue's recent average wait of answered calls less what they
    have waited already (at least a minute, since they are still waiting); None without a recent average."""
    if recent_average is None:
        return None
    return max(recent_average - waited, timedelta(minutes=1))


def _out_of_hours(centre: Centre, directory: Directory, now: datetime, *, greet: bool = True) -> Answer:
    """greet=False: for a caller who has been waiting (the centre closed meanwhile), not one just ringing."""
    assert centre.voice is not None
    reopens = spoken_time(centre.calendar.next_open(now), now)
    # "We", not the centre's name: the greeting has just named it, and a name does not always take "the"
    # ("First Contact Plus").
    closed = f"We are closed now. We open again at {reopens}."
    greeting = centre.voice.greeting if greet else ""
    code = centre.voice.out_of_hours.transfer_to
    target = directory.centres.get(code) if code else None
    if target is not None and target.phone is not None and target.calendar.is_open(now):
        return Answer((Say(f"{greeting} {closed} We are putting you through to the {target.name}.".lstrip()),
                       Dial(target.phone), Say(ADVICE), Hangup()), OUT_OF_HOURS)
    return Answer((Say(f"{greeting} {closed} {ADVICE}".lstrip()), Hangup()), OUT_OF_HOURS)


def _overflow_target(centre: Centre, directory: Directory, now: datetime, state: QueueState | None) -> Centre | None:
    if state is None or (found := _open_overflow(centre, directory, now)) is None:
        return None
    overflow, target = found
    too_long = (overflow.longest_wait_seconds is not None and state.longest_wait is not None
                and state.longest_wait > timedelta(seconds=overflow.longest_wait_seconds))
    nobody = overflow.when_nobody_available and state.handlers_available == 0
    return target if too_long or nobody else None


def _overflow(centre: Centre, target: Centre, lead: tuple[Step, ...], *, told: bool = False,
              rejoined: timedelta | None = None) -> Answer:
    """To the overflow centre: by phone, or into its queue (`rejoined`: for a caller who waited in `centre`'s
    queue, how long after first joining it they left it; None for a new caller)."""
    assert centre.voice is not None and centre.voice.overflow is not None
    if not told:
        lead = (*lead, Say(f"All our call handlers are busy just now. We are putting you through to the "
                           f"{target.name}, who can help you."))
    if centre.voice.overflow.via == "dial" and target.phone is not None:
        return Answer((*lead, Dial(target.phone), Say(ADVICE), Hangup()), OVERFLOW_DIAL,
                      overflowed_from=centre.code)
    return Answer((*lead, Enqueue(target.code, _ms(rejoined))), OVERFLOW_QUEUE, queue=target.code,
                  overflowed_from=centre.code)
