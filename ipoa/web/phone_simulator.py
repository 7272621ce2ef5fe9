"""The demo's phone (issue 15, point 6): without Twilio, "Simulate an incoming call" plays the caller's side
of the very webhook sequence Twilio would send (incoming call, the menu's key, the enqueue's wait URL),
signed with the app's own TWILIO_AUTH_TOKEN and sent in-process to web/voice_webhooks.py, so the call rings,
queues and appears on the queue page; Answer then "bridges" it through the console Voice gateway (the
enqueue's action says `redirected`, as Twilio's would), and "Simulate hang-up" ends it as a caller would
(in the queue: abandoned, and a callback call made; answered: the call ends).

Only when VOICE_SIMULATOR is on (make run sets it) and VOICE_BACKEND is console: a real line is never
simulated. Otherwise the routes are 404 and nothing shows. The caller numbers are Ofcom's drama numbers,
registered professionals' or an open call's."""
from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from twilio.request_validator import RequestValidator

from ..entry.request_context import services
from ..entry.role_check import requires
from ..service import phone_answering
from ..service.phone_answering import CALL_SID
from ..service.phone_queue import masked

bp = Blueprint("phone_simulator", __name__, url_prefix="/demo/phone")

INCOMING = "/webhooks/twilio/voice/incoming"
STATUS = "/webhooks/twilio/voice/status"
QUEUE_LEFT = "/webhooks/twilio/voice/queue/left"
CALLERS = {"professional": "A registered professional (presses 1)",
           "public": "A member of the public (presses 2)",
           "known": "Someone who rang before about an open call (presses 2)"}


def enabled() -> bool:
    svc = services()
    return bool(current_app.config.get("VOICE_SIMULATOR")) and svc.voice_backend == "console" \
        and bool(svc.twilio.get("auth_token"))


@bp.app_context_processor
def _simulator_globals() -> dict:
    return {"phone_simulator": enabled, "simulated_callers": CALLERS}


def _bad(field: str, problem: str):
    return render_template("error.html", code=400, title="Not sent",
                           message=f"{field}: {problem}. Nothing was simulated."), 400


def _post(url: str, params: dict[str, str]) -> tuple[int, str]:
    """One webhook, signed as Twilio signs it (the public URL and the parameters), sent in-process."""
    svc = services()
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    public = svc.public_base_url.rstrip("/") + path
    signature = RequestValidator(svc.twilio["auth_token"]).compute_signature(public, params)
    resp = current_app.test_client().post(path, data=params, headers={"X-Twilio-Signature": signature})
    return resp.status_code, resp.get_data(as_text=True)


def _params(call_sid: str, from_: str, to: str, status: str, **more: str) -> dict[str, str]:
    svc = services()
    return {"CallSid": call_sid, "AccountSid": svc.twilio.get("account_sid") or "AC" + "0" * 32, "From": from_,
            "To": to, "CallStatus": status, "Direction": "inbound", **more}


def _caller_number(kind: str, centre: str) -> str:
    known = phone_answering.demo_caller_number(services(), kind, centre)
    return known or f"+447700900{secrets.randbelow(100) + 400:03d}"  # Ofcom's drama range, never a real phone


@bp.post("/ring")
@requires("calls.write")
def ring():
    """A call rings the user's centre's line, presses the menu's key and waits in the queue."""
    if not enabled():
        abort(404)
    kind = request.form.get("caller", "")
    if kind not in CALLERS:
        return _bad("caller", "choose who is calling from the list")
    svc = services()
    centre = svc.directory.centres.get(current_user.centre or "")
    if centre is None or centre.voice is None or not centre.phone:
        flash(f"{current_user.centre or 'Your centre'} has no phone line that ipoa answers "
              "(a voice block in directory.yaml): no call can ring it.", "error")
        return redirect(url_for("web.queue"), code=303)
    from ..domain.validation import normalise_uk_phone

    line = normalise_uk_phone(centre.phone) or centre.phone
    caller = _caller_number(kind, centre.code)
    sid = "CA" + secrets.token_hex(16)
    heard: list[str] = []
    status, body = _post(INCOMING, _params(sid, caller, line, "ringing"))
    for _ in range(3):  # incoming, then the menu's key, then the queue's wait URL
        if status != 200:
            break
        twiml = ET.fromstring(body)
        heard += [say.text or "" for say in twiml.iter("Say")]
        gather, enqueue = twiml.find("Gather"), twiml.find("Enqueue")
        if gather is not None:
            digit = "1" if kind == "professional" else "2"
            status, body = _post(gather.get("action", ""), _params(sid, caller, line, "in-progress", Digits=digit))
        elif enqueue is not None:
            status, body = _post(enqueue.get("waitUrl", ""), _params(
                sid, caller, line, "in-progress", QueuePosition="1", QueueSid="QU" + "0" * 32, QueueTime="0",
                AvgQueueTime="0", CurrentQueueSize="1"))
        else:
            break
    flash(f"A simulated call from {masked(caller)} rang {centre.name}. The caller heard: "
          + " ".join(h for h in heard if h), "success")
    return redirect(url_for("web.queue"), code=303)


@bp.post("/<call_sid>/hang-up")
@requires("calls.write")
def hang_up(call_sid: str):
    """The simulated caller hangs up: in the queue (the enqueue's action `hangup`, then the final status)
    or after being answered (the call completes)."""
    if not enabled():
        abort(404)
    if not CALL_SID.fullmatch(call_sid):
        return _bad("call_sid", "must be CA followed by 32 hexadecimal digits")
    svc = services()
    leg = phone_answering.phone_leg(svc, call_sid)
    if leg is None or leg.hung_up_at is not None or leg.queue != current_user.centre:
        flash("That call has already ended (or is not in your centre's queue).", "error")
        return redirect(url_for("web.queue"), code=303)
    caller = leg.caller_number or "anonymous"
    line = svc.directory.centres[leg.centre].phone if leg.centre in svc.directory.centres else ""
    from ..domain.validation import normalise_uk_phone

    line = normalise_uk_phone(line or "") or line or ""
    if leg.left_queue_at is None and leg.enqueued_at is not None:
        waited = int(leg.waited(svc.clock.now()).total_seconds())
        result = "redirected" if leg.answered_at else "hangup"
        _post(QUEUE_LEFT, _params(call_sid, caller, line, "completed", QueueResult=result, QueueTime=str(waited)))
    # As Twilio would: the whole seconds since the call was answered (its incoming webhook), rounded down.
    duration = int(max(svc.clock.now() - leg.arrived_at, timedelta(0)).total_seconds())
    _post(STATUS, _params(call_sid, caller, line, "completed", CallDuration=str(duration)))
    flash(f"The simulated caller {masked(leg.caller_number)} hung up.", "success")
    return redirect(request.referrer if _same_site(request.referrer) else url_for("web.queue"), code=303)


def _same_site(url: str | None) -> bool:
    return bool(url) and urlsplit(url).netloc in ("", request.host)


def bridged(call_sid: str) -> None:
    """After Answer, for the simulated caller: Twilio's side of the redirect (the enqueue's action says the
    caller left the queue, `redirected`; the call is in progress with the handler). Nothing without the
    simulator."""
    if not enabled():
        return
    svc = services()
    leg = phone_answering.phone_leg(svc, call_sid)
    if leg is None or leg.left_queue_at is not None:
        return
    line = svc.directory.centres[leg.centre].phone if leg.centre in svc.directory.centres else ""
    from ..domain.validation import normalise_uk_phone

    line = normalise_uk_phone(line or "") or line or ""
    waited = int(leg.waited(svc.clock.now()).total_seconds())
    _post(QUEUE_LEFT, _params(call_sid, leg.caller_number or "anonymous", line, "in-progress",
                              QueueResult="redirected", QueueTime=str(waited)))


__all__ = ["CALLERS", "bp", "bridged", "enabled", "hang_up", "ring"]
