"""Handing committed outbox messages to the workers, in two steps so the web request pays one Redis
round trip: the unit of work appends the message ids to a Redis list (OutboxNotifier), and the relay
process turns them into RQ jobs (RQEnqueuer). Job ids derive from message ids, so a message handed
over twice (the sweep after a crash) is not queued twice while its job waits."""
from __future__ import annotations

from typing import Callable

import redis
from rq import Queue
from rq.exceptions import DuplicateJobError

QUEUE_NAME = "ipoa"
OUTBOX_LIST = "ipoa:outbox:committed"
JOB_PATH = "workers.jobs.process_outbox_message"


def job_id(message_id: str) -> str:
    return f"outbox-{message_id}"


class OutboxNotifier:
    """What the web app and the CLI use after a commit."""

    def __init__(self, connection_factory: Callable[[], redis.Redis]):
        self._connection_factory = connection_factory

    def publish(self, message_ids: list[str]) -> None:
        if message_ids:
            self._connection_factory().rpush(OUTBOX_LIST, *message_ids)


class RQEnqueuer:
    """What the relay uses: one RQ job per outbox message."""

    def __init__(self, connection_factory: Callable[[], redis.Redis]):
        self._connection_factory = connection_factory
        self._queue: Queue | None = None

    @property
    def queue(self) -> Queue:
        if self._queue is None:
            self._queue = Queue(QUEUE_NAME, connection=self._connection_factory())
        return self._queue

    def publish(self, message_ids: list[str]) -> None:
        for mid in message_ids:
            try:
                self.queue.enqueue(JOB_PATH, mid, job_id=job_id(mid), unique=True,
                                   result_ttl=3600, failure_ttl=7 * 24 * 3600)
            except DuplicateJobError:
                pass


SEND_SMS_PATH = "workers.jobs.send_sms"
# Back-off for transient gateway errors (20429, 5xx, time-outs): about 2 minutes in all.
SMS_RETRY_INTERVALS = [2, 5, 10, 20, 40, 60]


def enqueue_sms(queue: Queue, sms_ids: list[str], attempt: str = "") -> None:
    """One send job per message. `attempt` makes a fresh job id for the sweep's re-sends: a job whose
    worker was killed stays behind in RQ under the old id."""
    from rq import Retry

    for sid in sms_ids:
        try:
            queue.enqueue(SEND_SMS_PATH, sid, job_id=f"sms-{sid}{attempt}", unique=True, result_ttl=3600,
                          failure_ttl=7 * 24 * 3600,
                          retry=Retry(max=len(SMS_RETRY_INTERVALS), interval=SMS_RETRY_INTERVALS))
        except DuplicateJobError:
            pass
