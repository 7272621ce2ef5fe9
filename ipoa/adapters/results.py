"""What a statement's result says beyond its rows, typed: Session.execute returns a CursorResult for an
INSERT, UPDATE or DELETE, but is typed as returning a plain Result."""
from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, Result


def rowcount(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE matched."""
    return cast("CursorResult[Any]", result).rowcount


def inserted_id(result: Result[Any]) -> Any:
    """The primary key of the row a single-row INSERT added."""
    key = cast("CursorResult[Any]", result).inserted_primary_key
    return key[0] if key is not None else None
