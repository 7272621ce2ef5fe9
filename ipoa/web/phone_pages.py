"""Handlers taking phone calls (issue 15, point 2; docs/telephony.md, "Answering a call"): the "taking
calls" switch on the queue page, and Answer, which puts the caller through to where the handler answers
(users.answer_on: their phone or a Twilio Client) and opens Log a call pre-filled from the call. The queue
page shows the phone queue in its live part (web/live_pages.py, templates/_queue_live.html)."""
from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..entry.request_context import actor, services
from ..entry.role_check import requires
from ..service import call_takers, phone_answering, phone_queue
from ..service.errors import Forbidden
from . import phone_simulator
from .twiml import bridge_twiml
from .views import forbidden

bp = Blueprint("phone", __name__)


@bp.app_template_filter("answer_on_words")
def answer_on_words(answer_on: str | None) -> str:
    """Where Answer puts callers through, for the handler: their number masked, or their Twilio Client."""
    if not answer_on:
        return ""
    if answer_on.startswith("client:"):
        return f"your browser or softphone (Twilio Client {answer_on.removeprefix('client:')})"
    return f"your phone, {phone_queue.masked(answer_on)}"


@bp.app_template_filter("minutes_seconds")
def minutes_seconds(span: timedelta | None) -> str:
    """A wait on the phone, to the second: "2 min 05 s"."""
    if span is None:
        return "–"
    seconds = max(int(span.total_seconds()), 0)
    return f"{seconds // 60} min {seconds % 60:02d} s"


def _bad(field: str, problem: str):
    return render_template("error.html", code=400, title="Not sent",
                           message=f"{field}: {problem}. Nothing was changed."), 400


def _back_to_queue():
    return redirect(url_for("web.queue"), code=303)


@bp.post("/queue/taking-calls")
@requires("calls.read")
def taking_calls():
    """The handler's switch: taking phone calls (1) or not (0)."""
    value = request.form.get("taking_calls", "")
    if value not in ("0", "1"):
        return _bad("taking_calls", "must be 1 (taking calls) or 0 (not taking calls)")
    try:
        call_takers.set_taking_calls(services(), current_user.id, current_user.role, value == "1")
    except Forbidden as exc:
        return forbidden(str(exc))
    flash("You are taking phone calls." if value == "1" else "You are not taking phone calls.", "success")
    return _back_to_queue()


@bp.post("/phone/<call_sid>/answer")
@requires("calls.write")
def answer(call_sid: str):
    """Answer a waiting caller: put through to this handler, then Log a call pre-filled from the call. A
    caller who hung up or was answered by someone else first, or a call Twilio would not redirect, is said
    on the queue page (the caller, if still there, waits for the next handler)."""
    if not phone_answering.CALL_SID.fullmatch(call_sid):
        return _bad("call_sid", "must be CA followed by 32 hexadecimal digits")
    answer_on, who = current_user.answer_on, actor()
    try:
        # Built once the answer is made: the dial result's URL names it (phone_calls.bridge).
        phone_answering.answer(services(), who, call_sid, answer_on,
                               lambda at: bridge_twiml(answer_on, by=who.username, at=at))
    except Forbidden as exc:
        return forbidden(str(exc))
    except (phone_answering.NotWaiting, phone_answering.AnswerFailed) as exc:
        flash(str(exc), "error")
        return _back_to_queue()
    phone_simulator.bridged(call_sid)  # the demo's caller: Twilio's side of the redirect, in-process
    return redirect(url_for("web.new_call", phone_leg=call_sid), code=303)


__all__ = ["answer", "bp", "taking_calls"]
