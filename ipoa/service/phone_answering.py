"""Handlers answering phone calls (issue 15, point 2; docs/telephony.md, "Answering a call"): the centre's
live phone queue with its screen pop (the caller's number matched to a registered professional and to open
calls), Answer (the caller put through to where the handler answers: service/phone_calls.bridge), Log a call
pre-filled from the answered leg, the leg linked to the call it was logged as in the same unit of work, and a
call's phone legs for its page. The caller's full number leaves this module only for the handler who
answered them, to pre-fill Log a call; everywhere else it is masked."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import phonenumbers

from ..adapters.phone_answer_queries import PhoneAnswerQueries
from ..adapters.phone_leg_store import PhoneLegStore
from ..adapters.voice_gateway import VoiceGatewayError
from ..adapters.voice_queue_queries import CALL_TAKING_ROLES, VoiceQueueQueries
from ..domain import access as policy
from ..domain.telephony.legs import PhoneLeg
from . import phone_calls
from .access import may_create_in, may_see_centre, subject
from .errors import Forbidden
from .inputs import InvalidInput
from .phone_queue import WaitingCaller, masked

if TYPE_CHECKING:
    from ..adapters.unit_of_work import UnitOfWork
    from ..bootstrap import Services
    from .access import Who

CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")


@dataclass(frozen=True)
class OpenCallLink:
    ref: str
    centre: str
    visible: bool  # the user may open it (the access policy): linked; otherwise only where it is


@dataclass(frozen=True)
class PhoneQueueRow:
    caller: WaitingCaller
    professional: tuple[str, str] | None  # a registered professional's (name, service code)
    open_calls: tuple[OpenCallLink, ...]


@dataclass(frozen=True)
class LegView:
    call_sid: str
    centre: str
    queue: str | None
    number_masked: str
    arrived_at: datetime
    enqueued_at: datetime | None
    answered_at: datetime | None
    answered_by: str | None
    ended_at: datetime | None
    outcome: str | None
    waited: timedelta | None
    rang_again: bool  # matched to this call when the caller rang again, rather than belonging to it


class NotWaiting(Exception):
    """Answer found the caller no longer waiting: the message says why, for the handler."""


class AnswerFailed(Exception):
    """The caller could not be put through (no phone set for the handler, Twilio refused): still waiting."""


def _may_answer(actor: Who, queue: str | None) -> bool:
    return actor.role in CALL_TAKING_ROLES and queue is not None and may_create_in(actor, queue)


def phone_queue_for(svc: Services, actor: Who, centre: str) -> list[PhoneQueueRow]:
    """The callers waiting in a centre's phone queue, in the order they will be answered, each with the
    screen pop: the centre's staff only, as its call queue (service/work_queues.queue_for)."""
    if not may_see_centre(actor, centre):
        raise Forbidden(f"You can see the phone queue of your own centre ({actor.centre or 'none'}) only.")
    now = svc.clock.now()
    with svc.uow() as uow:
        waiting = VoiceQueueQueries(uow.session).waiting(centre)
        numbers = [w.caller_number for w in waiting if w.caller_number]
        queries = PhoneAnswerQueries(uow.session)
        known = queries.professionals_by_number(numbers)
        open_calls = queries.open_calls_by_number(numbers)
    who = subject(actor)
    rows = []
    for position, w in enumerate(waiting, start=1):
        calls = open_calls.get(w.caller_number or "", [])
        links = tuple(OpenCallLink(c.ref, c.centre, policy.decide(
            who, policy.RecordFacts(centre=c.centre, centres=tuple(c.centre_path.split())), "view") is not None)
            for c in calls)
        caller = WaitingCaller(position=position, call_sid=w.call_sid, centre=w.centre, queue=w.queue,
                               number_masked=masked(w.caller_number), priority=w.priority,
                               caller_type=w.caller_type, enqueued_at=w.enqueued_at,
                               waited=max(now - w.enqueued_at, timedelta(0)), overflowed_from=w.overflowed_from,
                               matched_call_ref=w.matched_call_ref, open_calls=len(calls))
        rows.append(PhoneQueueRow(caller, known.get(w.caller_number or ""), links))
    return rows


def answer(svc: Services, actor: Who, call_sid: str, answer_on: str | None,
           twiml_for: Callable[[datetime], str]) -> None:
    """Answer: the caller put through to the TwiML `twiml_for` builds for the answer's instant (a <Dial> to
    `answer_on` naming this answer, built by the entry point with web/twiml.bridge_twiml; phone_calls.bridge).
    Forbidden: not this user's queue. NotWaiting: hung up, or answered by someone else first. AnswerFailed:
    nowhere to put them through, or Twilio refused (they still wait)."""
    with svc.uow() as uow:
        leg = PhoneLegStore(uow.session).get(call_sid)
    if leg is None:
        raise NotWaiting("That caller is no longer in the queue.")
    if not _may_answer(actor, leg.queue or leg.centre):  # no queue yet: still at the line's menu
        raise Forbidden(f"You answer the phone queue of your own centre ({actor.centre or 'none'}) only.")
    if not leg.in_queue:
        raise NotWaiting(_why_not_waiting(leg, actor.username))
    if not answer_on:
        raise AnswerFailed("No phone is set for you to answer calls on: ask an administrator to set it "
                           "(flask --app ipoa users update USERNAME --answer-on). The caller is still waiting.")
    try:
        bridged = phone_calls.bridge(svc, call_sid, actor.username, twiml_for)
    except VoiceGatewayError as exc:
        raise AnswerFailed(f"The call could not be put through to you ({exc}). The caller is still waiting "
                           "for the next handler.") from exc
    if not bridged:  # between our read and the answer's lock: someone else, or a hang-up
        with svc.uow() as uow:
            now_leg = PhoneLegStore(uow.session).get(call_sid)
        raise NotWaiting(_why_not_waiting(now_leg, actor.username) if now_leg else "That caller is no longer "
                                                                                    "in the queue.")


def _why_not_waiting(leg: PhoneLeg, username: str) -> str:
    if leg.answered_by and leg.answered_by != username:
        return "Another handler answered this caller first."
    if leg.answered_by == username:
        return "You have answered this caller already."
    if leg.hung_up_at is not None:
        return "The caller hung up before you answered."
    if leg.enqueued_at is None and leg.outcome is None:
        return "That caller has not reached the queue yet: they are still at the line's menu."
    return "That caller is no longer in the queue."


def national(number: str) -> str:
    """+447700900123 -> 07700 900123, as handlers type and read numbers."""
    try:
        return phonenumbers.format_number(phonenumbers.parse(number, "GB"), phonenumbers.PhoneNumberFormat.NATIONAL)
    except phonenumbers.NumberParseException:
        return number


def _answered_leg(uow: UnitOfWork, actor: Who, call_sid: str, *, lock: bool = False) -> tuple[PhoneLegStore,
                                                                                              PhoneLeg]:
    problem = "The phone call (phone_leg) is not one you answered and have not logged yet."
    if not CALL_SID.fullmatch(call_sid or ""):
        raise InvalidInput({"phone_leg": "The phone call (phone_leg) must be CA followed by 32 hexadecimal "
                                         "digits."})
    store = PhoneLegStore(uow.session)
    leg = store.get(call_sid, lock=lock)
    if leg is None or leg.answered_by != actor.username or leg.outcome != "answered" or leg.call_ref:
        raise InvalidInput({"phone_leg": problem})
    return store, leg


@dataclass(frozen=True)
class Intake:
    values: dict[str, str]  # Log a call's fields, pre-filled
    number_masked: str
    answered_at: datetime | None
    waited: timedelta


def intake_for(svc: Services, actor: Who, call_sid: str) -> Intake:
    """Log a call pre-filled from the phone call this handler answered: the caller's number (in full: the
    handler needs it), professional or public, and a registered professional's name. InvalidInput naming
    phone_leg for any other call."""
    with svc.uow() as uow:
        _, leg = _answered_leg(uow, actor, call_sid)
        known = PhoneAnswerQueries(uow.session).professionals_by_number([leg.caller_number or ""])
    values = {"phone_leg": leg.call_sid, "caller_type": leg.caller_type or ""}
    if leg.caller_number:
        values["caller_phone"] = national(leg.caller_number)
        if leg.caller_number in known:
            values["caller_name"], values["caller_type"] = known[leg.caller_number][0], "professional"
    return Intake(values, masked(leg.caller_number), leg.answered_at, leg.waited(svc.clock.now()))


def link_leg(uow: UnitOfWork, actor: Who, call_sid: str, ref: str, now: datetime) -> None:
    """In the unit of work that logs the call: the answered leg now belongs to it (phone_legs.call_ref).
    InvalidInput naming phone_leg, and nothing stored, for a leg this handler did not answer or has logged."""
    store, leg = _answered_leg(uow, actor, call_sid, lock=True)
    leg.call_ref = ref
    store.save(leg, now)


def legs_of_call(svc: Services, ref: str) -> list[LegView]:
    """A call's phone legs for its page (the page has applied the access policy), the number masked."""
    with svc.uow() as uow:
        rows = PhoneAnswerQueries(uow.session).legs_of_call(ref)
    views = []
    for r in rows:
        waited_until = r.answered_at or r.left_queue_at or r.hung_up_at
        views.append(LegView(
            call_sid=r.call_sid, centre=r.centre, queue=r.queue, number_masked=masked(r.caller_number),
            arrived_at=r.arrived_at, enqueued_at=r.enqueued_at, answered_at=r.answered_at,
            answered_by=r.answered_by, ended_at=r.hung_up_at, outcome=r.outcome,
            waited=(waited_until - r.enqueued_at) if r.enqueued_at and waited_until else None,
            # Matched to this call when it rang: the caller ringing again about it, whatever came of that leg
            # (a second hang-up is recorded on this same call, so its call_ref is this call's too).
            rang_again=r.matched_call_ref == ref))
    return views


def phone_leg(svc: Services, call_sid: str) -> PhoneLeg | None:
    """A phone leg as it stands (the demo's simulated caller needs to know where they are)."""
    with svc.uow() as uow:
        return PhoneLegStore(uow.session).get(call_sid)


def demo_caller_number(svc: Services, kind: str, centre: str) -> str | None:
    """The number a simulated caller rings from (web/phone_simulator.py): a registered professional's, or
    the caller of the centre's latest open call; None when there is none (the entry point makes one up)."""
    with svc.uow() as uow:
        queries = PhoneAnswerQueries(uow.session)
        if kind == "professional":
            return queries.a_professional_number()
        if kind == "known":
            return queries.latest_open_caller_mobile(centre)
    return None
