"""The senders' token bucket arithmetic (ipoa/domain/sms/rate.py) and its configuration."""
from __future__ import annotations

import pytest

from ipoa.domain.sms.rate import SenderRate, SenderRates, reserve


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
