"""Hands committed outbox messages to RQ. Job ids derive from message ids, so a re-published message
whose job is still waiting is not queued twice."""
from __future__ import annotations

from rq import Queue
from rq.exceptions import DuplicateJobError

QUEUE_NAME = "ipoa"
JOB_PATH = "workers.jobs.process_outbox_message"


def job_id(message_id: str) -> str:
    return f"outbox-{message_id}"


class RQPublisher:
    def __init__(self, connection_factory):
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


class NullPublisher:
    """For tools that commit without a queue (CLI seeding in tests); the sweep publishes later."""

    def publish(self, message_ids: list[str]) -> None:
        return None
