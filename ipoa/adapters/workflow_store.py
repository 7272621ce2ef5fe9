"""Deployed workflow versions, kept in the database so a call can finish on the version it started on
even after workflows/ has moved on."""
from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ..domain.catalogue import parse_workflow
from ..domain.errors import WorkflowError
from ..domain.meaning import digest, meaning_of, with_legacy_meaning
from ..domain.workflow import WorkflowDefinition
from .orm import workflow_definitions as table


class Deployed(NamedTuple):
    definition: WorkflowDefinition
    meaning_only: bool  # an existing version whose tags or roles changed (its shape did not)


def deploy(session: Session, definitions: list[WorkflowDefinition], now: datetime) -> list[str]:
    """Record each definition not yet deployed; a line for each ("deployed call v2")."""
    return [describe_deploy(x) for x in deploy_new(session, definitions, now)]


def describe_deploy(x: Deployed) -> str:
    d = x.definition
    if x.meaning_only:
        return f"updated the tags and roles of {d.name} v{d.version} (its states and transitions unchanged)"
    return f"deployed {d.name} v{d.version}"


def deploy_new(session: Session, definitions: list[WorkflowDefinition], now: datetime) -> list[Deployed]:
    """Record each definition not yet deployed and return those (`init` records a security event for
    each). A changed definition under a deployed version number is refused: calls pinned to that
    version would silently change behaviour. The checksum covers the machine's shape only: a deployed
    version whose tags or roles alone differ (domain/meaning.py) has them replaced in place, as the
    meaning of states and triggers is the code's reading of them, not what a record may do; its
    deployed_at moves, so every process rebuilds its engine (marker)."""
    done: list[Deployed] = []
    for d in definitions:
        row = session.execute(select(table.c.checksum, table.c.body).where(
            table.c.name == d.name, table.c.version == d.version)).first()
        if row is None:
            session.execute(table.insert().values(
                name=d.name, version=d.version, checksum=d.checksum, body=d.raw, source=d.source,
                deployed_at=now))
            done.append(Deployed(d, False))
        elif row.checksum != d.checksum:
            raise WorkflowError(
                f"{d.source}: {d.name} v{d.version} differs from the deployed v{d.version}; "
                f"calls may be pinned to it, so give the changed definition a new version number")
        elif digest(meaning_of(row.body)) != d.meaning_checksum:
            session.execute(update(table).where(table.c.name == d.name, table.c.version == d.version)
                            .values(body=d.raw, source=d.source, deployed_at=now))
            done.append(Deployed(d, True))
    return done


def marker(session: Session) -> tuple:
    """Changes whenever a version is deployed or its tags change: tells a process its engine is out of
    date."""
    return tuple(session.execute(select(func.count(), func.max(table.c.id), func.max(table.c.deployed_at))).one())


def load_all(session: Session) -> list[WorkflowDefinition]:
    """Every deployed version. One stored before definitions carried tags and roles gets the meaning the
    code gave its names then (domain/meaning.with_legacy_meaning) until `init` replaces it."""
    rows = session.execute(select(table.c.name, table.c.version, table.c.body)
                           .order_by(table.c.name, table.c.version)).all()
    return [parse_workflow(with_legacy_meaning(r.body), f"deployed {r.name} v{r.version}") for r in rows]


class WorkflowStore:
    """The functions above on a unit of work's session (uow.workflows)."""

    def __init__(self, session: Session):
        self.session = session

    def deploy_new(self, definitions: list[WorkflowDefinition], now: datetime) -> list[Deployed]:
        return deploy_new(self.session, definitions, now)

    def load_all(self) -> list[WorkflowDefinition]:
        return load_all(self.session)
