"""SMS gateways. `console` (the embedded default) records and logs each message so the demo shows every
alert without a Twilio account; the Twilio gateway comes with the webhooks (issue: SMS alerts)."""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

log = logging.getLogger(__name__)


class TransientSmsError(Exception):
    """Worth retrying with back-off (rate limit, 5xx, time-out)."""


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
