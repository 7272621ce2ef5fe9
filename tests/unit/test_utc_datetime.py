"""UTCDateTime's own SQLite bind processor (adapters/orm.py) writes exactly the text SQLAlchemy's would: the
TypeDecorator's process_bind_param followed by SQLite's DATETIME processor. Rows written either way (the ORM,
Core, adapters/prepared.py) must compare and sort as the same instants."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.types import TypeDecorator

from ipoa.adapters.orm import UTCDateTime

SQLITE = sqlite.dialect()
OURS = UTCDateTime().dialect_impl(SQLITE).bind_processor(SQLITE)


def sqlalchemys(value: datetime | None) -> str | None:
    """What the TypeDecorator's generic bind processor gives (the method UTCDateTime overrides on SQLite)."""
    generic = TypeDecorator.bind_processor(UTCDateTime().dialect_impl(SQLITE), SQLITE)
    assert generic is not None
    return generic(value)


offsets = st.integers(min_value=-23 * 60 + 1, max_value=23 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))
# Instants whose UTC reading stays within datetime's years 1-9999, in any fixed offset.
instants = st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=offsets)


@given(instants)
def test_the_same_text_as_sqlalchemys_processors_for_any_aware_instant(value):
    assert OURS is not None
    assert OURS(value) == sqlalchemys(value)


utc_instants = st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.just(UTC))
london_instants = st.datetimes(min_value=datetime(1980, 1, 1), max_value=datetime(2100, 12, 31),
                               timezones=st.just(ZoneInfo("Europe/London")), allow_imaginary=False)


@given(st.lists(st.one_of(instants, utc_instants, london_instants, st.none()), min_size=1, max_size=12),
       st.data())
def test_the_last_text_remembered_is_only_ever_an_equal_instants(values, data):
    """The processor remembers the last instant's text: a run of instants with repeats (the same instant in
    other offsets, a naive one in between) still gives each its own text."""
    assert OURS is not None
    run = [*values, *data.draw(st.lists(st.sampled_from(values), max_size=12))]
    for value in run:
        if value is not None and data.draw(st.booleans()):
            value = value.astimezone(data.draw(offsets))  # the same instant, another offset
        assert OURS(value) == sqlalchemys(value)
        with pytest.raises(ValueError, match="naive"):
            OURS(datetime(2026, 12, 4, 16, 0))


def test_whole_seconds_keep_their_microseconds_and_none_stays_none():
    assert OURS is not None
    whole = datetime(2026, 12, 4, 16, 0, tzinfo=UTC)
    assert OURS(whole) == sqlalchemys(whole) == "2026-12-04 16:00:00.000000"
    assert OURS(None) is None


def test_a_naive_instant_is_refused_as_before():
    assert OURS is not None
    with pytest.raises(ValueError, match="naive"):
        OURS(datetime(2026, 12, 4, 16, 0))
    with pytest.raises(ValueError, match="naive"):
        sqlalchemys(datetime(2026, 12, 4, 16, 0))


READ = UTCDateTime().dialect_impl(SQLITE).result_processor(SQLITE, None)


def sqlalchemys_read(text: str | None) -> datetime | None:
    """What SQLAlchemy's processors give a DATETIME column's text: SQLite's, then process_result_value."""
    generic = TypeDecorator.result_processor(UTCDateTime().dialect_impl(SQLITE), SQLITE, None)
    assert generic is not None
    return generic(text)


@given(instants)
def test_an_instant_written_reads_back_as_sqlalchemys_processors_read_it(value):
    assert OURS is not None and READ is not None
    text = OURS(value)
    assert READ(text) == sqlalchemys_read(text) == value
    assert READ(text).tzinfo is UTC


@pytest.mark.parametrize("text", [
    "2026-12-05", "2026-12-05 01:02", "2026-12-05 01:02:03", "2026-12-05T01:02:03.5", "2026-12-05 01:02:03.123",
    "2026-12-05 01:02:03+01:00", "2026-12-05 01:02:03Z", None])
def test_text_written_otherwise_reads_as_sqlalchemys_processors_read_it(text):
    """A date alone, an offset of its own, fewer digits: what another writer (a migration, a hand) may leave."""
    assert READ is not None
    assert READ(text) == sqlalchemys_read(text)
    assert text is None or READ(text).tzinfo is UTC


def test_the_hour_london_repeats_is_written_as_two_instants():
    """Datetimes in one zone compare by their wall-clock fields, fold ignored: 01:30 on the last Sunday of
    October, before and after the clocks go back, are "equal" but an hour apart."""
    assert OURS is not None
    london = ZoneInfo("Europe/London")
    first, second = (datetime(2026, 10, 25, 1, 30, tzinfo=london, fold=fold) for fold in (0, 1))
    assert first == second  # (as Python compares them)
    texts = [OURS(first), OURS(second), OURS(first.astimezone(UTC)), OURS(second.astimezone(UTC)), OURS(first)]
    assert texts == ["2026-10-25 00:30:00.000000", "2026-10-25 01:30:00.000000", "2026-10-25 00:30:00.000000",
                     "2026-10-25 01:30:00.000000", "2026-10-25 00:30:00.000000"]
    assert texts[:2] == [sqlalchemys(first), sqlalchemys(second)]


def test_postgresql_keeps_sqlalchemys_own_processing():
    dialect = postgresql.dialect()
    ours = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    generic = TypeDecorator.bind_processor(UTCDateTime().dialect_impl(dialect), dialect)
    moment = datetime(2026, 12, 4, 16, 0, tzinfo=timezone(timedelta(hours=1)))
    assert (ours(moment) if ours else moment) == (generic(moment) if generic else moment)
    read = UTCDateTime().dialect_impl(dialect).result_processor(dialect, None)
    generic_read = TypeDecorator.result_processor(UTCDateTime().dialect_impl(dialect), dialect, None)
    assert (read(moment) if read else moment) == (generic_read(moment) if generic_read else moment)
