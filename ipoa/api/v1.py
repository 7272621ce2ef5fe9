"""JSON API, /api/v1. Bearer tokens from `flask --app ipoa users token`. Each view calls its use case and
returns the answer; what the use case refuses is answered by the blueprint's error handlers
(api/error_handlers.py)."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from ..entry.json_input import json_body
from ..entry.request_context import actor, services
from ..entry.role_check import requires
from ..service import calls as call_service
from ..service import records, work_queues
from ..service import timers as timer_service
from ..service.inputs import InvalidInput
from . import error_handlers, idempotency, openapi, tokens
from .serialise import call_dict, referral_of

# Token-authenticated: no ambient cookie credentials to forge, so the app exempts it from CSRF (create_app).
bp = Blueprint("api", __name__, url_prefix="/api/v1")
bp.before_request(tokens.authenticate)
idempotency.register(bp)  # the Idempotency-Key hooks, after the token check
error_handlers.register(bp)


def _route() -> str:
    rule = request.url_rule.rule if request.url_rule is not None else request.path
    return f"{request.method} {rule}"


@bp.post("/calls")
@requires("calls.write")
def create_call():
    body = json_body()
    allow_duplicate = request.args.get("allow_duplicate", "").lower() in ("true", "1", "yes")
    call = call_service.log_call(services(), actor(), body, allow_duplicate=allow_duplicate)
    resp = jsonify(ref=call.ref, state=call.state, version=call.version,
                   recommended_route=call.recommended)
    resp.status_code = 201
    resp.headers["Location"] = f"/api/v1/calls/{call.ref}"
    return resp


@bp.get("/calls/<ref>")
@requires("calls.read")
def read_call(ref: str):
    view = records.view_call(services(), actor(), ref, _route())
    call, history = view.call, view.history
    allowed = [t.trigger for t in call_service.allowed_actions(services(), call)] if view.may_act else []
    body = call_dict(call, history, allowed)
    body.update(breach=call.breach, breached_at=_iso(call.breached_at))
    for out, referral in zip(body["referrals"], call.referrals):
        out.update(breach=referral.breach, breached_at=_iso(referral.breached_at))
    now = services().clock.now()
    body["clocks"] = [{**c.as_json(now), "breached": c.breached}
                      for c in timer_service.running_clocks(services(), [ref]).get(ref, [])]
    body["access"] = {"relationship": view.access.relationship, "break_glass": [
        {"by": g.username, "reason": g.reason, "at": g.granted_at.isoformat(),
         "until": g.expires_at.isoformat(), "reviewed": g.reviewed_at is not None} for g in view.break_glass]}
    resp = jsonify(body)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/calls/<ref>/break-glass")
@requires("calls.read")
def break_glass(ref: str):
    """Open one call outside the user's relationship, with a reason (and a note; required for 'other')."""
    body = json_body()
    grant = records.break_glass(services(), actor(), ref, body, _route())
    resp = jsonify(ref=ref, grant_id=grant.id, reason=grant.reason, expires_at=grant.expires_at.isoformat())
    resp.status_code = 201
    return resp


@bp.get("/calls/<ref>/access-log")
@requires("calls.read")
def access_log(ref: str):
    """Who has viewed the call's record (supervisors of the centres it has been with)."""
    rows = records.access_log(services(), actor(), ref)
    resp = jsonify(ref=ref, views=[{"at": r.at.isoformat(), "username": r.username, "name": r.display_name,
                                    "role": r.role, "centre": r.centre, "route": r.route, "why": r.purpose,
                                    "referral_id": r.referral_id} for r in rows])
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _iso(value):
    return value.isoformat() if value is not None else None


@bp.post("/calls/<ref>/events")
@requires("calls.write")
def call_event(ref: str):
    body = json_body()
    call = call_service.fire_call_trigger(services(), actor(), ref, body)
    return jsonify(ref=call.ref, state=call.state, version=call.version,
                   referrals=[{"id": r.id, "service": r.service, "state": r.state, "version": r.version,
                               "sharing_basis": r.sharing_basis} for r in call.referrals])


@bp.post("/calls/<ref>/consent")
@requires("calls.write")
def record_consent(ref: str):
    """Record the person's consent to share as it is now (audited; the call's version moves)."""
    body = json_body()
    call = call_service.record_consent(services(), actor(), ref, body)
    return jsonify(ref=call.ref, state=call.state, version=call.version, consent=call.consent,
                   consent_recorded_by=call.consent_recorded_by,
                   consent_recorded_at=_iso(call.consent_recorded_at))


@bp.post("/calls/<ref>/referrals/<referral_id>/events")
@requires("calls.write")
def referral_event(ref: str, referral_id: str):
    body = json_body()
    call = call_service.fire_referral_trigger(services(), actor(), ref, referral_id, body)
    referral = referral_of(call, referral_id)
    return jsonify(ref=call.ref, state=call.state, version=call.version,
                   referral={"id": referral.id, "state": referral.state, "version": referral.version})


@bp.post("/calls/<ref>/referrals/<referral_id>/reroute")
@requires("referrals.reroute")
def referral_reroute(ref: str, referral_id: str):
    body = json_body()
    call, new = call_service.reroute_referral(services(), actor(), ref, referral_id, body)
    old = referral_of(call, referral_id)
    return jsonify(ref=call.ref, state=call.state, version=call.version,
                   withdrawn={"id": old.id, "service": old.service, "state": old.state, "version": old.version},
                   referral={"id": new.id, "service": new.service, "state": new.state, "version": new.version,
                             "sharing_basis": new.sharing_basis})


@bp.post("/calls/<ref>/referrals/<referral_id>/escalate")
@requires("referrals.escalate")
def referral_escalate(ref: str, referral_id: str):
    body = json_body()
    if not isinstance(body, dict):
        raise InvalidInput({"body": "Expected a JSON object."})
    call = call_service.escalate_referral(services(), actor(), ref, referral_id, body.get("reason"))
    referral = referral_of(call, referral_id)
    return jsonify(ref=call.ref, referral={"id": referral.id, "service": referral.service,
                                           "state": referral.state, "version": referral.version},
                   escalated_to="duty_lead")


@bp.get("/queues")
@requires("queues.read")
def queues():
    return jsonify(work_queues.queue_stats(services()))


@bp.post("/routing/decide")
@requires("routing.decide")
def routing_decide():
    body = json_body()
    decision = call_service.decide_route(services(), body)
    d = decision.to_dict()
    return jsonify({k: d[k] for k in ("tier", "service", "outcome", "locality", "rule")} |
                   {"reason": d.get("reason"), "out_of_area": d.get("out_of_area"),
                    "alert_supervisor": d.get("alert_supervisor"), "next_open": d.get("next_open")} |
                   # Only when the table offers one, as on a call's stored recommendation.
                   ({"out_of_hours": d["out_of_hours"]} if d.get("out_of_hours") else {}))


@bp.get("/openapi.json")
def openapi_document():
    return jsonify(openapi.document_for(services().catalogue))

