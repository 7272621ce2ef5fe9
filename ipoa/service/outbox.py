"""The outbox relay: committed messages become worker jobs; what was left behind (Redis down at commit,
a crash between commit and hand-over, a relay killed mid-batch) is swept up from the table."""
from __future__ import annotations

import logging
import time
from datetime import timedelta

from sqlalchemy import select, update

from ..adapters.orm import outbox
from ..adapters.queue import OUTBOX_LIST, enqueue_sms
from . import sms

log = logging.getLogger(__name__)


def sweep(svc, enqueuer, older_than_seconds: int = 30, limit: int = 1000) -> int:
    cutoff = svc.clock.now() - timedelta(seconds=older_than_seconds)
    with svc.uow() as uow:
        ids = list(uow.session.scalars(
            select(outbox.c.id).where(outbox.c.processed_at.is_(None), outbox.c.created_at <= cutoff)
            .order_by(outbox.c.created_at).limit(limit)))
    if ids:
        enqueuer.publish(ids)
    return len(ids)


def relay_once(svc, enqueuer, block_seconds: float = 1.0, batch: int = 500) -> int:
    """Move the ids committed since the last call into jobs; wait up to block_seconds for the first."""
    conn = svc.redis()
    first = conn.blpop([OUTBOX_LIST], timeout=block_seconds) if block_seconds else conn.lpop(OUTBOX_LIST)
    if not first:
        return 0
    ids = [first[1] if isinstance(first, (list, tuple)) else first]
    more = conn.lpop(OUTBOX_LIST, batch - 1) or []
    ids = [i.decode() if isinstance(i, bytes) else i for i in ids + list(more)]
    enqueuer.publish(ids)
    return len(ids)


def sweep_texts(svc, queue) -> int:
    ids = sms.stuck(svc)
    if ids:
        enqueue_sms(queue, ids, attempt=f"-r{int(time.time())}")
    return len(ids)


def run_relay(svc, enqueuer, sweep_every: float = 10.0, stop=lambda: False) -> None:
    last_sweep = 0.0
    while not stop():
        try:
            if time.monotonic() - last_sweep >= sweep_every:
                n = sweep(svc, enqueuer)
                t = sweep_texts(svc, enqueuer.queue)
                if n or t:
                    log.info("relay swept %d event(s) and %d text(s) left behind", n, t)
                last_sweep = time.monotonic()
            relay_once(svc, enqueuer)
        except Exception:  # noqa: BLE001 - Redis or the database down: keep trying, the table keeps the truth
            log.warning("relay cycle failed; retrying", exc_info=True)
            time.sleep(1.0)


def process(svc, message_id: str, send_queue=None) -> bool:
    """Handle one committed event, once. Claiming it (processed_at) and recording the SMS it causes are
    one transaction, so a re-delivered job finds it done and does nothing, and a crash leaves neither."""
    now = svc.clock.now()
    with svc.uow() as uow:
        row = uow.session.execute(select(outbox.c.topic, outbox.c.payload).where(outbox.c.id == message_id)).first()
        if row is None:
            log.warning("outbox message %s not found", message_id)
            return False
        claimed = uow.session.execute(
            update(outbox).where(outbox.c.id == message_id, outbox.c.processed_at.is_(None))
            .values(processed_at=now, attempts=outbox.c.attempts + 1)).rowcount
        if not claimed:
            return False
        texts = sms.messages_for_event(svc, uow.session, message_id, row.topic, row.payload)
        uow.session.add_all(texts)
        uow.commit()
    # Codes and references only: the payload never holds a patient identifier.
    log.info("outbox %s topic=%s ref=%s sms=%d", message_id, row.topic, row.payload.get("ref"), len(texts))
    if texts and send_queue is not None:
        send_queue([t.id for t in texts])
    return True
