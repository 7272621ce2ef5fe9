"""UTCDateTime's own SQLite bind processor (adapters/orm.py) writes exactly the text SQLAlchemy's would: the
TypeDecorator's process_bind_param followed by SQLite's DATETIME processor. Rows written either way (the ORM,
Core, adapters/prepared.py) must compare and sort as the same instants."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

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


def test_postgresql_keeps_sqlalchemys_own_processing():
    dialect = postgresql.dialect()
    ours = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    generic = TypeDecorator.bind_processor(UTCDateTime().dialect_impl(dialect), dialect)
    moment = datetime(2026, 12, 4, 16, 0, tzinfo=timezone(timedelta(hours=1)))
    assert (ours(moment) if ours else moment) == (generic(moment) if generic else moment)
