"""time_ordered_id (domain/model.py): a UUIDv7 as RFC 9562 lays it out, as 32 hex digits, led by the time in
milliseconds so that keys made later sort later (from one millisecond to the next), and never the same twice."""
from __future__ import annotations

import time
import uuid

from ipoa.domain.model import time_ordered_id


def test_a_uuid7_with_the_rfc_variant_and_the_time_of_its_making():
    before = time.time_ns() // 1_000_000
    key = time_ordered_id()
    after = time.time_ns() // 1_000_000
    assert len(key) == 32 and key == key.lower() and int(key, 16) >= 0
    parsed = uuid.UUID(hex=key)
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert before <= parsed.int >> 80 <= after


def test_keys_made_in_later_milliseconds_sort_later_and_none_repeats():
    keys = []
    for _ in range(5):
        keys += [time_ordered_id() for _ in range(2000)]
        time.sleep(0.002)
    assert len(set(keys)) == len(keys)
    by_ms: dict[int, list[str]] = {}
    for key in keys:
        by_ms.setdefault(int(key, 16) >> 80, []).append(key)
    ms = sorted(by_ms)
    for earlier, later in zip(ms, ms[1:], strict=False):
        assert max(by_ms[earlier]) < min(by_ms[later])


def test_the_random_bits_vary_in_both_random_fields():
    keys = [int(time_ordered_id(), 16) for _ in range(200)]
    rand_a = {(k >> 64) & 0xFFF for k in keys}
    rand_b = {k & ((1 << 62) - 1) for k in keys}
    assert len(rand_a) > 100 and len(rand_b) == 200
