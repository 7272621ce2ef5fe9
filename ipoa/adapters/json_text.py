"""The text written to the JSON columns (an audit event's data, an outbox event's payload, a call's route,
...): by orjson, and by the standard library's json for anything orjson will not take. Read back by the
standard library's json, as before.

Why: the engine's JSON columns were written by `json.dumps`, which builds an encoder for every value; that
was about 3% of a workflow step's instructions on SQLite (two or three values a step; docs/performance.md,
"Engine core"). orjson does the same work in C at a fraction of the cost.

What stays as it was:
- Every value written reads back equal, by the same json.loads as before (SQLAlchemy's default
  deserializer). orjson writes integers only within 64 bits, and reading with orjson would turn a larger one
  (which json.dumps wrote before, and still writes) into a float: so reading stays with json.loads.
- What orjson refuses (a dict key that is not a string, an integer beyond 64 bits) is written by json.dumps
  as before, and so is what neither writes (an instant, a dataclass: orjson is told to pass them on, and
  json.dumps refuses them with its TypeError as before).

What differs: the text is compact (no spaces after `,` and `:`) and in UTF-8 rather than `\\u` escapes. No
reader of these columns depends on that: they are parsed, never compared as text, and the audit chain
hashes its own canonical form (domain/audit_chain.canonical). A float that is not finite (refused in every
JSON body, entry/json_input.py) would be written as null rather than as the `NaN` PostgreSQL's json type
refuses.

tests/unit/test_json_text.py checks the two writers against each other."""
from __future__ import annotations

import json
from typing import Any

import orjson

# Instants and dataclasses go to `_refuse` and so to json.dumps, which refuses them as it always did.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _refuse(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(value: Any) -> str:
    """A JSON column's value as text (the engine's `json_serializer`, adapters/db.make_engine)."""
    try:
        return orjson.dumps(value, default=_refuse, option=_OPTIONS).decode()
    except TypeError:  # (orjson.JSONEncodeError is a TypeError)
        return json.dumps(value)
