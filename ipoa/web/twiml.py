"""The pure core's answer to a ringing call (domain/telephony/answers.py) as TwiML, built by the twilio
library. The URLs Twilio is sent back to are absolute, from PUBLIC_BASE_URL: Twilio signs the URL it calls,
and the webhooks check the signature against that same public URL (web/webhooks.py)."""
from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from urllib.parse import quote

from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from ..domain.telephony import answers
from ..domain.telephony.answers import Answer

LANGUAGE = "en-GB"
PREFIX = "/webhooks/twilio/voice"
GATHER_TIMEOUT_SECONDS = 6
DIAL_TIMEOUT_SECONDS = 30


@lru_cache(maxsize=256)
def render(answer: Answer | None, base_url: str) -> str:
    """The answer's TwiML. Kept for the answers last given: an answer is a frozen value, and its TwiML depends
    on nothing else, so every caller of a line hearing the same greeting and menu (or queue) costs it once
    (building it with the twilio library was about 7% of the answer's CPU in the app: docs/performance.md, "Voice").
    The few answers that vary (a spoken reopening time) are simply built again."""
    base = base_url.rstrip("/") + PREFIX
    response = VoiceResponse()
    for step in answer.steps if answer is not None else ():
        if isinstance(step, answers.Say):
            response.say(step.text, language=LANGUAGE)
        elif isinstance(step, answers.Menu):
            url = f"{base}/menu?attempt={step.attempt}"
            gather = Gather(num_digits=1, action=url, method="POST", timeout=GATHER_TIMEOUT_SECONDS)
            gather.say(step.prompt, language=LANGUAGE)
            response.append(gather)
            response.redirect(url, method="POST")  # no key pressed: back to the menu without Digits
        elif isinstance(step, answers.Enqueue):
            rejoined = f"?rejoined={step.rejoined_ms}" if step.rejoined_ms is not None else ""
            response.enqueue(step.queue, action=f"{base}/queue/left{rejoined}", method="POST",
                             wait_url=f"{base}/queue/wait", wait_url_method="POST")
        elif isinstance(step, answers.Dial):
            response.dial(step.number, timeout=DIAL_TIMEOUT_SECONDS)
        elif isinstance(step, answers.Pause):
            response.pause(length=step.seconds)
        elif isinstance(step, answers.Leave):
            response.leave()
        elif isinstance(step, answers.Hangup):
            response.hangup()
    return str(response)


def bridge_twiml(dial_to: str, base_url: str | None = None, *, by: str, at: datetime) -> str:
    """The caller put through to a handler (service/phone_calls.bridge): `dial_to` an E.164 number, or
    `client:<identity>` for a Twilio Client (a handler's browser or softphone). When the Dial ends Twilio
    requests its action (the dial result, web/voice_webhooks.py): a handler who did not pick up (busy, no
    answer, failed) leaves the caller waiting in the queue again, never ended in silence (docs/telephony.md,
    "Answering a call"). The action's URL names the answer, `by` whom and `at` what instant
    (`?by=<username>&at=<ms>`, answers.answer_ms), so that a late or retried dial result acts on that answer
    only; phone_calls.bridge calls the entry point's builder with the instant once the answer is made. The
    username is percent-encoded, so it is safe in the URL and in the XML attribute alike.
    `base_url`: PUBLIC_BASE_URL, the app's own when None (in a request)."""
    if base_url is None:
        from ..entry.request_context import services

        base_url = services().public_base_url
    response = VoiceResponse()
    action = f"{base_url.rstrip('/')}{PREFIX}/dial-result?by={quote(by, safe='')}&at={answers.answer_ms(at)}"
    dial = Dial(timeout=DIAL_TIMEOUT_SECONDS, action=action, method="POST")
    if dial_to.startswith("client:"):
        dial.client(dial_to.removeprefix("client:"))
    else:
        dial.number(dial_to)
    response.append(dial)
    return str(response)
