"""Deployed workflow versions, kept in the database so a call can finish on the version it started on
even after workflows/ has moved on."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..domain.catalogue import parse_workflow
from ..domain.errors import WorkflowError
from ..domain.workflow import WorkflowDefinition
from .orm import workflow_definitions as table


def deploy(session: Session, definitions: list[WorkflowDefinition], now: datetime) -> list[str]:
    """Record each definition not yet deployed; a line for each ("deployed call v2")."""
    return [f"deployed {d.name} v{d.version}" for d in deploy_new(session, definitions, now)]


def deploy_new(session: Session, definitions: list[WorkflowDefinition], now: datetime) -> list[WorkflowDefinition]:
    """Record each definition not yet deployed and return those (`init` records a security event for
    each). A changed definition under a deployed version number is refused: calls pinned to that
    version would silently change behaviour."""
    done: list[WorkflowDefinition] = []
    for d in definitions:
        row = session.execute(select(table.c.checksum).where(
            table.c.name == d.name, table.c.version == d.version)).first()
        if row is None:
            session.execute(table.insert().values(
                name=d.name, version=d.version, checksum=d.checksum, body=d.raw, source=d.source,
                deployed_at=now))
            done.append(d)
        elif row.checksum != d.checksum:
            raise WorkflowError(
                f"{d.source}: {d.name} v{d.version} differs from the deployed v{d.version}; "
                f"calls may be pinned to it, so give the changed definition a new version number")
    return done


def marker(session: Session) -> tuple:
    """Changes whenever a version is deployed: tells a process its engine is out of date."""
    return tuple(session.execute(select(func.count(), func.max(table.c.id))).one())


def load_all(session: Session) -> list[WorkflowDefinition]:
    rows = session.execute(select(table.c.name, table.c.version, table.c.body)
                           .order_by(table.c.name, table.c.version)).all()
    return [parse_workflow(r.body, f"deployed {r.name} v{r.version}") for r in rows]
