"""The app's side of a phone call, for the Voice tests: its phone legs and the calls made for callbacks."""
from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select

from ipoa.adapters.orm import audit_events, calls, handler_availability, phone_legs, timers, users

CNH_LINE = "+441632960101"
CHS_LINE = "+441632960105"
ASC_LINE = "+441632960103"
FCP_LINE = "+441632960102"
EDT_LINE = "+441632960104"
CALLER = "+447700900123"
OTHER_CALLER = "+447700900456"


def legs(svc) -> list:
    with svc.uow() as uow:
        return uow.session.execute(select(phone_legs).order_by(phone_legs.c.id)).all()


def leg(svc, call_sid: str):
    with svc.uow() as uow:
        return uow.session.execute(select(phone_legs).where(phone_legs.c.call_sid == call_sid)).one()


def all_calls(svc) -> list:
    with svc.uow() as uow:
        return uow.session.execute(select(calls).order_by(calls.c.id)).all()


def audit_of(svc, ref: str) -> list:
    with svc.uow() as uow:
        return uow.session.execute(select(audit_events).where(audit_events.c.call_ref == ref)
                                   .order_by(audit_events.c.seq)).all()


def timers_of(svc, ref: str) -> list:
    with svc.uow() as uow:
        return uow.session.execute(select(timers).where(timers.c.call_ref == ref)
                                   .order_by(timers.c.created_at)).all()


def taking_calls(svc, username: str, *, seen=True) -> None:
    """The user takes calls, and (seen) has been seen just now: available to answer."""
    from ipoa.service import call_takers

    with svc.uow() as uow:
        user_id, role = uow.session.execute(select(users.c.id, users.c.role).where(users.c.username == username)).one()
        if seen:
            uow.session.execute(users.update().where(users.c.id == user_id).values(last_seen_at=svc.clock.now()))
        uow.commit()
    call_takers.set_taking_calls(svc, user_id, role, True)


def availability_rows(svc) -> list:
    with svc.uow() as uow:
        return uow.session.execute(select(handler_availability)).all()


def with_line(catalogue, code: str, **voice_changes):
    """The catalogue with one centre's line changed (voice_changes: CentreVoice fields)."""
    directory = catalogue.directory
    centre = directory.centres[code]
    changed = replace(centre, voice=replace(centre.voice, **voice_changes))
    return replace(catalogue, directory=replace(directory, centres={**directory.centres, code: changed}))
