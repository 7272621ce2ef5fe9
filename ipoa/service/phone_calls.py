"""Twilio Voice's webhooks as use cases (issue 15; docs/telephony.md): a call rings a centre's number, the
caller chooses from the menu, waits in the queue, leaves it (answered, hung up, overflowed), and the call's
status callbacks say it ended. Each runs in one unit of work: the phone leg's row, and for a caller who
abandoned the queue the call that promises them a callback (service/abandoned_calls.py), commit together.

The answer itself (what the caller hears, where the call goes) is the pure core's (domain/telephony/answers.py);
the entry point renders it as TwiML (ipoa/web/twiml.py). Twilio retries a webhook it got no answer to, and its
callbacks come late, twice or out of order: a retried webhook gets the same answer and writes nothing again,
a callback for a leg already past that point changes nothing, and an unknown CallSid changes nothing at all.
The caller's number is stored on the leg (to call back and to match a caller who rings again), never logged."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

from ..adapters import voice_queue_queries
from ..adapters.phone_leg_store import PhoneLegStore, new_leg
from ..adapters.voice_gateway import VoiceGatewayError
from ..adapters.voice_queue_queries import VoiceQueueQueries
from ..domain.directory import Centre
from ..domain.telephony import answers, legs
from ..domain.telephony.answers import Answer, Enqueue, QueueState
from ..domain.telephony.legs import PhoneLeg
from ..domain.validation import normalise_uk_phone
from . import abandoned_calls

if TYPE_CHECKING:
    from ..adapters.unit_of_work import UnitOfWork
    from ..bootstrap import Services

log = logging.getLogger(__name__)

# A handler counts as available if they are taking calls and signed in: seen within this long, the
# dashboard's "signed in" (service/dashboard.py SIGNED_IN_WITHIN).
SIGNED_IN_WITHIN = timedelta(minutes=15)
# The queue's recent average wait of answered calls, behind the expected wait a caller is told.
RECENT = timedelta(hours=1)


def _centre(svc: Services, code: str) -> Centre | None:
    return svc.directory.centres.get(code)


@contextmanager
def _leg_locked(svc: Services, call_sid: str) -> Iterator[tuple[UnitOfWork, PhoneLegStore, PhoneLeg | None]]:
    """A use case's one unit of work, with the leg's row locked for its length (None: a CallSid that is not
    ours, each use case saying so its own way): Twilio's webhooks and callbacks for a call, and Answer, come
    at once, late or twice, and each must see what the one before it wrote."""
    with svc.uow() as uow:
        store = PhoneLegStore(uow.session)
        yield uow, store, store.get(call_sid, lock=True)


def queue_states(uow: UnitOfWork, centre: Centre, now: datetime) -> dict[str, QueueState]:
    """The state of the centre's queue (and its overflow centre's) as the answer needs it."""
    overflow = centre.voice.overflow.to if centre.voice and centre.voice.overflow else None
    found = voice_queue_queries.queues_now(uow.connection(), centre.code, overflow, now - SIGNED_IN_WITHIN)
    return {code: QueueState(now - q.longest_waiting_since if q.longest_waiting_since is not None else None,
                             q.handlers_available) for code, q in found.items()}


def incoming(svc: Services, call_sid: str, to: str, from_: str) -> Answer:
    """A call rings a centre's number (Twilio's `To`). A number no centre's line is configured for gets the
    999 and 111 advice and nothing is stored."""
    now = svc.clock.now()
    number = _line_number(to) if to else None
    centre = svc.directory.centre_for_number(number) if number else None
    if centre is None:
        return answers.not_ours()
    caller = normalise_uk_phone(from_) if from_ else None
    with svc.uow() as uow:
        # Only prepared statements, on the unit of work's connection: no ORM session (UnitOfWork.connection).
        # The states are read first, before the transaction holds anything (UnitOfWork.engine).
        waiting_states = abandoned_calls.awaiting_callback_states(uow.engine(svc)) if caller else frozenset()
        answer = answers.incoming(centre, svc.directory, now, lambda: queue_states(uow, centre, now))
        leg = PhoneLeg(call_sid=call_sid, centre=centre.code, arrived_at=now, caller_number=caller)
        if answer.kind == answers.MENU:
            leg.menu_attempt = 1
        _apply(leg, answer, now)
        # One statement, sent with the COMMIT (on PostgreSQL one round trip, with the BEGIN when the answer
        # needed no queue read: docs/performance.md, "Voice"): the leg, the caller matched to their open call
        # in it, and the CallSid's unique key telling a retry (no read before it). The leg is committed
        # before the answer goes back: a caller who rang is never lost.
        inserted = uow.at_commit(*new_leg(uow.dialect_name(), leg, now, waiting_states))
        uow.commit()
        if not inserted():
            # A retry gets the answer for where the caller is now, and nothing is written.
            known = PhoneLegStore(uow.session).get(call_sid)
            return _again(svc, known, now, first=True) if known is not None else answer
    return answer


@lru_cache(maxsize=64)
def _line_number(to: str) -> str | None:
    """Twilio's `To` in E.164: one of the centres' few line numbers, so parsed once each (bench/voice.py)."""
    return normalise_uk_phone(to)


def menu(svc: Services, call_sid: str, digits: str | None, attempt: int) -> Answer:
    """The caller pressed a key (or none, `digits` None) at the menu's `attempt`-th offer."""
    now = svc.clock.now()
    with _leg_locked(svc, call_sid) as (uow, store, leg):
        if leg is None:
            return answers.not_ours()
        if leg.enqueued_at is not None or leg.outcome is not None or attempt < leg.menu_attempt:
            return _again(svc, leg, now)  # a retry, or a late one: the choice was made
        centre = _centre(svc, leg.centre)
        if centre is None:
            return answers.not_ours()
        priority, again = answers.menu_choice(digits, attempt)
        if again is not None:
            leg.menu_attempt = attempt + 1
            store.save(leg, now)
            uow.commit()
            return again
        leg.priority = bool(priority)
        leg.caller_type = "professional" if priority else "public"
        answer = answers.to_queue_asking(centre, svc.directory, now, lambda: queue_states(uow, centre, now))
        _apply(leg, answer, now)
        store.save(leg, now)
        uow.commit()
    return answer


def waiting(svc: Services, call_sid: str, twilio_position: int | None, twilio_average: int | None) -> Answer:
    """The queue's wait URL, asked again each time its answer ends: the caller's place in ipoa's order
    (professionals first), the expected wait, or out of the queue to the overflow centre. Writes nothing."""
    now = svc.clock.now()
    with svc.uow() as uow:
        leg = PhoneLegStore(uow.session).get(call_sid)
        centre = _centre(svc, leg.queue) if leg is not None and leg.queue else None
        if leg is None or centre is None or not leg.in_queue:
            # Not one of ours (or it left already): hold, with Twilio's own figures.
            return answers.holding(twilio_position, timedelta(seconds=twilio_average) if twilio_average else None)
        queries = VoiceQueueQueries(uow.session)
        order = [w.call_sid for w in queries.waiting(centre.code)]
        position = order.index(call_sid) + 1 if call_sid in order else (twilio_position or 1)
        recent = queries.average_answer_wait(centre.code, now - RECENT)
        if recent is None and twilio_average:
            recent = timedelta(seconds=twilio_average)
        waited = leg.waited(now)
        # The handlers available are read only if the answer turns on them (a line that overflows when nobody
        # is available): every caller waiting asks the wait URL every ~25 s.
        return answers.waiting(centre, svc.directory, now, waited=waited, position=position,
                               expected=answers.expected_wait(recent, waited),
                               overflowed=leg.overflowed_from is not None,
                               handlers_available=lambda: queries.handlers_available(
                                   centre.code, now - SIGNED_IN_WITHIN))


def left_queue(svc: Services, call_sid: str, result: str, queue_seconds: int | None = None,
               rejoined: timedelta | None = None) -> Answer | None:
    """The Enqueue's action: the caller left the queue, as QueueResult says, after Twilio's QueueTime
    (`queue_seconds`, when it sent one), counted from when they joined the queue, or `rejoined` after that
    for a caller back in it (answers.back_in_queue). None: an empty answer (the call was redirected by the
    REST API and runs the TwiML it was given)."""
    now = svc.clock.now()
    with _leg_locked(svc, call_sid) as (uow, store, leg):
        if leg is None:
            return answers.not_ours()
        before = replace(leg)
        answer = _left(svc, uow, leg, result, now, _left_at(leg, now, queue_seconds, rejoined))
        if leg != before:  # a retried or late action changes nothing twice, not even updated_at
            store.save(leg, now)
            uow.commit()
    return answer


def _left_at(leg: PhoneLeg, now: datetime, queue_seconds: int | None,
             rejoined: timedelta | None = None) -> datetime:
    """When the caller left the queue: Twilio's QueueTime (whole seconds, rounded down) after they were
    queued, dated by legs.twilio_dated: now if the action came within that second, else (late: a retry, a
    slow network) its middle, so that a caller who hung up after 2 s is not counted as waiting for as long
    as the action took to arrive, and one who hung up after 5.5 s (QueueTime 5) is not a short hang-up."""
    if queue_seconds is None or leg.enqueued_at is None:
        return now
    joined = leg.enqueued_at + (rejoined or timedelta(0))
    return legs.twilio_dated(joined + timedelta(seconds=queue_seconds), now)


def _left(svc: Services, uow: UnitOfWork, leg: PhoneLeg, result: str, now: datetime,
          left_at: datetime) -> Answer | None:
    if result in (legs.BRIDGED, "bridging-in-process"):
        # A handler's <Dial><Queue>: Twilio requests this when the bridged call ends, so the answer is dated
        # by its QueueTime (left_at), not by now (which would count the conversation as waiting).
        if leg.answered_at is None and leg.hung_up_at is None:
            leg.answered_at = left_at
            leg.outcome = legs.ANSWERED
        leg.left_queue_at = leg.left_queue_at or left_at
        return answers.ended()
    if result in (legs.REDIRECTED, "redirected-from-bridged"):
        # A redirect out of the queue only ever comes from Answer (bridge), which marks the leg answered first.
        # For a leg no answer holds it is stale: the first enqueue's action coming after the dial result put
        # the caller back in the queue (the two race, or Twilio retried it), or after Answer undid an answer
        # whose REST redirect timed out although Twilio made it. The caller is waiting (or will be, once the
        # dial result puts them back): marking them left would hide them from handlers and from the callback.
        if leg.answered_at is not None and leg.left_queue_at is None:
            leg.left_queue_at = now
        return None
    if result == legs.HANGUP:
        if leg.in_queue:
            _hung_up_in_queue(svc, uow, leg, now, at=left_at)
        elif leg.answered_at is not None and leg.left_queue_at is None and leg.hung_up_at is None:
            # Answer held the leg but Twilio had not put the caller through: the redirect will fail, and
            # _unanswer ends the leg as this hang-up in the queue (with its callback), dated as any other.
            leg.hung_up_at = left_at
        return answers.ended()
    if result == legs.LEAVE:
        return _overflowing(svc, leg, now)
    # queue-full, error, system-error: Twilio could not hold the call. Told so, and called back.
    if leg.outcome is None and leg.answered_at is None:
        leg.left_queue_at = leg.left_queue_at or now
        leg.outcome = legs.QUEUE_FAILED
        leg.call_ref = abandoned_calls.call_back(svc, uow, leg, now, waited_seconds=_seconds(leg.waited(now)))
    return answers.queue_failed(call_back=leg.call_ref is not None)


def _overflowing(svc: Services, leg: PhoneLeg, now: datetime) -> Answer:
    """Out of the queue by the wait URL's Leave: to the overflow centre (once), or, the centre having closed,
    to its out-of-hours route. A Leave that crossed Answer (it holds the caller, its REST redirect on its way)
    puts the caller back in the queue they are in, without a word, for the redirect to find them there."""
    centre = _centre(svc, leg.queue or leg.centre)
    if centre is None:
        return answers.ended()
    if leg.held_by_answer and leg.queue and leg.enqueued_at is not None:
        # Not a hang-up without a word (docs/telephony.md, "Answering a call"): should Twilio refuse the
        # redirect, Answer is undone and the caller is still waiting, their next telling moving them on.
        return answers.still_in_queue(leg.queue, now - leg.enqueued_at)
    if not leg.in_queue:
        if leg.outcome in (legs.OUT_OF_HOURS, legs.OVERFLOW_DIAL) and leg.hung_up_at is None:
            # A retried Leave: the transfer it was answered with again, not a hang-up without a word.
            return answers.put_through_again(centre, svc.directory, now, leg.outcome, greet=False, told=True)
        return answers.ended()
    # Twilio's QueueTime restarts at the next <Enqueue>: it carries how long after first joining it comes.
    rejoined = now - leg.enqueued_at if leg.enqueued_at is not None else None
    answer = answers.after_leaving(centre, svc.directory, now, overflowed=leg.overflowed_from is not None,
                                   rejoined=rejoined)
    if answer.kind == answers.OUT_OF_HOURS:
        leg.left_queue_at, leg.outcome = now, legs.OUT_OF_HOURS
    elif answer.kind == answers.OVERFLOW_QUEUE:
        # Their wait still counts from first joining (enqueued_at); this queue's, for its overflow, from now.
        leg.overflowed_from, leg.queue, leg.queue_joined_at = centre.code, answer.queue, now
    elif answer.kind == answers.OVERFLOW_DIAL:
        leg.overflowed_from = centre.code
        leg.left_queue_at, leg.outcome = now, legs.OVERFLOW_DIAL
    return answer


def status(svc: Services, call_sid: str, call_status: str, duration_seconds: int | None = None,
           timestamp: datetime | None = None) -> bool:
    """A status callback, with Twilio's CallDuration (`duration_seconds`, on `completed`) and Timestamp
    when it sent them. True if it changed the leg: a status no later than the last one recorded (a retry,
    or one overtaken by a later one) and an unknown CallSid change nothing."""
    now = svc.clock.now()
    with _leg_locked(svc, call_sid) as (uow, store, leg):
        if leg is None or not legs.status_moves_on(leg.last_status, call_status):
            return False
        if call_status in legs.FINAL_STATUSES:
            _call_ended(svc, uow, leg, call_status, now, at=_ended_at(leg, now, duration_seconds, timestamp))
        else:
            leg.last_status = call_status
        store.save(leg, now)
        uow.commit()
    return True


def _call_ended(svc: Services, uow: UnitOfWork, leg: PhoneLeg, final_status: str, now: datetime, *,
                at: datetime) -> None:
    """Twilio says the call ended `at` (`final_status`, one of legs.FINAL_STATUSES): by its status callback
    (status, dated by _ended_at), or by its REST API when no webhook said so (ended_unseen, dated by Twilio's
    end_time). The status is recorded, if it moves on from the last one, so that a callback coming after all
    changes nothing. A leg not yet ended ends then: a caller in the queue as the hang-up in the queue it was
    (abandoned and called back, or a short hang-up); any other caller is stamped hung up, as having hung up
    before the queue if they were never queued nor answered."""
    if legs.status_moves_on(leg.last_status, final_status):
        leg.last_status = final_status
    if leg.hung_up_at is not None:
        return
    if leg.in_queue:  # hung up in the queue, and the enqueue's action has not said so (yet)
        _hung_up_in_queue(svc, uow, leg, now, at=at)
    else:
        if leg.outcome is None and leg.answered_at is None and leg.enqueued_at is None:
            leg.outcome = legs.HUNG_UP_BEFORE_QUEUE
        leg.hung_up_at = at


def _ended_at(leg: PhoneLeg, now: datetime, duration_seconds: int | None, timestamp: datetime | None) -> datetime:
    """When the call ended, by what Twilio's status callback says, dated by legs.twilio_dated (so a
    callback that comes late does not stretch the wait: a 3 s hang-up told 10 s late is a short hang-up):
    CallDuration counts from Twilio answering the call, which ipoa did at the incoming webhook (arrived_at),
    and is on ipoa's own clock; else the event's Timestamp; else now. Never before the caller arrived (or
    was queued), never after now."""
    if duration_seconds is not None:
        at = legs.twilio_dated(leg.arrived_at + timedelta(seconds=duration_seconds), now)
    elif timestamp is not None:
        at = legs.twilio_dated(timestamp, now)
    else:
        return now
    return min(max(at, leg.enqueued_at or leg.arrived_at), now)


def answered(svc: Services, call_sid: str, username: str) -> bool:
    """A handler answered the caller (the Answer button, before it redirects the call to them). False if the
    caller is no longer waiting (answered by someone else, hung up, gone): the handler is told, nothing changes."""
    return _answer(svc, call_sid, username) is not None


def _answer(svc: Services, call_sid: str, username: str) -> datetime | None:
    """answered(): when the answer was made, None if it was not."""
    now = svc.clock.now()
    with _leg_locked(svc, call_sid) as (uow, store, leg):
        if leg is None or not leg.in_queue:
            return None
        leg.answered_at, leg.answered_by, leg.outcome = now, username, legs.ANSWERED
        leg.dial_status = None  # this answer's dial result is still to come
        store.save(leg, now)
        uow.commit()
    return now


def bridge(svc: Services, call_sid: str, username: str, twiml_for: Callable[[datetime], str]) -> bool:
    """Answer: the caller is marked answered by this handler (one unit of work: nobody else answers them),
    then their call is redirected through the REST API to the TwiML `twiml_for` builds (at the entry point:
    web/twiml.bridge_twiml, a <Dial> to the handler's phone or Twilio Client identity), given the instant
    the answer was made, which the dial result's URL names. False: the caller was no longer waiting. Should
    Twilio refuse or be unreachable, the answer is undone (the caller is still waiting, for the next handler)
    and VoiceGatewayError raised for the entry point to say so; should the builder fail, the answer is undone
    and its error raised."""
    at = _answer(svc, call_sid, username)
    if at is None:
        return False
    try:
        twiml = twiml_for(at)
    except Exception:
        _unanswer(svc, call_sid, username, at)  # nothing was put through: as if Answer had not been pressed
        raise
    try:
        svc.voice_gateway.redirect(call_sid, twiml)
    except VoiceGatewayError:
        if _unanswer(svc, call_sid, username, at):
            return False  # the caller hung up while Twilio was being asked: not put through, called back
        raise
    return True


def dial_result(svc: Services, call_sid: str, dial_status: str, by: str | None = None,
                at: int | None = None) -> Answer | None:
    """The <Dial> Answer put the caller through with ended (web/twiml.bridge_twiml's action), as Twilio's
    DialCallStatus says, for the answer its URL names (`by`, and `at` in ms: answers.answer_ms). Only that
    answer is acted on, so a late or retried dial result never undoes a later one:
    - not reached (busy, no answer, failed, canceled) and it is the leg's answer: the caller was never
      answered, so the answer is undone and they are back in the same queue, told so, their wait still counting
      from when they first joined it; or, if they hung up while the handler's phone rang, the leg ends as that
      hang-up in the queue (called back past the threshold);
    - not reached and the caller is back in the queue already (a retry, or an answer Answer undid after its
      REST redirect timed out although Twilio made it): the same back-in-queue answer, nothing changed;
    - not reached and the caller was answered by someone else since: nothing changes, an empty answer (the
      call has moved on);
    - reached: the leg's answer is recorded as having reached the handler (dial_status), or, if the caller is
      waiting unanswered (Answer undid the answer after its REST redirect timed out, but Twilio put them
      through), that answer is recorded, and the caller as having left the queue then, so the call is counted
      answered and never later taken for an abandon.
    The leg's dial_status keeps the DialCallStatus of its answer's Dial: an answered leg without one had its
    dial result lost, and the lost-call check asks Twilio about it (dial_result_unheard). A dial result
    without `by` and `at` (TwiML given before they were added) acts on the leg's answer, as before. An
    unknown CallSid changes nothing."""
    now = svc.clock.now()
    with _leg_locked(svc, call_sid) as (uow, store, leg):
        if leg is None:
            return answers.not_ours()
        named = by is not None and at is not None
        ours = leg.answered_at is not None and (not named or (
            leg.answered_by == by and answers.answer_ms(leg.answered_at) == at))
        if dial_status in legs.DIAL_REACHED:
            if by is not None and at is not None and leg.in_queue:
                _put_through(leg, by, answers.answer_from_ms(at), now)
                leg.dial_status = dial_status
                store.save(leg, now)
                uow.commit()
            elif ours and leg.dial_status is None:  # a retry finds it recorded: nothing changes twice
                leg.dial_status = dial_status
                store.save(leg, now)
                uow.commit()
            return answers.ended()
        if leg.in_queue and leg.queue and leg.enqueued_at:  # a retry: back in the queue already
            return answers.back_in_queue(leg.queue, now - leg.enqueued_at)
        if not ours:  # answered by someone else since (or by this handler again): not this dial result's
            return None if leg.answered_at is not None and leg.hung_up_at is None else answers.ended()
        if leg.outcome != legs.ANSWERED or leg.answered_at is None or not leg.queue or not leg.enqueued_at:
            return answers.ended()
        if leg.dial_status in legs.DIAL_REACHED:  # this answer's Dial reached the handler: Twilio sends one result
            return answers.ended()
        # Logged without identifiers; the handler and the call are on the leg until the answer is undone.
        log.info("voice: a handler's phone did not pick up (%s); the caller is back in the %s queue",
                 dial_status, leg.queue)
        hung_up_at = leg.hung_up_at
        _not_reached(svc, uow, leg, now, dial_status, hung_up_at)
        answer = answers.ended() if hung_up_at is not None else answers.back_in_queue(leg.queue,
                                                                                         now - leg.enqueued_at)
        store.save(leg, now)
        uow.commit()
    return answer


def _not_reached(svc: Services, uow: UnitOfWork, leg: PhoneLeg, now: datetime, dial_status: str,
                 hung_up_at: datetime | None) -> None:
    """The leg's answer never reached the handler: undone, the caller back in the queue; or, if their call
    ended (`hung_up_at`), ended as that hang-up in the queue, called back past the threshold. A call the
    handler logged from the answer meanwhile (call_ref) no longer holds the leg: they never spoke to the
    caller, and the next handler to answer logs the call."""
    leg.answered_at = leg.answered_by = leg.outcome = leg.left_queue_at = leg.hung_up_at = None
    leg.call_ref = None
    leg.dial_status = dial_status
    if hung_up_at is not None:
        _hung_up_in_queue(svc, uow, leg, now, at=hung_up_at)


def dial_result_unheard(svc: Services, call_sid: str, answered_by: str, answered_at: datetime,
                        reached: bool | None, ended_at: datetime) -> bool:
    """The dial result of this answer (by whom, when) never came, and the caller's call is over, at `ended_at`
    unless a status callback said so (service/lost_calls.py): Twilio's record of the calls the <Dial> made
    says whether it reached the handler (`reached`; None: nobody can say). Reached: the answer stands, and is
    recorded as reached. Not reached: the caller was never answered, so the leg ends as the hang-up in the
    queue it was, abandoned and called back past the threshold, as the dial result would have ended it.
    Unknown: the answer stands, marked unknown, and is not asked about again. False: the leg is unknown, or
    the answer is no longer the leg's or its dial result came meanwhile, and nothing changes."""
    now = svc.clock.now()
    with _leg_locked(svc, call_sid) as (uow, store, leg):
        if (leg is None or leg.outcome != legs.ANSWERED or leg.dial_status is not None
                or leg.answered_by != answered_by or leg.answered_at != answered_at or not leg.enqueued_at):
            return False
        if reached is None or reached:
            leg.dial_status = "completed" if reached else legs.DIAL_UNKNOWN
        else:
            log.info("voice: a handler's phone was not reached and its dial result never came; the caller is "
                     "ended as a hang-up in the %s queue", leg.queue)
            _not_reached(svc, uow, leg, now, legs.DIAL_NOT_REACHED, min(leg.hung_up_at or ended_at, now))
        store.save(leg, now)
        uow.commit()
    return True


def _put_through(leg: PhoneLeg, by: str, at: datetime, now: datetime) -> None:
    """The caller, waiting unanswered by ipoa's record, was put through to `by` and reached them: answered `at`
    (never before they were queued nor after now), and out of the queue then."""
    assert leg.enqueued_at is not None
    at = min(max(at, leg.enqueued_at), now)
    log.info("voice: a handler was reached although Answer's redirect seemed to fail; counted answered")
    leg.answered_at, leg.answered_by, leg.outcome, leg.left_queue_at = at, by, legs.ANSWERED, at


def _unanswer(svc: Services, call_sid: str, username: str, at: datetime) -> bool:
    """Undo this handler's answer made `at` that Twilio did not put through. True if the caller hung up
    meanwhile: the hang-up's callbacks came while the answer held the leg (phone_calls.status, _left), so they
    only stamped it; the caller was never put through, so the leg ends as a hang-up in the queue at that
    moment, and a caller who waited beyond the threshold is called back, as if nobody had pressed Answer."""
    now = svc.clock.now()
    with _leg_locked(svc, call_sid) as (uow, store, leg):
        # Only the answer this bridge made (by whom and when: the same handler may have answered the caller
        # again meanwhile, once a dial result put them back in the queue while this redirect's answer was
        # slow to come), and never once Twilio said the call was bridged or redirected.
        if leg is None or leg.answered_by != username or leg.answered_at != at or leg.left_queue_at:
            return False
        hung_up_at = leg.hung_up_at
        leg.answered_at = leg.answered_by = leg.outcome = leg.call_ref = None  # call_ref: as _not_reached
        if hung_up_at is not None:
            _hung_up_in_queue(svc, uow, leg, now, at=hung_up_at)
        store.save(leg, now)
        uow.commit()
    return hung_up_at is not None


def _hung_up_in_queue(svc: Services, uow: UnitOfWork, leg: PhoneLeg, now: datetime,
                      at: datetime | None = None) -> None:
    """The caller hung up while queued, `at` (now, unless a callback said so earlier)."""
    at = at or now
    waited = leg.waited(at)
    sla = svc.catalogue.sla
    threshold = sla.abandoned.after if sla is not None else timedelta(seconds=5)
    leg.left_queue_at = leg.hung_up_at = at
    leg.outcome = legs.end_in_queue(waited, threshold)
    if leg.outcome == legs.ABANDONED:
        leg.call_ref = abandoned_calls.call_back(svc, uow, leg, now, waited_seconds=_seconds(waited))


def _apply(leg: PhoneLeg, answer: Answer, now: datetime) -> None:
    """What the first answer (or the menu's) does to the leg."""
    if answer.kind in (answers.QUEUED, answers.OVERFLOW_QUEUE):
        leg.queue = answer.queue
        leg.enqueued_at = leg.enqueued_at or now
        leg.queue_joined_at = leg.queue_joined_at or leg.enqueued_at  # first joining a queue: the same instant
        leg.overflowed_from = answer.overflowed_from
    elif answer.kind == answers.OVERFLOW_DIAL:
        leg.overflowed_from, leg.outcome = answer.overflowed_from, legs.OVERFLOW_DIAL
    elif answer.kind == answers.OUT_OF_HOURS:
        leg.outcome = legs.OUT_OF_HOURS


def _again(svc: Services, leg: PhoneLeg, now: datetime, *, first: bool = False) -> Answer:
    """The answer to a webhook Twilio retried (or a late one): from the leg as it stands, nothing written.
    `first`: the retried webhook is the incoming call's own."""
    if leg.in_queue and leg.queue:
        return Answer((Enqueue(leg.queue),), answers.QUEUED, queue=leg.queue)
    if leg.held_by_answer and leg.queue and leg.enqueued_at is not None:
        # The retry crossed Answer (it holds the caller, its REST redirect on its way; Twilio never got the
        # answer that queued them): into the queue without a word, as a Leave that crossed it (_overflowing),
        # never a hang-up. Twilio runs this answer only if it is still waiting for it.
        return answers.still_in_queue(leg.queue, now - leg.enqueued_at)
    centre = _centre(svc, leg.centre)
    if centre is None or leg.hung_up_at is not None or leg.answered_at is not None:
        return answers.ended()
    if leg.outcome in (legs.OUT_OF_HOURS, legs.OVERFLOW_DIAL):  # the answer never reached the caller
        return answers.put_through_again(centre, svc.directory, now, leg.outcome, greet=first)
    if leg.enqueued_at is None and leg.outcome is None:  # still at the menu
        return Answer((answers.Menu(answers.MENU_PROMPT, max(leg.menu_attempt, 1)),), answers.MENU)
    return answers.ended()


def _seconds(span: timedelta) -> int:
    return int(span.total_seconds())


def ended_unseen(svc: Services, call_sid: str, at: datetime) -> bool:
    """Twilio says this caller's call ended at `at`, and no webhook said so (service/lost_calls.py): a caller
    still in the queue ends as the hang-up in the queue it was, at that moment (abandoned and called back,
    or a short hang-up), as the status callback would have ended it (_call_ended, the same ending, dated by
    Twilio's end_time rather than by _ended_at). False: the leg is unknown or no longer waiting (a webhook
    came meanwhile), and nothing changes."""
    now = svc.clock.now()
    with _leg_locked(svc, call_sid) as (uow, store, leg):
        if leg is None or not leg.in_queue:
            return False
        _call_ended(svc, uow, leg, "completed", now, at=min(at, now))
        store.save(leg, now)
        uow.commit()
    return True
