"""The senders' token buckets in Redis, shared by every worker: one key per sender holding its theoretical
arrival time (ipoa/domain/sms/rate.py, the same arithmetic), read and moved by one Lua script, so two
workers asking at once are served one after the other and the rate holds across processes and machines.

Time is Redis's own (TIME) unless the caller passes one (the tests' clock): the workers' clocks may
disagree, the server's is one clock for all of them."""
from __future__ import annotations

from typing import Any

from ..domain.sms.rate import Reservation, SenderRate, SenderRates

KEY_PREFIX = "ipoa:sms:rate:"

# KEYS[1] the sender's key; ARGV: interval ms, burst, max wait ms, now ms ("" for Redis's TIME), turns
# wanted, within ms (domain/sms/rate.reserve: the turns after the first, charged as if used that late).
# Returns {granted 0/1, wait ms, new tat ms, turns} as strings (Lua numbers would come back truncated).
_RESERVE = """
local now
if ARGV[4] ~= '' then
  now = tonumber(ARGV[4])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local tat = now
local stored = redis.call('GET', KEYS[1])
if stored then
  tat = math.max(tonumber(stored), now)
end
local wait = math.max(0, tat - (burst - 1) * interval - now)
if wait > max_wait then
  return {'0', tostring(wait), '', '0'}
end
local new_tat = tat + interval
local count = tonumber(ARGV[5])
local within = tonumber(ARGV[6])
local granted = 1
while wait == 0 and granted < count and new_tat - (burst - 1) * interval <= now do
  new_tat = math.max(new_tat, now + within) + interval
  granted = granted + 1
end
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now) + 1000)
return {'1', tostring(wait), string.format('%.3f', new_tat), tostring(granted)}
"""


class SenderBuckets:
    """reserve(sender): a turn to send now or after a wait (granted), or how long the sender is booked
    (refused: nothing reserved)."""

    def __init__(self, connection: Any, rates: SenderRates):
        self.rates = rates
        self._script = connection.register_script(_RESERVE)

    def reserve(self, sender: str, now: float | None = None, max_wait: float | None = None, count: int = 1,
                within: float = 0.0) -> Reservation:
        """`now`: seconds (any epoch the caller keeps to); None for Redis's clock. `max_wait`: less than
        the configured longest wait (a job that has waited its share already). `count`, `within`: turns
        for several texts in one call (domain/sms/rate.reserve)."""
        return self.reserve_with(sender, self.rates.for_sender(sender), now, max_wait, count, within)

    def reserve_with(self, sender: str, rate: SenderRate, now: float | None = None,
                     max_wait: float | None = None, count: int = 1, within: float = 0.0) -> Reservation:
        longest = self.rates.max_wait if max_wait is None else min(max_wait, self.rates.max_wait)
        granted, wait, tat, turns = (v.decode() if isinstance(v, bytes) else str(v) for v in self._script(
            keys=[KEY_PREFIX + sender],
            args=[repr(rate.interval * 1000), rate.burst, repr(max(0.0, longest) * 1000),
                  "" if now is None else repr(now * 1000), max(1, count), repr(max(0.0, within) * 1000)]))
        return Reservation(granted == "1", float(wait) / 1000, float(tat) / 1000 if tat else None,
                           int(turns) if granted == "1" else 1)
