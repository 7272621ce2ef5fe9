"""SQL conditions on a record's state by what it means in the record's own workflow version (its tags,
domain/meaning.py; the sets per version come from service/workflow_meaning.tagged_by_version)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_


def tagged(state_column: ColumnElement[Any], version_column: ColumnElement[Any],
           by_version: dict[int, frozenset[str]]) -> ColumnElement[bool]:
    """SQL: the record's state carries the tag in the record's own version."""
    groups: dict[frozenset[str], list[int]] = {}
    for version, states in by_version.items():
        groups.setdefault(states, []).append(version)
    if len(groups) == 1:  # every deployed version agrees: no need to look at the version column
        (states,) = groups
        return state_column.in_(sorted(states)) if states else false()
    return or_(*(and_(version_column.in_(versions), state_column.in_(sorted(states)))
                 for states, versions in groups.items() if states)) if any(groups) else false()
