"""RQ jobs. They take ids, never ORM objects, and run inside the worker's app."""
from __future__ import annotations

from flask import current_app
from rq import Queue, get_current_job

from ipoa.adapters.queue import enqueue_sms_retry
from ipoa.adapters.sms_gateway import TransientSmsError
from ipoa.service import sms


def _svc():
    return current_app.extensions["ipoa"]


def send_sms(sms_id: str) -> str:
    return sms.send(_svc(), sms_id)


def send_sms_batch(sms_ids: list[str]) -> dict[str, str]:
    """Texts handed over together. Each is sent as send_sms would; one that fails transiently goes to a
    job of its own with back-off, so it holds up neither the others nor this job."""
    job = get_current_job()
    queue = Queue(job.origin, connection=job.connection)
    outcome = {}
    for sid in sms_ids:
        try:
            outcome[sid] = sms.send(_svc(), sid)
        except TransientSmsError:
            enqueue_sms_retry(queue, sid)
            outcome[sid] = "retrying"
    return outcome


def fire_timers(timer_ids: list[str]) -> dict[str, str]:
    """Due SLA timers handed over by the scheduler; each fires once (see ipoa.service.timers)."""
    from ipoa.service import timers

    return timers.fire_many(_svc(), timer_ids)
