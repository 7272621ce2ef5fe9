"""The hash chain (domain/audit_chain.py) without I/O: sealing numbers and links events; verifying finds
the first changed, deleted, inserted or reordered one."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from ipoa.domain.audit_chain import GENESIS, Head, canonical, link, seal, verify

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@dataclass
class Ev:
    actor: str
    at: datetime
    data: dict
    seq: int | None = None
    hash: str | None = None


def fields(e: Ev) -> dict:
    return {"actor": e.actor, "at": e.at, "data": e.data}


def chain(n: int) -> tuple[list[Ev], Head]:
    events = [Ev(f"user{i}", T0 + timedelta(seconds=i), {"i": i, "note": "é"}) for i in range(n)]
    return events, seal(events, Head(0, GENESIS), fields)


def rows(events):
    return [(e.seq, e.hash, fields(e)) for e in events]


_instants = st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=1)), timezone(-timedelta(hours=5))]))
_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | _instants,
                     lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
                     | st.dictionaries(st.text(), inner, max_size=4), max_leaves=20)


@given(st.dictionaries(st.text(), _json, max_size=8))
def test_canonical_content_is_what_json_dumps_writes_with_the_chains_options(fields_):
    # canonical keeps json's C encoder rather than making one per call (json.dumps): the same bytes, so
    # every hash already stored still verifies.
    from ipoa.domain.audit_chain import _instant

    assert canonical(fields_) == json.dumps(fields_, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                                            default=_instant).encode()


def test_canonical_content_is_stable_across_key_order_and_time_zones():
    bst = timezone(timedelta(hours=1))
    a = canonical({"b": 1, "a": {"y": [1, 2], "x": T0}})
    b = canonical({"a": {"x": T0.astimezone(bst), "y": (1, 2)}, "b": 1})
    assert a == b and b"2026-11-23T10:00:00.000000+00:00" in a


def test_sealing_numbers_and_links_the_events():
    events, head = chain(3)
    assert [e.seq for e in events] == [1, 2, 3]
    assert events[0].hash == link(GENESIS, 1, canonical(fields(events[0])))
    assert events[2].hash == link(events[1].hash, 3, canonical(fields(events[2])))
    assert head == Head(3, events[2].hash)
    # Sealing more continues the chain.
    more = [Ev("later", T0, {})]
    assert seal(more, head, fields) == Head(4, more[0].hash) and more[0].seq == 4
    assert verify("audit", rows(events + more), Head(4, more[0].hash)) is None


def test_an_intact_chain_verifies_and_an_empty_one_too():
    events, head = chain(5)
    assert verify("audit", rows(events), head) is None
    assert verify("audit", [], Head(0, GENESIS)) is None
    assert verify("audit", [], None) is None


def test_a_changed_event_breaks_the_chain_there():
    events, head = chain(5)
    events[2].actor = "nobody"
    problem = verify("audit", rows(events), head)
    assert problem.seq == 3 and "changed" in problem.problem


def test_a_changed_time_breaks_it_too():
    events, head = chain(5)
    events[1].at -= timedelta(hours=3)
    assert verify("audit", rows(events), head).seq == 2


def test_a_deleted_event_leaves_a_gap():
    events, head = chain(5)
    del events[1]
    problem = verify("audit", rows(events), head)
    assert problem.seq == 2 and "deleted" in problem.problem


def test_deleting_the_last_events_is_caught_by_the_head():
    events, head = chain(5)
    problem = verify("audit", rows(events[:3]), head)
    assert problem.seq == 4 and "deleted at the end" in problem.problem


def test_an_inserted_event_is_caught_even_with_a_correct_hash():
    events, head = chain(3)
    forged = Ev("forger", T0, {})
    seal([forged], head, fields)  # a perfect link after the last event, but the head was not moved
    problem = verify("audit", rows(events + [forged]), head)
    assert problem.seq == 4 and "inserted" in problem.problem


def test_reordered_events_link_to_the_wrong_predecessor():
    events, head = chain(5)
    events[1].seq, events[2].seq = events[2].seq, events[1].seq
    ordered = sorted(rows(events), key=lambda r: r[0])
    assert verify("audit", ordered, head).seq == 2


def test_a_missing_head_beside_events_is_a_break():
    events, _ = chain(2)
    problem = verify("audit", rows(events), None)
    assert problem.seq is None and "head" in problem.problem


@given(n=st.integers(1, 30), victim=st.integers(0, 29), how=st.sampled_from(["change", "delete", "swap"]))
def test_any_single_tampering_is_found_at_or_before_it(n, victim, how):
    events, head = chain(n)
    i = victim % n
    if how == "change":
        events[i].data = {"i": -1}
    elif how == "delete":
        del events[i]
    else:
        j = (i + 1) % n
        if i == j:
            return
        events[i].seq, events[j].seq = events[j].seq, events[i].seq
    problem = verify("audit", sorted(rows(events), key=lambda r: r[0]), head)
    assert problem is not None and problem.seq is not None and problem.seq <= i + 1 + (how == "swap")
