"""The pure part of a rota change's gap warning (service/rota_warnings.py): the uncovered time a change
added (after's gaps less before's), and its words in UK time."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ipoa.service.rota_warnings import gap_words, length_words, opened


def at(day: int, hour: int, minute: int = 0, month: int = 12) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def test_nothing_new_is_nothing_opened():
    same = [(at(5, 20), at(6, 8))]
    assert opened(same, same) == []
    assert opened([(at(5, 0), at(7, 0))], [(at(5, 20), at(6, 8))]) == []  # a gap that shrank opened nothing
    assert opened([], []) == []


def test_new_time_is_opened_and_time_already_open_is_not():
    assert opened([], [(at(5, 20), at(6, 8))]) == [(at(5, 20), at(6, 8))]
    # The gap grew at both ends: only the new parts.
    assert opened([(at(5, 22), at(6, 2))], [(at(5, 20), at(6, 8))]) == [(at(5, 20), at(5, 22)), (at(6, 2), at(6, 8))]
    # Several gaps before, one long one after: the pieces between them.
    before = [(at(5, 8), at(5, 10)), (at(5, 12), at(5, 14))]
    assert opened(before, [(at(5, 9), at(5, 16))]) == [(at(5, 10), at(5, 12)), (at(5, 14), at(5, 16))]
    # Unsorted input, touching pieces merged.
    assert opened([], [(at(6, 8), at(6, 9)), (at(5, 20), at(6, 8))]) == [(at(5, 20), at(6, 9))]


def test_the_words_are_uk_times_and_real_hours():
    assert gap_words(at(5, 20), at(6, 8)) == "Sat 5 Dec 20:00 to Sun 6 Dec 08:00, 12 hours"
    # Summer: UK time is an hour ahead of UTC.
    summer = gap_words(at(1, 19, month=7), at(1, 20, 30, month=7))
    assert summer == "Wed 1 Jul 20:00 to Wed 1 Jul 21:30, 1 hour 30 minutes"
    # The night the clocks go back lasts 13 real hours from 20:00 to 08:00.
    night = gap_words(at(24, 19, month=10), at(25, 8, month=10))
    assert night == "Sat 24 Oct 20:00 to Sun 25 Oct 08:00, 13 hours"
    assert length_words(timedelta(minutes=45)) == "45 minutes"
    assert length_words(timedelta(hours=1)) == "1 hour"
