"""The outbox relay: committed events are handled here, in the relay process, and the text messages they
cause become RQ send jobs; what was left behind (Redis down at commit, a crash between commit and
hand-over, a relay killed mid-batch) is swept up from the table.

Events are handled by the relay rather than by one RQ job each: most events cause no text at all, and a
job per event cost the worker four extra jobs per referral (see docs/performance.md, SMS). Handling a
batch is one transaction: the events are claimed (processed_at) and the messages they cause recorded
together, so a batch delivered twice, or handled by two relays at once, texts nobody twice, and a crash
leaves neither.

While a send job waits in the queue (the worker busy), the texts handled meanwhile are held and queued
together once it has started (Backlog): a job of several texts instead of a job each.

Texts held back (Twilio's 429, a time-out, a worker that died mid-send, a job lost with its worker) are
handed over again by the same loop, every second, as plain RQ jobs, when their next_attempt_at comes
(sweep_texts): nothing waits on RQ's scheduler."""
from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..adapters.rq_queue import OUTBOX_LIST, SMS_BATCH_SIZE, enqueue_sms_batches
from ..domain.sms.delivery import HANDOVER_LEASE_SECONDS
from ..log_redaction import redact  # an error's text may echo a row's values
from . import sms

if TYPE_CHECKING:
    from rq import Queue

    from ..bootstrap import Services
    from ..domain.sms.delivery import SmsMessage

log = logging.getLogger(__name__)

# An event whose handling keeps failing (a bug, bad data) is retried by the sweep this many times, then
# left with its last_error for an operator; it never blocks the events behind it.
MAX_ATTEMPTS = 10

SendQueue = Callable[[list[str]], None]


def _claim_and_record(svc: Services, ids: list[str]) -> list[tuple[str, str, dict[str, Any], list[SmsMessage]]]:
    """One transaction: claim the unclaimed events among ids and record the texts they cause."""
    now = svc.clock.now()
    with svc.uow() as uow:
        claimed = uow.outbox.claim(ids, now)
        handled = []
        order = {mid: i for i, mid in enumerate(ids)}
        rows = sorted(claimed, key=lambda r: order[r.id])
        sms.prepare(svc, uow, rows)
        sms.begin_batch(uow)
        # If their jobs are lost (a worker killed holding them), the relay hands them over again then.
        lost_after = now + timedelta(seconds=HANDOVER_LEASE_SECONDS)
        # The batch's texts go to the session together at the end (one flush, the ORM's INSERTs batched),
        # and its referrals' recipient choices in one statement: adding them event by event had every
        # later read flush them one at a time (docs/performance.md, SMS). Only events whose texts depend
        # on the texts recorded before them (sms.READS_TEXTS) see them added first.
        held: list[SmsMessage] = []
        for row in rows:
            if held and row.topic in sms.READS_TEXTS:
                uow.sms.add_all(held)
                held = []
            texts = sms.messages_for_event(svc, uow, row.id, row.topic, row.payload)
            for text in texts:
                text.next_attempt_at = text.next_attempt_at or lost_after
            held += texts
            handled.append((row.id, row.topic, row.payload, texts))
        sms.record_batch(uow, held)
        uow.commit()
    return handled


def _record_failure(svc: Services, message_id: str, exc: Exception) -> None:
    with svc.uow() as uow:
        uow.outbox.record_failure(message_id, redact(f"{type(exc).__name__}: {exc}")[:2000])
        uow.commit()


def handle(svc: Services, ids: list[str], send_queue: SendQueue | None = None) -> int:
    """Handle committed events, each once. Returns how many were handled by this call (0 for ids already
    handled or unknown). The texts they cause go to send_queue after the commit."""
    ids = list(dict.fromkeys(ids))
    if not ids:
        return 0
    try:
        handled = _claim_and_record(svc, ids)
    except Exception as exc:  # noqa: BLE001 - one bad event must not hold up the others
        if len(ids) > 1:
            log.warning("outbox batch of %d failed; handling one by one", len(ids))
            return sum(handle(svc, [mid], send_queue) for mid in ids)
        log.error("outbox %s failed: %s", ids[0], type(exc).__name__, exc_info=True)
        _record_failure(svc, ids[0], exc)  # swept again later, up to MAX_ATTEMPTS
        return 0
    sms_ids = []
    by_topic: defaultdict[str, int] = defaultdict(int)
    for mid, topic, payload, texts in handled:
        # Codes and references only: the payload never holds a patient identifier. Each event's line is a
        # debug one; at info, one line a batch counts its texts by topic (a line a text cost the relay
        # about a tenth of its CPU at load: docs/performance.md, SMS). Which event caused which text
        # stays in the table (sms_messages.outbox_id).
        if texts:
            by_topic[topic] += len(texts)
            log.debug("outbox %s topic=%s ref=%s sms=%d", mid, topic, payload.get("ref"), len(texts))
        sms_ids += [t.id for t in texts]
    if sms_ids:
        log.info("outbox batch: %d event(s) handled, %d text(s) (%s)", len(handled), len(sms_ids),
                 ", ".join(f"{topic} {n}" for topic, n in sorted(by_topic.items())))
    else:
        log.debug("outbox batch: %d event(s) handled, no text", len(handled))
    if sms_ids and send_queue is not None:
        send_queue(sms_ids)
    return len(handled)


def process(svc: Services, message_id: str, send_queue: SendQueue | None = None) -> bool:
    """Handle one committed event; False if it was already handled or does not exist."""
    return handle(svc, [message_id], send_queue) == 1


def rq_send_queue(svc: Services) -> SendQueue:
    from rq import Queue

    from ..adapters.rq_queue import QUEUE_NAME

    queue = Queue(QUEUE_NAME, connection=svc.redis())
    return lambda sms_ids: enqueue_sms_batches(queue, sms_ids)


def sweep(svc: Services, send_queue: SendQueue | None, older_than_seconds: int = 30, limit: int = 1000) -> int:
    """Handle events committed more than older_than_seconds ago and still unhandled (their id never
    reached the relay: Redis was down at commit, or a relay died holding them)."""
    cutoff = svc.clock.now() - timedelta(seconds=older_than_seconds)
    with svc.uow() as uow:
        ids = uow.outbox.unhandled(cutoff, MAX_ATTEMPTS, limit)
    return handle(svc, ids, send_queue) if ids else 0


def relay_once(svc: Services, send_queue: SendQueue | None, block_seconds: float = 1.0, batch: int = 200) -> int:
    """Handle the events committed since the last call; wait up to block_seconds for the first."""
    conn = svc.redis()
    first = conn.blpop([OUTBOX_LIST], timeout=block_seconds) if block_seconds else conn.lpop(OUTBOX_LIST)
    if not first:
        return 0
    popped: list[bytes | str] = [first[1] if isinstance(first, (list, tuple)) else first]
    more = conn.lpop(OUTBOX_LIST, batch - 1)  # with a count: a list, or None when the list is empty
    if isinstance(more, list):
        popped += more
    ids = [i.decode() if isinstance(i, bytes) else i for i in popped]
    # Popped ids are gone from Redis: if handling fails here the sweep finds the events unhandled.
    return handle(svc, ids, send_queue)


def sweep_texts(svc: Services, queue: Queue) -> int:
    """Hand over the texts due again (sms.due_for_handover): back-off over, job lost, worker dead. Plain
    jobs, with fresh ids (`-r<ticket>`: a killed worker's job stays behind in RQ under its old id), one
    batch per ticket."""
    def hand_over(claimed: list[tuple[str, str]]) -> None:
        by_ticket: dict[str, list[str]] = defaultdict(list)
        for sms_id, ticket in claimed:
            by_ticket[ticket].append(sms_id)
        for ticket, ids in by_ticket.items():
            stamp = int(datetime.fromisoformat(ticket).timestamp() * 1000)
            enqueue_sms_batches(queue, ids, attempt=f"-r{stamp}", ticket=ticket)

    return len(sms.due_for_handover(svc, hand_over))


class Backlog:
    """Texts recorded but not yet queued. Queued on the relay's next cycle when Redis was down as their
    events were handled, instead of waiting for the stuck-text sweep. And gathered while the queue is busy
    (`busy()`: a job waits that no worker has started): a send job queued now would only wait behind that
    one, so the texts that come meanwhile go together in the next job (one job's cost for several texts:
    docs/performance.md, SMS), queued as soon as the queue is free, with a full batch, or after `hold`
    seconds at most."""

    def __init__(self, enqueue: SendQueue, busy: Callable[[], bool] | None = None, hold: float = 1.0,
                 full: int = SMS_BATCH_SIZE):
        self._enqueue = enqueue
        self._busy = busy
        self._hold, self._full = hold, full
        self.ids: list[str] = []
        self._since = 0.0

    def __call__(self, sms_ids: list[str]) -> None:
        if sms_ids and not self.ids:
            self._since = time.monotonic()
        self.ids += sms_ids
        self.flush()

    def flush(self, *, now: bool = False) -> None:
        if not self.ids:
            return
        if (not now and self._busy is not None and len(self.ids) < self._full
                and time.monotonic() - self._since < self._hold and self._busy()):
            return  # held: they go with the next texts, once the job before them has started
        self._enqueue(self.ids)  # raises while Redis is down: the ids stay for the next cycle
        self.ids = []


# While texts are held (Backlog), the relay looks this often whether the queue is free.
HOLD_POLL_SECONDS = 0.005


def run_relay(svc: Services, sweep_every: float = 10.0, stop: Callable[[], bool] = lambda: False,
              texts_every: float = 1.0) -> None:
    """The relay's loop: committed events as they come (waiting up to a second for them), events left
    behind every sweep_every seconds, and texts due again (retries, lost jobs, a dead worker's) every
    texts_every seconds: one indexed query, so a held-back text goes within about a second of its time."""
    from rq import Queue

    from ..adapters.rq_queue import QUEUE_NAME

    last_sweep = last_texts = 0.0
    conn = svc.redis()
    queue = Queue(QUEUE_NAME, connection=conn)
    send_queue = Backlog(lambda sms_ids: enqueue_sms_batches(queue, sms_ids),
                         busy=lambda: bool(conn.llen(queue.key)))
    while not stop():
        try:
            send_queue.flush()
            if time.monotonic() - last_texts >= texts_every:
                t = sweep_texts(svc, queue)
                if t:
                    log.info("relay swept %d text(s) due again (back-off over, job lost or worker gone)", t)
                last_texts = time.monotonic()
            if time.monotonic() - last_sweep >= sweep_every:
                n = sweep(svc, send_queue)
                if n:
                    log.info("relay swept %d event(s) left behind", n)
                last_sweep = time.monotonic()
            relay_once(svc, send_queue, block_seconds=HOLD_POLL_SECONDS if send_queue.ids else 1.0)
        except Exception:  # noqa: BLE001 - Redis or the database down: keep trying, the table keeps the truth
            log.warning("relay cycle failed; retrying", exc_info=True)
            time.sleep(1.0)
    try:
        send_queue.flush(now=True)  # texts held at a stop go now, not a lease later (due_for_handover)
    except Exception:  # noqa: BLE001 - Redis down: they are handed over again from the table
        log.warning("relay stopping: %d held text(s) left for the hand-over sweep", len(send_queue.ids))
