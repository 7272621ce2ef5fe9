"""How fast one sender may text: a token bucket per sender number (or Messaging Service), kept as the
"theoretical arrival time" of the generic cell rate algorithm, which is a token bucket written with one
number instead of two (ipoa/adapters/rate_limit.py runs the same arithmetic in Redis, atomically, so every
worker shares one bucket per sender).

A sender allowed `rate` texts a second with a burst of `burst` sends at most burst + rate x T texts in
any T seconds, and no more than `burst` at once. A send that would have to wait longer than `max_wait`
reserves nothing: the text is put back to wait that long in the table (service/sms.py).

A worker sending a batch takes the turns it can use at once together (`count`): the first as above,
and more only while the bucket has them free now, each counted as if sent at the latest instant it may
go, `within` seconds after it was asked for (the worker never sends one later: it asks again). So the
promise holds for the texts' real times, whatever order two workers' sends interleave in: each went no
earlier than its turn allowed, and the bucket moved on as far as it would have had it gone at the last
moment (docs/performance.md, "Texts at the client's rate").

Defaults (SMS_RATE_PER_SECOND=1, SMS_RATE_BURST=1): a UK long code, which Twilio sends at about one
message a second; raise them per sender for a short code or a Messaging Service with a pool of numbers
(SMS_SENDER_RATES)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["Reservation", "SenderRate", "SenderRates", "reserve"]


@dataclass(frozen=True)
class SenderRate:
    per_second: float = 1.0
    burst: int = 1

    def __post_init__(self) -> None:
        if not self.per_second > 0:
            raise ValueError("a sender's rate must be more than 0 messages a second")
        if self.burst < 1:
            raise ValueError("a sender's burst must be at least 1 message")

    @property
    def interval(self) -> float:
        """Seconds between two texts at the sustained rate."""
        return 1.0 / self.per_second


@dataclass(frozen=True)
class Reservation:
    granted: bool
    wait: float            # seconds from now until the text may go (granted), or would have (refused)
    tat: float | None      # the bucket's new theoretical arrival time; None when nothing was reserved
    count: int = 1         # turns reserved (granted): the first after `wait`, the others at once, each
    #                        to be used within the `within` the reservation was asked with, or never


def reserve(tat: float | None, now: float, rate: SenderRate, max_wait: float, count: int = 1,
            within: float = 0.0) -> Reservation:
    """A send's reservation against a bucket whose theoretical arrival time is `tat` (None: unused or
    expired). The send may go `wait` seconds from now; the next one is measured from the returned tat.
    Nothing is reserved when the wait would exceed max_wait.

    count > 1: up to count - 1 more turns when the first needs no wait, as many as the bucket allows now,
    each charged as if its text went `within` seconds from now (the latest it may go): the caller sends
    each extra turn's text within that time of asking, or gives the turn up."""
    tat = now if tat is None or tat < now else tat
    allowed_at = tat - (rate.burst - 1) * rate.interval
    wait = max(0.0, allowed_at - now)
    if wait > max_wait:
        return Reservation(False, wait, None)
    tat, granted = tat + rate.interval, 1
    while wait == 0.0 and granted < count and tat - (rate.burst - 1) * rate.interval <= now:
        tat, granted = max(tat, now + within) + rate.interval, granted + 1
    return Reservation(True, wait, tat, granted)


@dataclass(frozen=True)
class SenderRates:
    """SMS_RATE_PER_SECOND and SMS_RATE_BURST for every sender; SMS_SENDER_RATES for named ones
    ("+447700900999=1,MG...=30/60": rate, optionally /burst); SMS_RATE_MAX_WAIT_SECONDS: how long a worker
    waits for its turn before putting the text back in the table."""

    default: SenderRate = SenderRate()
    senders: Mapping[str, SenderRate] = field(default_factory=dict)
    max_wait: float = 2.0

    def for_sender(self, sender: str) -> SenderRate:
        return self.senders.get(sender, self.default)

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> SenderRates:
        def number(name: str, raw: str, default: float) -> float:
            try:
                return float(raw) if raw.strip() else default
            except ValueError:
                raise ValueError(f"{name}={raw!r}: a number is needed") from None

        def rate(name: str, raw_rate: str, raw_burst: str) -> SenderRate:
            per_second = number(name, raw_rate, 1.0)
            burst = number(name, raw_burst, max(1.0, float(int(per_second))))
            if burst != int(burst):
                raise ValueError(f"{name}: a burst is a whole number of messages")
            try:
                return SenderRate(per_second, int(burst))
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None

        default = rate("SMS_RATE_PER_SECOND", env.get("SMS_RATE_PER_SECOND") or "", env.get("SMS_RATE_BURST") or "")
        senders: dict[str, SenderRate] = {}
        for item in (env.get("SMS_SENDER_RATES") or "").split(","):
            if not item.strip():
                continue
            sender, sep, spec = item.strip().partition("=")
            if not sep or not sender.strip():
                raise ValueError(f"SMS_SENDER_RATES: {item.strip()!r} is not sender=rate or sender=rate/burst")
            raw_rate, _, raw_burst = spec.partition("/")
            senders[sender.strip()] = rate(f"SMS_SENDER_RATES ({sender.strip()})", raw_rate or "x", raw_burst)
        max_wait = number("SMS_RATE_MAX_WAIT_SECONDS", env.get("SMS_RATE_MAX_WAIT_SECONDS") or "", 2.0)
        if max_wait < 0:
            raise ValueError("SMS_RATE_MAX_WAIT_SECONDS must not be negative")
        return cls(default, senders, max_wait)
