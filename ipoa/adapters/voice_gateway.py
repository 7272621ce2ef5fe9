"""Live calls through Twilio's REST API (issue 15): redirecting a caller waiting in a queue to new TwiML,
which is how "Answer" bridges them to a handler (`<Dial>` to the handler's phone or Twilio Client identity);
asking how a call stands, for a caller who seems to wait for ever because a webhook was lost; and whether a
<Dial> from a call reached anyone, for an answer whose dial result was lost (service/lost_calls.py).
`console` (the embedded default) records the redirect, logs the call SID only and knows of no call. Never
logs a number."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .twilio_http import TRANSPORT_ERRORS, TwilioHttp

log = logging.getLogger(__name__)


class VoiceGatewayError(Exception):
    """Twilio refused the update (the call ended, say) or could not be reached: the message says which."""


# Twilio's call statuses once a call is over (its Call resource's `status`).
ENDED_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
# A call that was answered: going on, or over after it was answered (Twilio's `completed`).
REACHED_STATUSES = frozenset({"in-progress", "completed"})


@dataclass(frozen=True)
class CallState:
    """How Twilio says a call stands: its status, and when it ended (None while it goes on, or if Twilio did
    not say)."""

    status: str
    ended_at: datetime | None = None

    @property
    def ended(self) -> bool:
        return self.status in ENDED_STATUSES


@dataclass
class ConsoleVoiceGateway:
    name = "console"
    redirected: list[tuple[str, str]] = field(default_factory=list)  # (call SID, TwiML)

    def redirect(self, call_sid: str, twiml: str) -> None:
        log.info("voice (console): call %s redirected", call_sid)
        self.redirected.append((call_sid, twiml))

    def call_state(self, call_sid: str) -> CallState | None:
        """None: the console has no calls to ask about (service/lost_calls.py then goes by time alone)."""
        return None

    def reached(self, call_sid: str) -> bool | None:
        """None: the console knows of no call, nor of any <Dial> from one."""
        return None


class TwilioVoiceGateway:
    name = "twilio"

    def __init__(self, *, account_sid: str, auth_token: str, api_base_url: str | None = None,
                 timeout: float = 10.0):
        from twilio.rest import Client

        self.client = Client(account_sid, auth_token, http_client=TwilioHttp(api_base_url, timeout))

    def redirect(self, call_sid: str, twiml: str) -> None:
        from twilio.base.exceptions import TwilioException, TwilioRestException

        try:
            self.client.calls(call_sid).update(twiml=twiml)
        except TwilioRestException as exc:
            raise VoiceGatewayError(f"Twilio refused the update: {exc.status} {exc.code}") from exc
        except (*TRANSPORT_ERRORS, TwilioException) as exc:
            raise VoiceGatewayError(f"Twilio could not be reached: {type(exc).__name__}") from exc

    def call_state(self, call_sid: str) -> CallState | None:
        """The call's status and end as Twilio's Call resource gives them."""
        from twilio.base.exceptions import TwilioException, TwilioRestException

        try:
            call = self.client.calls(call_sid).fetch()
        except TwilioRestException as exc:
            raise VoiceGatewayError(f"Twilio refused the request: {exc.status} {exc.code}") from exc
        except (*TRANSPORT_ERRORS, TwilioException) as exc:
            raise VoiceGatewayError(f"Twilio could not be reached: {type(exc).__name__}") from exc
        ended_at = call.end_time
        if isinstance(ended_at, datetime) and ended_at.tzinfo is None:
            ended_at = ended_at.replace(tzinfo=UTC)
        return CallState(str(call.status), ended_at if isinstance(ended_at, datetime) else None)

    def reached(self, call_sid: str) -> bool | None:
        """Whether a <Dial> from this call reached anyone: Twilio's calls made from it (its child calls, by
        ParentCallSid), one of them answered (`in-progress`, or `completed`, which Twilio gives only to a call
        that was answered and has ended). False: none was (busy, no-answer, failed, canceled, or none made)."""
        from twilio.base.exceptions import TwilioException, TwilioRestException

        try:
            children = self.client.calls.list(parent_call_sid=call_sid, limit=20)
        except TwilioRestException as exc:
            raise VoiceGatewayError(f"Twilio refused the request: {exc.status} {exc.code}") from exc
        except (*TRANSPORT_ERRORS, TwilioException) as exc:
            raise VoiceGatewayError(f"Twilio could not be reached: {type(exc).__name__}") from exc
        return any(str(child.status) in REACHED_STATUSES for child in children)
