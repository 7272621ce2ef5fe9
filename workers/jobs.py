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
    outcomes recorded a few dozen at a time (sms.send_many)."""
    return sms.send_many(_svc(), sms_ids, ticket)


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
