"""What a statement's result says beyond its rows, typed: Session.execute returns a CursorResult for an
INSERT, UPDATE or DELETE, but is typed as returning a plain Result."""
from __future__ import annotations

from typing import Any, TypeAlias, cast

from sqlalchemy import CursorResult, Result, Row

# A row or result of any width, its columns' types unsaid (Row and Result are generic over a
# TypeVarTuple: Row[Any] is a row of one column). Attribute access on a Row is typed Any.
AnyRow: TypeAlias = Row[*tuple[Any, ...]]
AnyResult: TypeAlias = Result[*tuple[Any, ...]]


def rowcount(result: AnyResult) -> int:
    """How many rows an UPDATE or DELETE matched."""
    return cast("CursorResult[Any]", result).rowcount


def inserted_id(result: AnyResult) -> Any:
    """The primary key of the row a single-row INSERT added."""
    key = cast("CursorResult[Any]", result).inserted_primary_key
    return key[0] if key is not None else None


def inserted_int_id(result: AnyResult) -> int:
    """The integer primary key (a numbered id) of the row a single-row INSERT added."""
    key = inserted_id(result)
    if not isinstance(key, int):
        raise RuntimeError(f"the INSERT gave no integer primary key (got {key!r})")
    return key
