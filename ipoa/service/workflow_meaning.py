"""The meaning of states and triggers (their tags and roles, domain/meaning.py) as the use cases need it:
for one record, from the workflow version it is on; for a query over many records, per deployed version.

A record stays on the version it started on (README.md, "Data an administrator edits"), and a renamed
state is a new version: two versions may give one state name different tags. So a check on a record asks
that record's version, and a filter over many records asks each deployed version for its own states
(tagged_by_version, turned into SQL by adapters/state_filters.tagged), which is exact; when every version
agrees, as usual, that is a plain `state IN (...)`."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..domain.workflow import WorkflowDefinition

if TYPE_CHECKING:
    from ..adapters.unit_of_work import UnitOfWork


def definition_of(svc: Any, record: Any, uow: UnitOfWork | None = None) -> WorkflowDefinition:
    """The definition of the version a call or referral is on. Inside a unit of work, pass it: the
    deployed versions are then read on its connection."""
    key = (record.workflow, record.workflow_version)
    engine = uow.engine(svc, needs=key) if uow is not None else svc.engine(needs=key)
    return engine.definition(*key)


def deployed(svc: Any, name: str) -> list[WorkflowDefinition]:
    """Every deployed version of a workflow, oldest first."""
    return sorted((d for d in svc.engine().definitions() if d.name == name), key=lambda d: d.version)


def tagged_by_version(svc: Any, name: str, tag: str) -> dict[int, frozenset[str]]:
    return {d.version: d.states_tagged(tag) for d in deployed(svc, name)}
