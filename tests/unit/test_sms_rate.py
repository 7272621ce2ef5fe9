"""The senders' token bucket arithmetic (ipoa/domain/sms/rate.py) and its configuration."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipoa.domain.sms.rate import SenderRate, SenderRates, reserve
from tests.helpers.properties import examples


def sends(rate: SenderRate, times: list[float], max_wait: float = 1000.0) -> list[float]:
    """When each request asked at `times` may go (granted), following the bucket through."""
    tat, out = None, []
    for now in times:
        r = reserve(tat, now, rate, max_wait)
        assert r.granted
        tat = r.tat
        out.append(now + r.wait)
    return out


def test_one_a_second_spaces_texts_asked_for_together_a_second_apart():
    assert sends(SenderRate(1, 1), [100.0] * 4) == [100.0, 101.0, 102.0, 103.0]


def test_a_burst_goes_at_once_then_the_rate_holds():
    assert sends(SenderRate(2, 3), [0.0] * 6) == [0.0, 0.0, 0.0, 0.5, 1.0, 1.5]


def test_an_idle_sender_earns_back_its_burst_but_no_more():
    rate = SenderRate(1, 2)
    out = sends(rate, [0.0, 0.0, 0.0, 10.0, 10.0, 10.0])
    assert out == [0.0, 0.0, 1.0, 10.0, 10.0, 11.0]


@pytest.mark.parametrize("per_second,burst", [(1, 1), (5, 1), (3, 4), (0.5, 2)])
def test_no_window_ever_holds_more_than_burst_plus_rate_times_its_length(per_second, burst):
    rate = SenderRate(per_second, burst)
    asked = [i * 0.07 for i in range(60)]  # far faster than any of the rates
    went = sends(rate, asked)
    for i in range(len(went)):
        for j in range(i, len(went)):
            assert j - i + 1 <= burst + per_second * (went[j] - went[i]) + 1e-9


def test_a_turn_further_off_than_the_longest_wait_reserves_nothing():
    rate = SenderRate(1, 1)
    first = reserve(None, 0.0, rate, max_wait=0.5)
    refused = reserve(first.tat, 0.0, rate, max_wait=0.5)
    assert (refused.granted, refused.wait, refused.tat) == (False, 1.0, None)
    later = reserve(first.tat, 0.6, rate, max_wait=0.5)  # 0.4 s to go: within the wait
    assert later.granted and later.wait == pytest.approx(0.4) and later.tat == 2.0


def test_turns_taken_together_are_those_free_now_each_counted_as_used_at_the_latest():
    rate = SenderRate(40, 5)  # a turn every 0.025 s, 0.1 s of burst
    block = reserve(None, 0.0, rate, 1.0, count=20, within=0.05)
    # the first as alone; then while the bucket, charged 0.05 s late for the second, still has one free
    # now: four of the burst's five
    assert (block.granted, block.wait, block.count) == (True, 0.0, 4)
    assert block.tat == pytest.approx(0.05 + 3 * 0.025)
    # the next asks at once: nothing free now, so one turn, with its wait, as a text alone
    after = reserve(block.tat, 0.0, rate, 1.0, count=20, within=0.05)
    assert after.granted and after.count == 1 and after.wait == pytest.approx(0.025)
    # with the burst wider than the lateness, a block costs nothing of it: all five at once
    assert reserve(None, 0.0, SenderRate(10, 5), 1.0, count=20, within=0.05).count == 5


def test_a_sender_without_a_burst_never_gives_turns_ahead():
    rate = SenderRate(1, 1)  # a UK long code: one at a time, as before
    first = reserve(None, 0.0, rate, 5.0, count=20, within=0.05)
    assert (first.count, first.wait, first.tat) == (1, 0.0, 1.0)
    second = reserve(first.tat, 0.0, rate, 5.0, count=20, within=0.05)
    assert (second.count, second.wait, second.tat) == (1, 1.0, 2.0)


def test_a_refused_turn_takes_none_ahead():
    rate = SenderRate(1, 1)
    first = reserve(None, 0.0, rate, 0.5)
    refused = reserve(first.tat, 0.0, rate, 0.5, count=10, within=0.05)
    assert (refused.granted, refused.tat) == (False, None)


def test_a_blocks_texts_sent_at_the_last_moment_leave_no_more_than_the_burst_for_that_instant():
    """The worst case for turns taken ahead: one worker takes a block and sends its texts as late as it
    may; at that instant others take every turn the bucket then has free. Together: the burst, no more."""
    rate, within = SenderRate(400, 40), 0.05
    block = reserve(None, 0.0, rate, 1.0, count=20, within=within)
    assert block.count == 20
    at_once, tat = block.count - 1, block.tat  # the first went at 0; the other 19 go at 0.05
    while (turn := reserve(tat, within, rate, 1.0)).wait == 0:
        at_once, tat = at_once + 1, turn.tat
    assert rate.burst - 1 <= at_once <= rate.burst  # the last one may fall to floating point's rounding


@settings(max_examples=examples(300), deadline=None)
@given(per_second=st.sampled_from([1.0, 3.0, 20.0, 400.0]), burst=st.integers(1, 40),
       asks=st.lists(st.tuples(st.one_of(st.sampled_from([0.0, 0.01, 0.05]), st.floats(0, 0.3)),
                               st.one_of(st.sampled_from([1, 20]), st.integers(1, 20)),
                               st.lists(st.floats(0, 1), max_size=20)),
                     min_size=1, max_size=60))
def test_turns_taken_together_never_let_a_window_hold_more_than_burst_plus_rate_times_its_length(
        per_second, burst, asks):
    """Workers asking at any times for blocks of turns, each sending a block's extra texts at any instant
    up to `within` after asking (in any order among themselves): the texts' real times keep the promise,
    with no slack."""
    rate, within = SenderRate(per_second, burst), 0.05
    tat, now, went = None, 0.0, []
    for gap, count, lateness in asks:
        now += gap
        r = reserve(tat, now, rate, 1000.0, count, within)
        assert r.granted and 1 <= r.count <= count
        tat = r.tat
        went.append(now + r.wait)
        went += [now + within * (lateness[k] if k < len(lateness) else 1.0) for k in range(r.count - 1)]
    went.sort()
    for i in range(len(went)):
        for j in range(i, len(went)):
            assert j - i + 1 <= burst + per_second * (went[j] - went[i]) + 1e-6


def test_the_defaults_are_a_uk_long_code_one_a_second_and_senders_may_be_named():
    rates = SenderRates.from_environment({})
    assert rates.default == SenderRate(1, 1) and rates.max_wait == 2.0
    rates = SenderRates.from_environment({"SMS_RATE_PER_SECOND": "10", "SMS_SENDER_RATES":
                                          "+447700900999=1, MG0123=30/60", "SMS_RATE_MAX_WAIT_SECONDS": "0.5"})
    assert rates.default == SenderRate(10, 10)  # a second's worth of burst unless SMS_RATE_BURST says
    assert rates.for_sender("+447700900999") == SenderRate(1, 1)
    assert rates.for_sender("MG0123") == SenderRate(30, 60)
    assert rates.for_sender("+447700900000") == SenderRate(10, 10) and rates.max_wait == 0.5


@pytest.mark.parametrize("env,word", [
    ({"SMS_RATE_PER_SECOND": "fast"}, "SMS_RATE_PER_SECOND"),
    ({"SMS_RATE_PER_SECOND": "0"}, "more than 0"),
    ({"SMS_RATE_BURST": "0"}, "at least 1"),
    ({"SMS_RATE_BURST": "1.5"}, "whole number"),
    ({"SMS_SENDER_RATES": "+447700900999"}, "sender=rate"),
    ({"SMS_SENDER_RATES": "MG1=x/2"}, "MG1"),
    ({"SMS_RATE_MAX_WAIT_SECONDS": "-1"}, "SMS_RATE_MAX_WAIT_SECONDS"),
])
def test_a_bad_setting_is_refused_naming_it(env, word):
    with pytest.raises(ValueError, match=word):
        SenderRates.from_environment(env)
