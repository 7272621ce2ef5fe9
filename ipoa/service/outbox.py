"""Outbox relay support: re-publishing what was left behind, and marking messages processed."""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select, update

from ..adapters.orm import outbox

log = logging.getLogger(__name__)


def sweep(svc, older_than_seconds: int = 30, limit: int = 1000) -> int:
    cutoff = svc.clock.now() - timedelta(seconds=older_than_seconds)
    with svc.uow() as uow:
        ids = list(uow.session.scalars(
            select(outbox.c.id).where(outbox.c.processed_at.is_(None), outbox.c.created_at <= cutoff)
            .order_by(outbox.c.created_at).limit(limit)))
    if ids:
        svc.publisher.publish(ids)
    return len(ids)


def process(svc, message_id: str) -> bool:
    """Mark one message processed, once: a re-delivered job finds it done and does nothing.
    Handlers for each topic (SMS, timers) hang off this as they are built."""
    now = svc.clock.now()
    with svc.uow() as uow:
        row = uow.session.execute(select(outbox.c.topic, outbox.c.payload).where(outbox.c.id == message_id)).first()
        if row is None:
            log.warning("outbox message %s not found", message_id)
            return False
        claimed = uow.session.execute(
            update(outbox).where(outbox.c.id == message_id, outbox.c.processed_at.is_(None))
            .values(processed_at=now, attempts=outbox.c.attempts + 1)).rowcount
        uow.commit()
    if claimed:
        # Codes and references only: the payload never holds a patient identifier.
        log.info("outbox %s topic=%s ref=%s", message_id, row.topic, row.payload.get("ref"))
    return bool(claimed)
