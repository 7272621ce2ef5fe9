"""The supervisor's live dashboard: the figures' fragment that the page polls, the calls behind each
figure, and the actions a supervisor takes from there (reassign to another centre, re-route an unaccepted
referral, requeue a failed background job, mark a text that was not delivered followed up). The page itself
is `web.supervisor` (/supervisor)."""
from __future__ import annotations

import logging

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from ..domain.errors import GuardFailed, TriggerNotAllowed, VersionConflict
from ..entry.request_context import actor, services
from ..entry.role_check import requires
from ..service import access as access_service
from ..service import calls as call_service
from ..service import dashboard as dashboard_service
from ..service.inputs import InvalidInput
from . import confirmations
from .form_values import expected_version
from .live_dashboard import live_context, no_store
from .referral_view import phone_display, tel_href

bp = Blueprint("dashboard", __name__, url_prefix="/supervisor")
log = logging.getLogger(__name__)


@bp.get("/dashboard/fragment")
@requires("supervisor.view")
def fragment():
    return no_store(make_response(render_template("_dashboard_live.html", **live_context())))


def _filters(source) -> tuple[str | None, str | None, str]:
    svc = services()
    centre = source.get("centre") or None
    service = source.get("service") or None
    measure = source.get("measure") or "open"
    if (centre is None) == (service is None):
        abort(404)
    if centre is not None and centre not in svc.directory.centres:
        abort(404)
    if service is not None and service not in svc.directory.services:
        abort(404)
    return centre, service, measure


@bp.get("/calls")
@requires("supervisor.view")
def calls():
    """The calls (or referrals) behind one figure, with the actions a supervisor takes on them."""
    svc = services()
    centre, service, measure = _filters(request.args)
    try:
        drill = dashboard_service.calls_behind(svc, centre=centre, service=service, measure=measure)
    except dashboard_service.UnknownMeasure:
        abort(404)
    subject = svc.directory.centres[centre] if centre else svc.directory.services[service]
    # Figures and these lists carry no identifiers and cover every centre; acting on a call is for its own
    # centre (the access policy decides again when an action is posted).
    centres_acted_in = {c for c in {r.centre for r in drill.rows} if access_service.may_create_in(actor(), c)}
    return no_store(make_response(render_template(
        "supervisor_calls.html", drill=drill, subject=subject, centre=centre, service=service, measure=measure,
        centres_acted_in=centres_acted_in,
        may_reroute=current_user.can("referrals.reroute"), may_escalate=current_user.can("referrals.escalate"),
        now=svc.clock.now())))


def _back():
    """Back to the list the action was taken from (rebuilt from known values: never an open redirect)."""
    svc = services()
    centre, service = request.form.get("list_centre") or None, request.form.get("list_service") or None
    measure = request.form.get("list_measure") or "open"
    if centre in svc.directory.centres and service is None:
        return redirect(url_for("dashboard.calls", centre=centre, measure=measure))
    if service in svc.directory.services and centre is None:
        return redirect(url_for("dashboard.calls", service=service, measure=measure))
    return redirect(url_for("web.supervisor"))


@bp.post("/calls/<ref>/transfer")
@requires("supervisor.view")
def transfer(ref: str):
    """Reassign: transfer the call to another centre (whichever transition of the call's version has the
    `move_centre` effect, `transfer` in the shipped workflow; audited)."""
    centre = (request.form.get("centre") or "").strip()
    payload = {"trigger": "transfer", "data": {"centre": centre} if centre else {},
               "reason": (request.form.get("reason") or "").strip() or None,
               "expected_version": expected_version(request.form)}
    try:
        call_service.fire_call_trigger(services(), actor(), ref, payload, effect="move_centre")
    except call_service.NotFound:
        abort(404)
    except call_service.Forbidden:
        abort(403)
    except VersionConflict:
        flash(f"Call {ref} changed while you were looking at it; nothing was saved. Here is the list as it "
              "is now.", "error")
        return _back()
    except TriggerNotAllowed as exc:
        flash(f"Call {ref} can no longer be transferred: it is {exc.state.replace('_', ' ')}.", "error")
        return _back()
    except (GuardFailed, InvalidInput) as exc:
        flash(f"Call {ref} not transferred: " + "; ".join(exc.errors.values()), "error")
        return _back()
    flash(f"Call {ref} transferred to {confirmations.centre_name(centre)}.", "success")
    return _back()


@bp.post("/calls/<ref>/referrals/<referral_id>/reroute")
@requires("referrals.reroute")
def reroute(ref: str, referral_id: str):
    """Withdraw an unaccepted referral and refer the call to another service, in one action."""
    payload = {"service": (request.form.get("service") or "").strip() or None,
               "reason": (request.form.get("reason") or "").strip() or None,
               "expected_version": expected_version(request.form)}
    try:
        old, new = call_service.reroute_referral(services(), actor(), ref, referral_id, payload)
    except call_service.NotFound:
        abort(404)
    except call_service.Forbidden:
        abort(403)
    except VersionConflict:
        flash(f"The referral on call {ref} changed while you were looking at it; nothing was saved.", "error")
        return _back()
    except TriggerNotAllowed as exc:
        flash(f"The referral on call {ref} can no longer be re-routed: it is "
              f"{exc.state.replace('_', ' ')}.", "error")
        return _back()
    except (GuardFailed, InvalidInput) as exc:
        flash(f"Call {ref} not re-routed: " + "; ".join(exc.errors.values()), "error")
        return _back()
    withdrawn = old.referral(referral_id)
    flash(f"Call {ref}: {confirmations.rerouted(withdrawn.service if withdrawn else '', new, old.centre)}.", "success")
    return _back()


@bp.post("/calls/<ref>/referrals/<referral_id>/escalate")
@requires("referrals.escalate")
def escalate(ref: str, referral_id: str):
    """Text the receiving service's duty lead about an open referral now, with a reason (audited)."""
    try:
        call = call_service.escalate_referral(services(), actor(), ref, referral_id, request.form.get("reason"))
    except call_service.NotFound:
        abort(404)
    except call_service.Forbidden:
        abort(403)
    except TriggerNotAllowed as exc:
        flash(f"The referral on call {ref} is {exc.state.replace('_', ' ')}: nothing to escalate.", "error")
        return _back()
    except InvalidInput as exc:
        flash(f"Call {ref} not escalated: " + "; ".join(exc.errors.values()), "error")
        return _back()
    referral = call.referral(referral_id)
    if referral is None:  # escalate_referral refuses a referral the call does not hold (NotFound above)
        abort(404)
    service = referral.service
    flash(f"Call {ref}: the {confirmations.service_name(service)} duty lead is being texted.", "success")
    return _back()


@bp.post("/texts/<sms_id>/follow-up")
@requires("supervisor.view")
def follow_up_text(sms_id: str):
    """Mark a text that was not delivered followed up by phone, with a note (audited): it leaves the
    exceptions panel. A problem is answered with a page of its own (4xx, never a 5xx): the form again with
    the note's error (400), or why there is nothing to follow up (404, 409)."""
    svc = services()
    note = request.form.get("note")
    try:
        call_ref = dashboard_service.mark_followed_up(svc, actor(), sms_id, note)
    except call_service.NotFound:
        return _no_such_text()
    except call_service.Forbidden as exc:
        return render_template("error.html", code=403, title="You cannot follow up this text",
                               message=str(exc)), 403
    except dashboard_service.FollowUpStale as exc:
        return render_template("error.html", code=409, title="Nothing to follow up", message=str(exc)), 409
    except InvalidInput as exc:
        text = dashboard_service.exception_text(svc, sms_id, actor())
        if text is None:
            return _no_such_text()
        return no_store(make_response(render_template(
            "text_follow_up.html", text=text, errors=exc.errors, values={"note": note or ""},
            note_max=dashboard_service.FOLLOW_UP_NOTE_MAX, phone_display=phone_display, tel_href=tel_href), 400))
    flash(f"The text about call {call_ref} is marked followed up: your note is on the call's record.", "success")
    return redirect(url_for("web.supervisor") + "#exceptions")


def _no_such_text():
    return render_template("error.html", code=404, title="Text not found",
                           message="There is no such text on the exceptions panel: nothing was marked followed "
                                   "up."), 404


@bp.post("/jobs/<job_id>/requeue")
@requires("jobs.manage")
def requeue_job(job_id: str):
    try:
        dashboard_service.requeue_failed_job(services(), job_id, by=current_user.username)
    except dashboard_service.JobNotFound:
        flash(f"Job {job_id} is no longer in the failed jobs: nothing requeued.", "error")
        return redirect(url_for("web.supervisor") + "#exceptions")
    except Exception as exc:  # noqa: BLE001 - Redis unreachable: say so rather than a 500
        log.warning("requeue of %s failed: %s", job_id, type(exc).__name__)
        flash(f"Job {job_id} could not be requeued: the queue cannot be reached.", "error")
        return redirect(url_for("web.supervisor") + "#exceptions")
    flash(f"Job {job_id} requeued.", "success")
    return redirect(url_for("web.supervisor") + "#exceptions")
