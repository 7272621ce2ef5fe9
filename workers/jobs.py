"""RQ jobs. They take ids, never ORM objects, and run inside the worker's app."""
from __future__ import annotations

from flask import current_app

from ipoa.service import sms


def _svc():
    return current_app.extensions["ipoa"]


def send_sms(sms_id: str, ticket: str | None = None) -> str:
    """One text. A transient failure does not fail the job: the text records its back-off and the relay
    hands it over again when that is over (ipoa.service.sms), so no RQ retry or scheduler is involved.
    `ticket`: set when the relay hands a text over again (see sms.send)."""
    return sms.send(_svc(), sms_id, ticket)


def send_sms_batch(sms_ids: list[str], ticket: str | None = None) -> dict[str, str]:
    """Texts handed over together. Each is sent as send_sms would; one that fails transiently waits out
    its own back-off, holding up neither the others nor this job."""
    svc = _svc()
    return {sid: sms.send(svc, sid, ticket) for sid in sms_ids}


def fire_timers(timer_ids: list[str]) -> dict[str, str]:
    """Due SLA timers handed over by the scheduler; each fires once (see ipoa.service.timers)."""
    from ipoa.service import timers

    return timers.fire_many(_svc(), timer_ids)
