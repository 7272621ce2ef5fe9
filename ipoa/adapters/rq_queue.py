"""Handing committed outbox events to the relay, and text messages to the workers. The web request pays
one Redis round trip: the unit of work appends the committed event ids to a Redis list (OutboxNotifier);
the relay process handles the events and queues the send jobs for the texts they cause (a job per text,
or per batch of texts handed over together). Job ids derive from message ids, so a text handed over
twice is not queued twice while its job waits, and a send job never sends a message that is not pending.
(The work queues people see, calls waiting per centre, are service/work_queues.py.)"""
from __future__ import annotations

import os
import select
import threading
from collections.abc import Callable
from datetime import datetime
from typing import cast

import redis
from rq import Queue
from rq.exceptions import DuplicateJobError

QUEUE_NAME = "ipoa"
# The SLA timers' jobs have a queue of their own, for a worker of their own (the Procfile's `timers`): a
# timer job sleeps until its timers' instants, up to the scheduler's PREFETCH_SECONDS (workers/scheduler.py),
# and a text must not wait behind it, nor a timer behind a batch of texts (docs/performance.md, texts'
# eighth step). A worker started with no --queues (make run's, the tests') takes both, the timers first.
TIMERS_QUEUE_NAME = "ipoa-timers"
WORKER_QUEUES = (TIMERS_QUEUE_NAME, QUEUE_NAME)
OUTBOX_LIST = "ipoa:outbox:committed"


class OutboxNotifier:
    """What the web app, the workers and the CLI use after a commit: the committed ids RPUSHed to
    OUTBOX_LIST without waiting for Redis's answer, on a connection of the notifier's own set to CLIENT REPLY
    OFF. Waiting for the answer (the round trip, and the other process's turn on a busy machine) was a fifth
    of a workflow step (docs/performance.md, "Engine core"). Not waiting loses nothing the outbox did not
    already cover: an id Redis never got (Redis down, a connection broken in between) leaves its event
    unhandled in the table, and the relay's sweep hands it over within 30 s (service/outbox.sweep), as when
    an RPUSH fails outright. The relay blocks on the list (BLPOP), so an id is handled as soon as Redis
    reads it.

    confirmed=True waits for each answer instead: the test suite's choice, because it reads the list from
    other connections at once, and Redis does not order one connection's commands against another's (an
    id sent unanswered can arrive after a read sent later on another connection)."""

    def __init__(self, connection_factory: Callable[[], redis.Redis], confirmed: bool = False):
        self._connection_factory = connection_factory
        self._confirmed = confirmed
        self._lock = threading.Lock()  # one connection for the process's threads: a command is one write
        self._connection: redis.Connection | None = None
        self._forks = -1  # the process's forks when the connection was made (_FORKS)
        self._poll: select.poll | None = None  # the connection's socket, to see whether Redis closed it

    def publish(self, message_ids: list[str]) -> None:
        if not message_ids:
            return
        if self._confirmed:
            self._connection_factory().rpush(OUTBOX_LIST, *message_ids)
            return
        with self._lock:
            try:
                # Packed here (redis-py's packer and health check cost about as much as the rest of the
                # hand-over's Python); sent by redis-py, which closes the connection on a failed write.
                self._open().send_packed_command([rpush_command(OUTBOX_LIST, message_ids)], check_health=False)
            except BaseException:
                self._close()  # the next publish connects afresh; this one's ids are left to the sweep
                raise

    def _open(self) -> redis.Connection:
        connection = self._connection
        if connection is not None and self._forks == _FORKS[0] and self._poll is not None:
            # Nothing is ever answered on this connection: something to read (or a hang-up) is Redis closing
            # it. One poll(2) with no wait, rather than redis-py's can_read (five system calls: a sixth of
            # what a workflow step asks the kernel for besides SQLite's, docs/performance.md, "Engine core").
            if not self._poll.poll(0):
                return connection
            self._close()
        elif connection is not None:
            self._close()
        # A forked process (an RQ job's work horse) gets a connection of its own: the parent's socket is
        # the parent's. Made from the pool's settings but not by the pool, which counts what it makes
        # against its limit (100) and never hears of one this notifier closes: after a hundred reconnections
        # (Redis restarted, a connection broken) every publish would fail.
        pool = self._connection_factory().connection_pool
        connection = cast("redis.Connection", pool.connection_class(**pool.connection_kwargs))
        connection.connect()
        connection.send_command("CLIENT", "REPLY", "OFF")
        sock = connection._sock
        if sock is None:  # (connect() leaves a socket or raises)
            raise redis.ConnectionError("the outbox notifier's connection has no socket")
        poll = select.poll()
        poll.register(sock, select.POLLIN | select.POLLPRI)  # (hang-ups and errors: always)
        self._connection, self._forks, self._poll = connection, _FORKS[0], poll
        return connection

    def _close(self) -> None:
        if self._connection is not None and self._forks == _FORKS[0]:
            self._connection.disconnect()
        self._connection = self._poll = None


def rpush_command(key: str, values: list[str]) -> bytes:
    """RPUSH key values... in Redis's protocol (RESP: an array of bulk strings, UTF-8), as redis-py packs it."""
    parts = [key.encode(), *(value.encode() for value in values)]
    return b"".join([b"*%d\r\n$5\r\nRPUSH\r\n" % (len(parts) + 1),
                     *(b"$%d\r\n%s\r\n" % (len(part), part) for part in parts)])


# How many times this process's line of descent has forked: a connection made before a fork is the parent's
# (counted in the child by os.register_at_fork, which costs nothing per publish; os.getpid() is a system call).
_FORKS = [0]


def _forked() -> None:
    _FORKS[0] += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


SEND_SMS_PATH = "workers.jobs.send_sms"
SEND_SMS_BATCH_PATH = "workers.jobs.send_sms_batch"
# Texts the relay hands over together go out in jobs of up to this many: RQ's own work per job (about
# 3-6 ms: dequeue, registries, result) is paid once per batch, not per text. An idle pipeline hands over
# one text at a time, which goes as a single job at once. 50 rather than 20: 0.66 of the client's rate
# rather than 0.62 (docs/performance.md, texts' third step); 200 rather than 50 once the timers had a
# worker of their own (TIMERS_QUEUE_NAME), so that no timer waits behind a batch (texts' eighth step).
# The job claims them a few dozen at a time, and when its sends are slow (Twilio's answer time) hands
# those it has not reached back to the queue in smaller jobs, for the other workers (service/sms.py,
# HAND_BACK_AFTER_SECONDS). A batch for a slow sender waits at most SMS_RATE_MAX_WAIT_SECONDS for its
# turns in all; the texts left go back to the table to wait.
SMS_BATCH_SIZE = 200
# No RQ Retry and no enqueue_in here: a text that must wait (Twilio's 429, a time-out) or whose worker
# died is recorded as such in the database (sms_messages.next_attempt_at) and the relay hands it over
# again with a plain enqueue when it is due (ipoa/service/sms.py). RQ's scheduler would need its lock,
# which a SIGKILLed worker holds for up to 10 minutes.


def enqueue_sms(queue: Queue, sms_ids: list[str], attempt: str = "", ticket: str | None = None) -> None:
    """Send jobs for messages, one per message (`attempt` makes a fresh job id for a text handed over
    again: a job whose worker was killed stays behind in RQ under the old id; `ticket`: see
    service.sms.send)."""
    for sid in sms_ids:
        try:
            queue.enqueue(SEND_SMS_PATH, *((sid, ticket) if ticket else (sid,)), job_id=f"sms-{sid}{attempt}",
                          unique=True, result_ttl=3600, failure_ttl=7 * 24 * 3600)
        except DuplicateJobError:
            pass


def enqueue_sms_batches(queue: Queue, sms_ids: list[str], attempt: str = "", ticket: str | None = None,
                        size: int = SMS_BATCH_SIZE, at_front: bool = False) -> None:
    """What the relay uses: a single text gets its own job; several go in batches of `size`. A batch job
    sends each message once, as a single job would. `at_front`: the jobs go before those waiting, in
    their order (a job handing its texts back: workers/jobs.send_sms_batch)."""
    if len(sms_ids) == 1 and not at_front:
        enqueue_sms(queue, sms_ids, attempt, ticket)
        return
    _enqueue_chunks(queue, SEND_SMS_BATCH_PATH, sms_ids, size, result_ttl=3600,
                    job_id=lambda chunk: f"sms-batch-{chunk[0]}{attempt}",
                    extra=(ticket,) if ticket else (), at_front=at_front)


FIRE_TIMERS_PATH = "workers.jobs.fire_timers"
TIMER_BATCH = 50  # due timers per job: fired in one transaction (bench/timers.py)


def enqueue_timer_batches(queue: Queue, timer_ids: list[str]) -> None:
    """What the scheduler uses: jobs of up to TIMER_BATCH due timers."""
    _enqueue_chunks(queue, FIRE_TIMERS_PATH, timer_ids, TIMER_BATCH, result_ttl=600)


FIRE_TIMERS_AT_PATH = "workers.jobs.fire_timers_when_due"
TIMER_JOB = 200  # timers handed over ahead per job (a read's: about 0.2 s of them), fired TIMER_BATCH at most at once
# A job's firings start at least this far apart: those due within it of each other share a transaction
# (its fixed cost is most of a small one's: bench/timers.py), at most this late.
TIMER_GRAIN_SECONDS = 0.02


def enqueue_timers_ahead(queue: Queue, due: list[tuple[str, datetime]], now: datetime | None = None) -> None:
    """What the scheduler uses: (timer id, due instant) pairs, soonest first, in jobs of up to TIMER_JOB;
    the worker fires each at its instant (service/timers.fire_when_due). Those already due by `now` (a
    scheduler or worker back after a restart, a requeue) go to the front of the queue, soonest first:
    they must not wait behind jobs sleeping until later instants."""
    overdue = [d for d in due if now is not None and d[1] <= now]
    ahead = due[len(overdue):]
    with queue.connection.pipeline() as pipe:
        chunks = [overdue[i:i + TIMER_JOB] for i in range(0, len(overdue), TIMER_JOB)]
        for chunk in reversed(chunks):  # each pushed in front of the one after it
            queue.enqueue(FIRE_TIMERS_AT_PATH, chunk, result_ttl=600, failure_ttl=7 * 24 * 3600, at_front=True,
                          pipeline=pipe)
        for i in range(0, len(ahead), TIMER_JOB):
            queue.enqueue(FIRE_TIMERS_AT_PATH, ahead[i:i + TIMER_JOB], result_ttl=600, failure_ttl=7 * 24 * 3600,
                          pipeline=pipe)
        pipe.execute()


def _enqueue_chunks(queue: Queue, path: str, ids: list[str], size: int, *, result_ttl: int,
                    job_id: Callable[[list[str]], str] | None = None, extra: tuple = (),
                    at_front: bool = False) -> None:
    """One job per chunk of ids, queued in one Redis round trip (at the front: the chunks still in order)."""
    chunks = [ids[i:i + size] for i in range(0, len(ids), size)]
    with queue.connection.pipeline() as pipe:
        for chunk in reversed(chunks) if at_front else chunks:  # at the front: each before the one after it
            queue.enqueue(path, chunk, *extra, job_id=job_id(chunk) if job_id else None, result_ttl=result_ttl,
                          failure_ttl=7 * 24 * 3600, pipeline=pipe, at_front=at_front)
        pipe.execute()
