"""The telephony measures from plain phone legs (docs/domain.md, "Telephony measures";
ipoa/domain/telephony/measures.py): what counts as offered, answered within 60 s, abandoned, the average
speed to answer, the longest wait and the callbacks made in time, at the edges (5 s and 60 s exactly, an
overflow, out of hours, no calls), and properties over any mix of legs."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace as Row

from hypothesis import given, settings
from hypothesis import strategies as st

from ipoa.domain.catalogue import load_catalogue
from ipoa.domain.reporting.workflow_terms import callback_terms
from ipoa.domain.telephony import legs as L
from ipoa.domain.telephony.measures import (
    TelephonyTargets,
    by_centre,
    phone_measures,
    seconds_text,
    verdicts,
)
from tests.helpers.properties import examples

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=2)
PROMISE = timedelta(minutes=20)
ROOT = Path(__file__).resolve().parents[2]


def leg(centre="CNH", *, queue="CNH", wait=None, outcome=None, enqueued=True, call_ref=None, overflowed_from=None,
        arrived=T0):
    """A leg that rang at `arrived`, entered `queue` 2 s later (if `enqueued`) and ended `wait` seconds after
    that as `outcome` (None: still waiting)."""
    enqueued_at = arrived + timedelta(seconds=2) if enqueued else None
    end = enqueued_at + timedelta(seconds=wait) if enqueued_at is not None and wait is not None else None
    answered = end if outcome == L.ANSWERED else None
    hung_up = end if outcome in (L.ABANDONED, L.SHORT_ABANDON) else None
    left = end if outcome in (L.ANSWERED, L.ABANDONED, L.SHORT_ABANDON, L.QUEUE_FAILED, L.OVERFLOW_DIAL) else None
    return Row(centre=centre, queue=queue if enqueued or outcome == L.OVERFLOW_DIAL else None,
               overflowed_from=overflowed_from, arrived_at=arrived, enqueued_at=enqueued_at, answered_at=answered,
               left_queue_at=left, hung_up_at=hung_up, outcome=outcome, call_ref=call_ref)


def measure(legs, callbacks=(), centre="CNH"):
    return phone_measures(centre, legs, callbacks, now=NOW, call_back_within=PROMISE)


def test_no_calls_gives_zero_counts_and_no_rates():
    m = measure([])
    assert (m.offered, m.answered, m.abandoned, m.longest_wait_seconds) == (0, 0, 0, None)
    assert m.answered_within_rate.pct is None and m.abandoned_rate.pct is None
    assert m.average_speed_to_answer is None and m.called_back_rate.pct is None
    judged = verdicts(m, TelephonyTargets(), abandoned_after=timedelta(seconds=5), call_back_within=PROMISE)
    assert [(v.value_text, v.met, v.status_text) for v in judged] == [("no data", None, "No data")] * 4


def test_sixty_seconds_exactly_is_answered_within_60_s_and_a_second_more_is_not():
    m = measure([leg(wait=60, outcome=L.ANSWERED), leg(wait=61, outcome=L.ANSWERED), leg(wait=4, outcome=L.ANSWERED)])
    assert (m.offered, m.answered, m.answered_within) == (3, 3, 2)
    assert m.average_speed_to_answer == (60 + 61 + 4) / 3
    assert m.longest_wait_seconds == 61


def test_a_hang_up_after_5_s_exactly_is_not_abandoned():
    """The leg's outcome is the core's end_in_queue at the hang-up (sla.yaml's threshold): 5 s exactly is a
    short abandon, offered but not counted as abandoned; 5.5 s is abandoned."""
    threshold = timedelta(seconds=5)
    exactly = L.end_in_queue(timedelta(seconds=5), threshold)
    just_over = L.end_in_queue(timedelta(seconds=5.5), threshold)
    assert (exactly, just_over) == (L.SHORT_ABANDON, L.ABANDONED)
    m = measure([leg(wait=5, outcome=exactly), leg(wait=5.5, outcome=just_over, call_ref="C1")])
    assert (m.offered, m.abandoned, m.short_abandons) == (2, 1, 1)
    assert m.abandoned_rate.pct == 50.0


def test_an_overflowed_caller_is_offered_to_the_centre_whose_queue_they_reached():
    """ASC's caller overflowed into CNH's queue: offered to (and answered by) CNH, overflowed for ASC; the
    wait runs from entering the first queue. One put through to another centre's number from the queue was
    offered to the centre whose queue it was in, and overflowed from it too."""
    into_queue = leg("ASC", queue="CNH", overflowed_from="ASC", wait=70, outcome=L.ANSWERED)
    by_dial = leg("ASC", queue="ASC", overflowed_from="ASC", wait=200, outcome=L.OVERFLOW_DIAL)
    at_once = leg("ASC", overflowed_from="ASC", enqueued=False, outcome=L.OVERFLOW_DIAL)
    rows = [into_queue, by_dial, at_once]
    asc, cnh = (measure(rows, centre=c) for c in ("ASC", "CNH"))
    assert (cnh.offered, cnh.answered, cnh.answered_within, cnh.overflowed) == (1, 1, 0, 0)
    assert (asc.offered, asc.answered, asc.abandoned, asc.overflowed) == (1, 0, 0, 3)
    assert asc.longest_wait_seconds == 200
    every = measure(rows, centre=None)
    assert (every.offered, every.answered, every.overflowed) == (2, 1, 3)


def test_out_of_hours_calls_are_not_offered_but_counted_for_the_centre_rung():
    closed = leg("ASC", enqueued=False, outcome=L.OUT_OF_HOURS)
    before = leg("ASC", enqueued=False, outcome=L.HUNG_UP_BEFORE_QUEUE)
    m = measure([closed, before], centre="ASC")
    assert (m.offered, m.out_of_hours, m.longest_wait_seconds) == (0, 1, None)


def test_still_waiting_counts_its_wait_so_far_in_the_longest_wait():
    waiting = leg(arrived=NOW - timedelta(seconds=92))  # entered the queue 90 s ago
    m = measure([waiting, leg(wait=10, outcome=L.ANSWERED)])
    assert (m.offered, m.still_waiting, m.answered, m.longest_wait_seconds) == (2, 1, 1, 90)


def test_a_queue_failure_is_offered_neither_answered_nor_abandoned():
    m = measure([leg(wait=30, outcome=L.QUEUE_FAILED, call_ref="C9")])
    assert (m.offered, m.answered, m.abandoned, m.not_held) == (1, 0, 0, 1)


def test_an_abandoned_call_is_called_back_in_time_when_its_callback_is_made_within_20_minutes():
    a, b, c = (leg(wait=30, outcome=L.ABANDONED, call_ref=ref) for ref in ("A", "B", "C"))
    withheld = leg(wait=40, outcome=L.ABANDONED, call_ref=None)
    hung_up = a.hung_up_at
    made = [Row(call_ref="A", at=hung_up + PROMISE),  # 20 minutes exactly: in time
            Row(call_ref="B", at=hung_up + PROMISE + timedelta(seconds=1)),  # a second late
            Row(call_ref="C", at=hung_up - timedelta(minutes=1)),  # before this hang-up: not for it
            Row(call_ref="Z", at=hung_up)]  # another call's
    m = measure([a, b, c, withheld], made)
    assert (m.abandoned, m.to_call_back, m.called_back_in_time, m.withheld) == (4, 3, 1, 1)
    assert round(m.called_back_rate.pct or 0, 1) == 33.3


def test_verdicts_judge_each_measure_against_its_target_in_words():
    rows = [leg(wait=10, outcome=L.ANSWERED) for _ in range(19)] + [leg(wait=90, outcome=L.ANSWERED)]
    rows += [leg(wait=30, outcome=L.ABANDONED, call_ref="A")]
    m = measure(rows, [Row(call_ref="A", at=rows[-1].hung_up_at + timedelta(minutes=5))])
    judged = {v.key: v for v in verdicts(m, TelephonyTargets(), abandoned_after=timedelta(seconds=5),
                                         call_back_within=PROMISE)}
    assert (judged["answered_within_60s"].value_text, judged["answered_within_60s"].met) == ("95.0%", True)
    assert (judged["abandoned"].value_text, judged["abandoned"].met, judged["abandoned"].status_text) == (
        "4.8%", False, "Target not met")  # 1 of 21 offered
    assert (judged["average_speed_to_answer"].value_text, judged["average_speed_to_answer"].met) == ("14 s", True)
    assert (judged["abandoned_called_back"].value_text, judged["abandoned_called_back"].met,
            judged["abandoned_called_back"].status_text) == ("100.0%", None, "No target set")
    assert judged["abandoned"].name == "Abandoned (after 5 s)"
    assert judged["abandoned_called_back"].name == "Abandoned calls called back within 20 min"


def test_seconds_text():
    assert [seconds_text(v) for v in (None, 0, 59.4, 60, 125)] == ["no data", "0 s", "59 s", "1 min 00 s",
                                                                  "2 min 05 s"]


def test_the_shipped_call_workflow_makes_a_callback_by_call_back_only():
    """Leaving awaiting_callback by cancelling is not a callback made."""
    terms = callback_terms(load_catalogue(ROOT / "workflows").workflows)
    assert (terms.waiting, terms.made) == ({"awaiting_callback"}, {"call_back"})


# -- properties -------------------------------------------------------------------------------------

OUTCOMES = st.sampled_from([None, L.ANSWERED, L.ABANDONED, L.SHORT_ABANDON, L.QUEUE_FAILED, L.OVERFLOW_DIAL])
CENTRES = st.sampled_from(["ASC", "CNH", "EDT"])


@st.composite
def legs_(draw):
    centre = draw(CENTRES)
    enqueued = draw(st.booleans())
    queue = draw(CENTRES) if enqueued else centre
    outcome = draw(OUTCOMES) if enqueued else draw(st.sampled_from([L.OUT_OF_HOURS, L.HUNG_UP_BEFORE_QUEUE]))
    wait = None if outcome is None else draw(st.floats(0, 3600, allow_nan=False))
    return leg(centre, queue=queue, enqueued=enqueued, outcome=outcome,
               wait=wait, call_ref=draw(st.sampled_from([None, "A", "B"])),
               overflowed_from=centre if queue != centre else None,
               arrived=T0 + timedelta(seconds=draw(st.integers(0, 3600))))


@settings(max_examples=examples(300))
@given(st.lists(legs_(), max_size=30))
def test_the_parts_never_exceed_the_whole_and_centres_add_up_to_all(rows):
    everyone = measure(rows, centre=None)
    per = by_centre(["ASC", "CNH", "EDT"], rows, [], now=NOW, call_back_within=PROMISE)
    for m in [everyone, *per.values()]:
        assert m.answered_within <= m.answered
        assert m.answered + m.abandoned + m.short_abandons + m.not_held + m.still_waiting <= m.offered
        assert m.called_back_in_time <= m.to_call_back <= m.abandoned
        for rate in (m.answered_within_rate, m.abandoned_rate, m.called_back_rate):
            assert rate.pct is None or 0 <= rate.pct <= 100
        if m.answered:
            assert m.longest_wait_seconds is not None and m.average_speed_to_answer is not None
            assert m.average_speed_to_answer <= m.longest_wait_seconds
    for field in ("offered", "answered", "answered_within", "abandoned", "short_abandons", "overflowed",
                  "out_of_hours", "to_call_back"):
        assert sum(getattr(m, field) for m in per.values()) == getattr(everyone, field), field
    assert everyone.offered == sum(1 for r in rows if r.enqueued_at is not None)


@settings(max_examples=examples(200))
@given(st.lists(legs_(), max_size=20), st.permutations(range(20)))
def test_the_order_of_the_legs_does_not_matter(rows, order):
    shuffled = [rows[i] for i in order if i < len(rows)]
    assert measure(rows, centre=None) == measure(shuffled, centre=None)
