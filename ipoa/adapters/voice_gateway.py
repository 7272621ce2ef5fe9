"""Live calls through Twilio's REST API (issue 15): redirecting a caller waiting in a queue to new TwiML,
which is how "Answer" bridges them to a handler (`<Dial>` to the handler's phone or Twilio Client identity).
`console` (the embedded default) records the redirect and logs the call SID only. Never logs a number."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from .twilio_http import TRANSPORT_ERRORS, TwilioHttp

log = logging.getLogger(__name__)


class VoiceGatewayError(Exception):
    """Twilio refused the update (the call ended, say) or could not be reached: the message says which."""


@dataclass
class ConsoleVoiceGateway:
    name = "console"
    redirected: list[tuple[str, str]] = field(default_factory=list)  # (call SID, TwiML)

    def redirect(self, call_sid: str, twiml: str) -> None:
        log.info("voice (console): call %s redirected", call_sid)
        self.redirected.append((call_sid, twiml))


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
