"""Twilio Voice webhooks (issue 15; docs/telephony.md): a call ringing a centre's number, the menu's key,
the queue's wait URL, the enqueue's action (the caller left the queue), the dial result (the <Dial> Answer
put the caller through with ended) and the call's status callbacks.
No sign-in: Twilio's signature is the credential, checked exactly as for the SMS webhooks (web/webhooks.py),
so an unsigned or mis-signed request gets a 403 and changes nothing. A malformed parameter gets a 400 naming
it, before anything is read or stored; never a 500 (Twilio would retry it, and the caller hear an error)."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from flask import Blueprint, Response, request

from ..domain.telephony import answers, legs
from ..domain.validation import day_in_range, text_problem, whole_number
from ..entry.request_context import services
from ..service import phone_calls
from .access import csrf
from .twiml import render
from .webhooks import verify_signature

bp = Blueprint("voice_webhooks", __name__, url_prefix="/webhooks/twilio/voice")
csrf.exempt(bp)
bp.before_request(verify_signature)

_CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
_NUMBER_MAX = 256  # Twilio's From and To: E.164, "anonymous", "client:<identity>", a SIP address
_DIGITS = re.compile(r"[0-9*#]?")
_SECONDS = re.compile(r"[0-9]{1,7}")


class _Bad(Exception):
    def __init__(self, field: str, problem: str):
        self.field, self.problem = field, problem


def _bad(exc: _Bad) -> Response:
    return Response(f"{exc.field}: {exc.problem}", status=400, mimetype="text/plain")


def _call_sid() -> str:
    sid = request.form.get("CallSid", "")
    if not _CALL_SID.fullmatch(sid):
        raise _Bad("CallSid", "must be CA followed by 32 hexadecimal digits")
    return sid


def _text(name: str) -> str:
    value = request.form.get(name, "")
    if len(value) > _NUMBER_MAX or text_problem(value):
        raise _Bad(name, f"at most {_NUMBER_MAX} characters, with no control character")
    return value


def _seconds(name: str) -> int | None:
    value = request.form.get(name)
    if value is None or value == "":
        return None
    if not _SECONDS.fullmatch(value):
        raise _Bad(name, "must be a whole number of seconds")
    return int(value)


def _timestamp(name: str) -> datetime | None:
    """Twilio's Timestamp on a call-progress event: RFC 2822, whole seconds, UTC. A day outside 2000-2099 is
    refused (the service keeps no records from before 2000, and 9999's last day overflowed date arithmetic:
    a 500), as the reports' days are (domain/validation.day_in_range)."""
    value = request.form.get(name)
    if value is None or value == "":
        return None
    try:
        if len(value) > 64 or text_problem(value):
            raise ValueError(name)
        at = parsedate_to_datetime(value)
        if not day_in_range(at.date()):
            raise ValueError(name)
    except (TypeError, ValueError, IndexError, OverflowError):
        raise _Bad(name, "must be a date and time as Twilio sends it (RFC 2822), from 2000 to 2099") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _answer_named() -> tuple[str | None, int | None]:
    """The answer a dial result's URL names (web/twiml.bridge_twiml): `by` (a username) and `at` (whole
    milliseconds since 1970, within 2000-2099), both or neither (TwiML given before they were added)."""
    by, at_text = request.args.get("by"), request.args.get("at")
    if by is None and at_text is None:
        return None, None
    if by is None or not by or len(by) > _NUMBER_MAX or text_problem(by):
        raise _Bad("by", f"must be a username of at most {_NUMBER_MAX} characters, with no control character")
    at = whole_number(at_text, 13) if at_text is not None else None
    if at is None or not day_in_range(answers.answer_from_ms(at).date()):
        raise _Bad("at", "must be a whole number of milliseconds since 1970, from 2000 to 2099")
    return by, at


def _twiml(answer: answers.Answer | None) -> Response:
    return Response(render(answer, services().public_base_url), mimetype="text/xml")


@bp.post("/incoming")
def incoming():
    try:
        sid, to, from_ = _call_sid(), _text("To"), _text("From")
    except _Bad as exc:
        return _bad(exc)
    return _twiml(phone_calls.incoming(services(), sid, to, from_))


@bp.post("/menu")
def menu():
    try:
        sid = _call_sid()
        digits = request.form.get("Digits")
        if digits is not None and not _DIGITS.fullmatch(digits):
            raise _Bad("Digits", "must be one key: 0-9, * or #")
        attempt_text = request.args.get("attempt", "1")
        attempt = whole_number(attempt_text, 2)
        if attempt is None or not 1 <= attempt <= answers.MENU_TRIES:
            raise _Bad("attempt", f"must be a whole number from 1 to {answers.MENU_TRIES}")
    except _Bad as exc:
        return _bad(exc)
    return _twiml(phone_calls.menu(services(), sid, digits or None, attempt))


@bp.post("/queue/wait")
def queue_wait():
    try:
        sid, position, average = _call_sid(), _seconds("QueuePosition"), _seconds("AvgQueueTime")
    except _Bad as exc:
        return _bad(exc)
    return _twiml(phone_calls.waiting(services(), sid, position, average))


@bp.post("/queue/left")
def queue_left():
    try:
        sid = _call_sid()
        result = request.form.get("QueueResult", "")
        if result not in legs.QUEUE_RESULTS:
            raise _Bad("QueueResult", "not one of Twilio's queue results")
        queue_seconds = _seconds("QueueTime")
        rejoined_text = request.args.get("rejoined")  # our own, in the action URL Twilio signed
        rejoined = whole_number(rejoined_text, 10) if rejoined_text is not None else None
        if rejoined_text is not None and rejoined is None:
            raise _Bad("rejoined", "must be a whole number of milliseconds")
    except _Bad as exc:
        return _bad(exc)
    return _twiml(phone_calls.left_queue(services(), sid, result, queue_seconds,
                                         timedelta(milliseconds=rejoined) if rejoined is not None else None))


@bp.post("/dial-result")
def dial_result():
    """The <Dial> Answer put the caller through with (web/twiml.bridge_twiml) ended, as DialCallStatus says."""
    try:
        sid = _call_sid()
        dial_status = request.form.get("DialCallStatus", "")
        if dial_status not in legs.DIAL_STATUSES:
            raise _Bad("DialCallStatus", "not one of Twilio's dial statuses")
        by, at = _answer_named()  # our own, in the action URL Twilio signed
    except _Bad as exc:
        return _bad(exc)
    return _twiml(phone_calls.dial_result(services(), sid, dial_status, by, at))


@bp.post("/status")
def status():
    try:
        sid = _call_sid()
        call_status = request.form.get("CallStatus", "")
        if call_status not in legs.STATUS_RANK:
            raise _Bad("CallStatus", "not one of Twilio's call statuses")
        duration, timestamp = _seconds("CallDuration"), _timestamp("Timestamp")
    except _Bad as exc:
        return _bad(exc)
    phone_calls.status(services(), sid, call_status, duration, timestamp)
    return Response(status=204)
