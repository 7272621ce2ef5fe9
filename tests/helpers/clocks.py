"""Helpers for the SLA clocks: the running timer of a clock, and a breach brought about as the scheduler
and the worker would (the FixedClock moved past the due time, the timer fired); the supervisor's re-route
through the API (the `api` fixture of tests/conftest.py)."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from ipoa.adapters import orm
from ipoa.service import timers as timer_service


def timer_id(svc, ref: str, kind: str, referral_id: str | None = None) -> str:
    """The running timer of that clock."""
    subject = (orm.timers.c.referral_id.is_(None) if referral_id is None
               else orm.timers.c.referral_id == referral_id)
    with svc.uow() as uow:
        return uow.session.execute(select(orm.timers.c.id).where(
            orm.timers.c.call_ref == ref, orm.timers.c.kind == kind, subject,
            orm.timers.c.stopped_at.is_(None))).scalar_one()


def due_at(svc, tid: str):
    """When that timer falls due (UTC)."""
    with svc.uow() as uow:
        return uow.session.execute(select(orm.timers.c.due_at).where(orm.timers.c.id == tid)).scalar_one()


def running_timers(svc, ref: str) -> list[tuple[str, str | None]]:
    with svc.uow() as uow:
        return sorted(uow.session.execute(select(orm.timers.c.kind, orm.timers.c.referral_id).where(
            orm.timers.c.call_ref == ref, orm.timers.c.stopped_at.is_(None))).all())


def breach(svc, clock, ref: str, kind: str, referral_id: str | None = None, *, late_minutes: int = 1) -> None:
    """Run the clock past the timer's due time and fire it, as the scheduler and worker would."""
    tid = timer_id(svc, ref, kind, referral_id)
    due = due_at(svc, tid)
    clock.set(due + timedelta(minutes=late_minutes))
    assert timer_service.fire(svc, tid) == "breached"


def reroute(api, ref: str, referral_id: str, body: dict, as_: str = "supervisor"):
    return api("POST", f"/api/v1/calls/{ref}/referrals/{referral_id}/reroute", body, as_=as_)
