"""Callers who seem to wait for ever: a leg still in a queue long after anyone waits that long, because the
webhook that would have said the caller hung up (the enqueue's action, the status callback) never came:
ipoa was down for a deploy, the network dropped it, Twilio gave up. Left alone, such a leg is the queue's
longest wait for good, so every later caller overflows (domain/telephony/centre_voice.py), the measures
count a wait that grows each time they are read, and the caller, who hung up unanswered, is never called
back. docs/telephony.md, "Lost webhooks".

Every CHECK_EVERY the scheduler (workers/scheduler.py, LostCallCheck) asks Twilio how each caller who has
waited more than ASK_AFTER stands. A call Twilio says is over ends as the hang-up in the queue it was, at
the moment Twilio says it ended: abandoned (and called back) or a short hang-up, exactly as if the
webhook had come. A call still going on is left alone: that caller is waiting. Without Twilio (the console
gateway of the embedded default, which knows of no call) a leg is ended once it has waited longer than any
call can last (LONGEST_CALL). Twilio unreachable, or refusing (a 404): nothing changes, the next check
asks again, and past LONGEST_CALL the leg ends by time alone. The scheduler runs each check in a thread of
its own, so a slow Twilio never holds up the SLA timers.
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


def check(svc: Services) -> int:
    """Ask about each caller who has waited more than ASK_AFTER; end the legs of the calls that are over.
    Returns how many legs were ended."""
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
