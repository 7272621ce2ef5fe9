"""Reads for answering phone calls (issue 15, point 2; service/phone_answering.py): the screen pop's matches
for the waiting callers' numbers (registered professionals, open calls) and a call's phone legs (the leg a
handler logged it from, a caller who rang again about it, the hang-up it was made for)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from .orm import calls, phone_legs, professionals
from .voice_queue_queries import professionals_by_number


class OpenCallRow(NamedTuple):
    ref: str
    centre: str
    centre_path: str


class PhoneAnswerQueries:
    def __init__(self, session: Session):
        self.session = session

    def professionals_by_number(self, numbers: Iterable[str]) -> dict[str, tuple[str, str]]:
        """The active registered professional each number belongs to: number -> (name, service code)."""
        return professionals_by_number(self.session, numbers)

    def open_calls_by_number(self, numbers: Iterable[str], limit: int = 200) -> dict[str, list[OpenCallRow]]:
        """Each number's open calls (no closed_at), the latest first, with where they are."""
        wanted = sorted({n for n in numbers if n})
        if not wanted:
            return {}
        rows = self.session.execute(
            select(calls.c.caller_phone, calls.c.ref, calls.c.centre, calls.c.centre_path)
            .where(calls.c.caller_phone.in_(wanted), calls.c.closed_at.is_(None))
            .order_by(calls.c.logged_at.desc(), calls.c.id.desc()).limit(limit))
        found: dict[str, list[OpenCallRow]] = {}
        for number, ref, centre, path in rows:
            found.setdefault(str(number), []).append(OpenCallRow(str(ref), str(centre), str(path or centre)))
        return found

    def a_professional_number(self) -> str | None:
        """Any active registered professional's mobile (the demo's simulated professional caller)."""
        number = self.session.scalar(select(professionals.c.mobile).where(professionals.c.active.is_(True))
                                     .order_by(professionals.c.id).limit(1))
        return str(number) if number else None

    def latest_open_caller_mobile(self, centre: str) -> str | None:
        """The mobile of the latest open call's caller in a centre (the demo's caller who rings again)."""
        number = self.session.scalar(select(calls.c.caller_phone).where(
            calls.c.centre == centre, calls.c.closed_at.is_(None), calls.c.caller_phone.like("+447%"))
            .order_by(calls.c.logged_at.desc(), calls.c.id.desc()).limit(1))
        return str(number) if number else None

    def legs_of_call(self, ref: str, limit: int = 50) -> list[Any]:
        """The phone legs that belong to a call (call_ref: logged from it, or made for its hang-up) or were
        matched to it when the caller rang again (matched_call_ref), oldest first."""
        return list(self.session.execute(
            select(phone_legs.c.call_sid, phone_legs.c.centre, phone_legs.c.queue, phone_legs.c.caller_number,
                   phone_legs.c.arrived_at, phone_legs.c.enqueued_at, phone_legs.c.answered_at,
                   phone_legs.c.answered_by, phone_legs.c.left_queue_at, phone_legs.c.hung_up_at,
                   phone_legs.c.outcome, phone_legs.c.call_ref, phone_legs.c.matched_call_ref)
            .where(or_(phone_legs.c.call_ref == ref, phone_legs.c.matched_call_ref == ref))
            .order_by(phone_legs.c.arrived_at, phone_legs.c.id).limit(limit)))
