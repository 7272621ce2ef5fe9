"""SMS gateways. `console` (the embedded default) records and logs each message so the demo shows every
alert without a Twilio account; `twilio` uses the real client, aimed elsewhere by TWILIO_API_BASE_URL."""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from .twilio_http import TRANSPORT_ERRORS, TwilioHttp

log = logging.getLogger(__name__)


class TransientSmsError(Exception):
    """Worth retrying with back-off (rate limit, 5xx, time-out). `maybe_sent`: whether the message may
    have been created all the same (a time-out, a dropped connection, a 5xx), so the retry must ask the
    gateway before sending again; False only when the gateway said it refused it (429)."""

    def __init__(self, message: str = "", *, code: int | None = None, maybe_sent: bool = True):
        super().__init__(message)
        self.code, self.maybe_sent = code, maybe_sent


class PermanentSmsError(Exception):
    def __init__(self, code: int | None, message: str):
        self.code, self.message = code, message
        super().__init__(f"{code}: {message}")


@dataclass(frozen=True)
class Submitted:
    provider_sid: str
    status: str


def masked(number: str) -> str:
    return number[:-6] + "******" if len(number) > 6 else "******"


class ConsoleGateway:
    name = "console"

    def send(self, to: str, body: str, status_callback: str | None = None) -> Submitted:
        # The body carries no patient identifier (templates are checked when loaded); the number is a
        # professional's, masked anyway.
        log.info("SMS (console) to %s: %s", masked(to), body)
        return Submitted(provider_sid="CONSOLE" + uuid.uuid4().hex[:26], status="sent")

    def find_submitted(self, to: str, body: str, since) -> Submitted | None:
        return None


# Twilio's permanent refusals: retrying cannot help (invalid number, opted out, not a mobile, ...).
PERMANENT_CODES = {21211, 21408, 21610, 21612, 21614, 21617, 21635, 30005, 30006}


class TwilioGateway:
    name = "twilio"

    def __init__(self, *, account_sid: str, auth_token: str, from_: str | None = None,
                 messaging_service_sid: str | None = None, api_base_url: str | None = None,
                 timeout: float = 10.0):
        from twilio.rest import Client

        if not (from_ or messaging_service_sid):
            raise ValueError("SMS_BACKEND=twilio needs TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID")
        self.from_, self.messaging_service_sid = from_, messaging_service_sid
        # Whose rate limit a send counts against (service/sms.py, adapters/rate_limit.py): the Messaging
        # Service when there is one, else the number.
        self.sender: str = messaging_service_sid or from_ or ""
        self.client = Client(account_sid, auth_token, http_client=TwilioHttp(api_base_url, timeout))
        # The client imports its API's modules at first use (about 30 ms here): at start-up, then, not in
        # the first text's send (the worker's first job after a start; docs/performance.md, texts' fifth
        # step).
        _ = self.client.messages

    def send(self, to: str, body: str, status_callback: str | None = None) -> Submitted:
        from twilio.base.exceptions import TwilioException, TwilioRestException

        kwargs = {"to": to, "body": body, "status_callback": status_callback}
        if self.messaging_service_sid:
            kwargs["messaging_service_sid"] = self.messaging_service_sid
        else:
            kwargs["from_"] = self.from_
        try:
            message = self.client.messages.create(**kwargs)
        except TwilioRestException as exc:
            if exc.code == 20429 or exc.status == 429:  # refused, so certainly not created
                raise TransientSmsError(f"{exc.status} {exc.code}", code=exc.code, maybe_sent=False) from exc
            if (exc.status or 0) >= 500:
                raise TransientSmsError(f"{exc.status} {exc.code}", code=exc.code) from exc
            raise PermanentSmsError(exc.code, _plain(exc.msg)) from exc
        except (*TRANSPORT_ERRORS, TwilioException) as exc:
            # The message may or may not have been created: the retry asks before sending again.
            raise TransientSmsError(type(exc).__name__) from exc
        return Submitted(provider_sid=message.sid, status=message.status or "queued")

    def find_submitted(self, to: str, body: str, since) -> Submitted | None:
        """A message to `to` with this body created since `since`: Twilio has no idempotency key."""
        from twilio.base.exceptions import TwilioException

        try:
            found = self.client.messages.list(to=to, date_sent_after=since.date(), limit=50)
        except (*TRANSPORT_ERRORS, TwilioException) as exc:
            raise TransientSmsError("cannot check whether the message was already sent") from exc
        for m in found:
            created = m.date_created
            if m.body == body and (created is None or created >= since - timedelta(minutes=1)):
                return Submitted(provider_sid=m.sid, status=m.status or "queued")
        return None


def _plain(msg: str) -> str:
    # The client prefixes "Unable to create record: "; keep Twilio's own words.
    return msg.split(": ", 1)[1] if msg and msg.startswith("Unable to") and ": " in msg else (msg or "")
