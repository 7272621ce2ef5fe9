"""Callers who seem to wait for ever: a leg still in a queue long after anyone waits that long, because the
webhook that would have said the caller hung up (the enqueue's action, the status callback) never came:
ipoa was down for a deploy, the network dropped it, Twilio gave up. Left alone, such a leg is the queue's
longest wait for good, so every later caller overflows (domain/telephony/centre_voice.py), the measures
count a wait that grows each time they are read, and the caller, who hung up unanswered, is never called
back. docs/telephony.md, "Lost webhooks".

Every CHECK_EVERY_SECONDS the scheduler (workers/scheduler.py, LostCallCheck) asks Twilio how each caller who has
waited more than ASK_AFTER stands. A call Twilio says is over ends as the hang-up in the queue it was, at
the moment Twilio says it ended: abandoned (and called back) or a short hang-up, exactly as if the
webhook had come. A call still going on is left alone: that caller is waiting. Without Twilio (the console
gateway of the embedded default, which knows of no call) a leg is ended once it has waited longer than any
call can last (LONGEST_CALL). Twilio unreachable, or refusing (a 404): nothing changes, the next check
asks again, and past LONGEST_CALL the leg ends by time alone. The scheduler runs each check in a thread of
its own, so a slow Twilio never holds up the SLA timers.

The same check asks about answers whose dial result never came (the <Dial> Answer put the caller through
with ended, and its action was lost): without it, a caller the handler's phone never reached would count as
answered and never be called back. Once the caller's call is over (its hang-up came DIAL_RESULT_GRACE ago,
or, with that lost too, LONGEST_CALL after the answer), Twilio's record of the calls the <Dial> made says
whether the handler was reached (phone_calls.dial_result_unheard). Only over calls: a conversation going on
has no dial result yet, and is never asked about.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from ..adapters.voice_gateway import VoiceGatewayError
from ..adapters.voice_queue_queries import VoiceQueueQueries
from . import phone_calls

if TYPE_CHECKING:
    from ..bootstrap import Services

log = logging.getLogger(__name__)

# A caller who has waited this long is asked about: well beyond any centre's overflow wait (sla.yaml,
# directory.yaml: minutes), so a caller who is simply waiting is asked about rarely, and only while they
# wait that long.
ASK_AFTER = timedelta(minutes=10)
# Twilio's default time limit of a call (4 hours): nobody is still in a queue after it. What the console
# gateway, which cannot ask, goes by.
LONGEST_CALL = timedelta(hours=4)
CHECK_EVERY_SECONDS = 60.0
BATCH = 50  # callers asked about in one check; the rest at the next
# Twilio requests the Dial's action as the Dial ends, before the caller's call ends: a dial result still
# missing this long after the hang-up was lost.
DIAL_RESULT_GRACE = timedelta(minutes=2)


def check(svc: Services) -> int:
    """Ask about each caller who has waited more than ASK_AFTER, and end the legs of the calls that are over;
    then about each answer whose dial result was lost. Returns how many legs were ended (a caller not
    reached by a lost dial result is one)."""
    return _waiting(svc) + _dial_results(svc)


def _waiting(svc: Services) -> int:
    now = svc.clock.now()
    with svc.uow() as uow:
        waiting = VoiceQueueQueries(uow.session).waiting_since_before(now - ASK_AFTER, BATCH)
    ended = 0
    for call_sid, enqueued_at in waiting:
        try:
            state = svc.voice_gateway.call_state(call_sid)
        except VoiceGatewayError as exc:
            # Asked again at the next check; and if Twilio never answers for it (a 404, an account
            # misconfigured), the leg still ends by time alone, so that it cannot hold the queue for good.
            log.warning("could not ask Twilio about waiting call %s (%s)", call_sid, exc)
            state = None
        if state is None:  # nobody to ask, or no answer: by time alone
            if now - enqueued_at <= LONGEST_CALL:
                continue
            at = enqueued_at + LONGEST_CALL
        elif not state.ended:
            continue  # still in the queue: waiting, not lost
        else:
            # Twilio's end, never after now nor (another clock's skew) before the caller was queued.
            at = max(min(state.ended_at or now, now), enqueued_at)
        if phone_calls.ended_unseen(svc, call_sid, at):
            ended += 1
            log.info("call %s had ended without a webhook saying so: ended in the queue", call_sid)
    return ended


def _dial_results(svc: Services) -> int:
    """Answers whose dial result never came, once the caller's call is over: was the handler reached?"""
    now = svc.clock.now()
    with svc.uow() as uow:
        unheard = VoiceQueueQueries(uow.session).answered_without_dial_result(
            now - DIAL_RESULT_GRACE, now - LONGEST_CALL, BATCH)
    ended = 0
    for dial in unheard:
        # When the call ended: its hang-up, or, with that lost too, at the latest once no call lasts longer.
        # Twilio unreachable is asked again for as long from then, not given up on at the first failure.
        since = dial.hung_up_at or dial.answered_at + LONGEST_CALL
        try:
            reached = svc.voice_gateway.reached(dial.call_sid)
            state = svc.voice_gateway.call_state(dial.call_sid) if dial.hung_up_at is None else None
        except VoiceGatewayError as exc:
            log.warning("could not ask Twilio about the dial of call %s (%s)", dial.call_sid, exc)
            if now - since <= LONGEST_CALL:
                continue  # asked again at the next check
            reached, state = None, None  # past asking: marked unknown, so that it cannot hold the batch
        if state is not None and not state.ended:
            continue  # the call goes on after all (a transfer, say): its dial result may yet come
        ended_at = dial.hung_up_at or (state.ended_at if state is not None else None) or now
        if phone_calls.dial_result_unheard(svc, dial.call_sid, dial.answered_by, dial.answered_at, reached,
                                           ended_at) and reached is False:
            ended += 1
            log.info("call %s: the handler was never reached and no dial result said so: ended in the queue",
                     dial.call_sid)
    return ended
