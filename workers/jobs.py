"""RQ jobs. They take ids, never ORM objects, and run with the services of the process that runs them:
the worker's (workers/worker.py calls use() at start), or a test's."""
from __future__ import annotations

from datetime import datetime

from ipoa.bootstrap import Services
from ipoa.service import sms

_services: Services | None = None


def use(services: Services) -> None:
    """The services the jobs of this process run with."""
    global _services
    _services = services


def _svc() -> Services:
    if _services is None:
        raise RuntimeError("no services for the jobs: run them in `python -m workers.worker`, or call "
                           "workers.jobs.use(services) first")
    return _services


def send_sms(sms_id: str, ticket: str | None = None) -> str:
    """One text. A transient failure does not fail the job: the text records its back-off and the relay
    hands it over again when that is over (ipoa.service.sms), so no RQ retry or scheduler is involved.
    `ticket`: set when the relay hands a text over again (see sms.send)."""
    return sms.send(_svc(), sms_id, ticket)


def send_sms_batch(sms_ids: list[str], ticket: str | None = None) -> dict[str, str]:
    """Texts handed over together. Each is sent as send_sms would; one that fails transiently waits out
    its own back-off, holding up neither the others nor this job. The texts are claimed and their
    outcomes recorded a few dozen at a time (sms.send_many). When the sends are slow, the texts not yet
    claimed go back to the queue in smaller jobs, for the other workers (sms.HAND_BACK_AFTER_SECONDS)."""
    svc = _svc()
    return sms.send_many(svc, sms_ids, ticket, hand_back=lambda rest: _hand_back(svc, rest, ticket))


def _hand_back(svc: Services, sms_ids: list[str], ticket: str | None) -> None:
    from rq import Queue

    from ipoa.adapters.rq_queue import QUEUE_NAME, enqueue_sms_batches

    # A fresh job id for each (the relay's are made from the first text's id, and this job's may still
    # be in RQ's registries under it). At the front of the queue: the batch goes on before the jobs queued
    # after it, each part taken by the next worker free (this one, or another).
    stamp = f"-h{int(svc.clock.now().timestamp() * 1_000_000)}"
    enqueue_sms_batches(Queue(QUEUE_NAME, connection=svc.redis()), sms_ids, attempt=stamp, ticket=ticket,
                        size=sms.CLAIM_EVERY, at_front=True)


def fire_timers(timer_ids: list[str]) -> dict[str, str]:
    """Due SLA timers handed over by the scheduler; each fires once (see ipoa.service.timers)."""
    from ipoa.service import timers

    return timers.fire_many(_svc(), timer_ids)


def fire_timers_when_due(due: list[tuple[str, datetime]]) -> dict[str, str]:
    """Timers the scheduler handed over ahead, with their due instants: each fired at its instant, never
    before, once (see ipoa.service.timers.fire_when_due)."""
    import time

    from ipoa.adapters.rq_queue import TIMER_BATCH, TIMER_GRAIN_SECONDS
    from ipoa.service import timers

    return timers.fire_when_due(_svc(), due, time.sleep, TIMER_BATCH, TIMER_GRAIN_SECONDS)
