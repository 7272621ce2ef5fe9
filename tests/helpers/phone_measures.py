"""Phone legs for the telephony measures' tests, written by the webhooks' own use cases
(service/phone_calls.py), as Twilio's callbacks would."""
from __future__ import annotations

from sqlalchemy import select

from ipoa.adapters.orm import calls
from ipoa.service import calls as call_service
from ipoa.service import phone_calls
from tests.helpers.voice import CNH_LINE, leg
from tests.helpers.web import actor_for


def queued(svc, n: int, caller: str | None, line: str = CNH_LINE) -> str:
    """Caller n rings the line and presses 2 (the public): in the queue. Returns the CallSid."""
    sid = f"CA{n:032x}"
    phone_calls.incoming(svc, sid, line, caller or "")
    phone_calls.menu(svc, sid, "2", 1)
    return sid


def answer(svc, sid: str) -> None:
    assert phone_calls.answered(svc, sid, "handler")
    phone_calls.left_queue(svc, sid, "bridged")


def hang_up(svc, sid: str) -> None:
    phone_calls.left_queue(svc, sid, "hangup")


def call_back(svc, sid: str) -> str:
    """The handler calls back the caller of an abandoned leg (the call workflow's call_back). Its call ref."""
    ref = leg(svc, sid).call_ref
    assert ref is not None
    with svc.uow() as uow:
        version = uow.session.execute(select(calls.c.version).where(calls.c.ref == ref)).scalar_one()
    call_service.fire_call_trigger(svc, actor_for("CNH"), ref, {"trigger": "call_back", "expected_version": version})
    return ref


def a_few_calls(svc, clock, first: int = 900) -> None:
    """At CNH: one caller answered after 15 s, one who hung up after 40 s (abandoned), called back at once."""
    answered, gone = queued(svc, first, "+447700900301"), queued(svc, first + 1, "+447700900302")
    clock.advance(seconds=15)
    answer(svc, answered)
    clock.advance(seconds=25)
    hang_up(svc, gone)
    call_back(svc, gone)
