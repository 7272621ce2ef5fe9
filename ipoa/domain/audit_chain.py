"""The tamper-evident chains: every audit event, access event and security event carries a sequence
number and a SHA-256 hash over its canonical content and the previous event's hash. Changing, deleting,
inserting or reordering an event breaks the chain from that event on; `verify` finds the first break.

Pure: the adapters read and write the rows (adapters/audit_store.py). See docs/information-governance.md,
"The audit trail: complete, append-only, tamper-evident".
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

# One chain per table. Heads are locked in this order by a transaction that extends more than one chain,
# so two transactions never wait on each other's head.
CHAINS = ("audit", "access", "security")
GENESIS = "0" * 64


def _instant(value: Any) -> str:
    """json's hook for what it cannot write itself: instants (in UTC, to the microsecond) and dates."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime in a chained event")
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} cannot be part of a chained event")


def canonical(fields: Mapping[str, Any]) -> bytes:
    """The bytes an event's hash covers: its fields (not its seq or hash) as sorted, compact JSON, with
    instants in UTC to the microsecond (what both SQLite and PostgreSQL keep). Tuples are written as
    lists, as they come back from a JSON column."""
    if _C_ENCODE is not None:
        return "".join(_C_ENCODE(fields, 0)).encode()
    return _CANONICAL.encode(fields).encode()


# json.dumps with these options makes an encoder like this one for every call (every event of a workflow
# step, and every event a verification reads); one made once writes the same text.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=_instant)
# And JSONEncoder.encode makes json's C encoder anew at every call, with its options: made once here (the
# standard library's own accelerator, as JSONEncoder.iterencode makes it, but without the check for
# circular references, which an event's fields cannot hold), it writes the same text in 60% of the time
# (docs/performance.md, "Engine core"). tests/unit/test_audit_chain.py compares the two.
_MAKE_C_ENCODER: Any = getattr(json.encoder, "c_make_encoder", None)  # (None where the accelerator is missing)
_C_ENCODE = (_MAKE_C_ENCODER(None, _instant, json.encoder.encode_basestring_ascii, None, ":", ",", True, False, True)
             if _MAKE_C_ENCODER is not None else None)


def link(prev_hash: str, seq: int, content: bytes) -> str:
    """The hash of the event numbered seq: over the previous event's hash, its own number and content."""
    return hashlib.sha256(f"{prev_hash}\n{seq}\n".encode() + content).hexdigest()


@dataclass(frozen=True)
class Head:
    """The last event of a chain as the chain's head row records it (seq 0 and GENESIS: empty)."""

    seq: int
    hash: str


@dataclass(frozen=True)
class Break:
    chain: str
    seq: int | None  # the first event whose link is broken (None: the head itself)
    problem: str

    def __str__(self) -> str:
        where = f"event {self.seq}" if self.seq is not None else "the head"
        return f"{self.chain} chain broken at {where}: {self.problem}"


def seal(events: list[Any], head: Head, content_of: Callable[[Any], Mapping[str, Any]]) -> Head:
    """Number and hash new events after head (in list order); returns the new head. content_of(event)
    gives the event's canonical fields."""
    seq, prev = head.seq, head.hash
    for event in events:
        seq += 1
        event.seq = seq
        event.hash = link(prev, seq, canonical(content_of(event)))
        prev = event.hash
    return Head(seq, prev)


def verify(chain: str, rows: Iterable[tuple[int, str | None, Mapping[str, Any]]], head: Head | None) -> Break | None:
    """Walk a chain's rows in seq order: (seq, stored hash, fields). The first broken link, or None.

    Changed content or a changed hash fails that event's hash; a deleted event leaves a gap in the
    numbers (or, at the end, fewer events than the head says); an inserted event has no place in the
    numbers or does not link to its predecessor; a reordered one links to the wrong predecessor."""
    prev, expected = GENESIS, 1
    for seq, stored, fields in rows:
        if seq != expected:
            if seq > expected:
                return Break(chain, expected, f"events {expected}-{seq - 1} are missing (deleted)"
                             if seq - 1 > expected else f"event {expected} is missing (deleted)")
            return Break(chain, seq, "sequence number out of order or repeated")
        if stored != link(prev, seq, canonical(fields)):
            return Break(chain, seq, "content or hash does not match the chain (changed, inserted or reordered)")
        prev, expected = stored, seq + 1
    last = expected - 1
    if head is None:
        return Break(chain, None, "the chain's head record is missing") if last else None
    if head.seq != last:
        if head.seq > last:
            return Break(chain, last + 1, f"the head records {head.seq} events but only {last} remain "
                                          "(deleted at the end)")
        return Break(chain, head.seq + 1, f"events after {head.seq}, the last the head records, were added "
                                          "outside the application (inserted)")
    if head.hash != prev:
        return Break(chain, last or None, "the head's hash does not match the last event (changed)")
    return None
