"""The JSON columns' writer (adapters/json_text.py): orjson where it can, json.dumps where it cannot, and
every value read back by json.loads (the columns' reader, unchanged) equal to what json.dumps's text gives."""
from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipoa.adapters import json_text

scalars = st.one_of(
    st.none(), st.booleans(), st.text(),
    st.integers(),  # beyond 64 bits too: json.dumps writes those
    st.floats(allow_nan=False, allow_infinity=False),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=8), inner, max_size=4),
        st.dictionaries(st.integers(), inner, max_size=3),  # keys json.dumps writes as text; orjson refuses
    ),
    max_leaves=20,
)


@given(values)
def test_what_is_written_reads_back_as_json_dumps_text_does(value):
    assert json.loads(json_text.dumps(value)) == json.loads(json.dumps(value))


def test_the_text_is_compact_utf_8_json():
    assert json_text.dumps({"service": "CRT", "why": "café", "n": [1, 2.5, None, True]}) == \
        '{"service":"CRT","why":"café","n":[1,2.5,null,true]}'


def test_what_orjson_refuses_is_written_by_json_dumps():
    big = 2 ** 64  # one past orjson's largest
    assert json_text.dumps({"n": big, 3: "x"}) == json.dumps({"n": big, 3: "x"})
    assert json.loads(json_text.dumps([-(2 ** 63) - 1]))[0] == -(2 ** 63) - 1


def test_what_json_dumps_refuses_is_refused_as_before():
    @dataclass
    class Point:
        x: int

    for value in ({"at": datetime(2026, 12, 5, tzinfo=UTC)}, [Point(1)], {"s": {1, 2}}):
        with pytest.raises(TypeError):
            json.dumps(value)
        with pytest.raises(TypeError):
            json_text.dumps(value)


def test_string_enums_are_written_by_their_value_as_json_dumps_writes_them():
    class Kind(enum.StrEnum):
        REFER = "refer"

    assert json.loads(json_text.dumps({"kind": Kind.REFER})) == {"kind": "refer"}
