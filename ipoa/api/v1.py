"""JSON API, /api/v1. Bearer tokens from `flask --app ipoa users token`."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from ..domain.errors import GuardFailed, TriggerNotAllowed, VersionConflict
from ..service import calls as call_service
from ..service import queues as queue_service
from ..service import records
from ..service import timers as timer_service
from ..service.commands import InvalidInput
from ..web.access import actor, csrf, requires, services
from ..web.input_limits import read_json_body
from . import openapi, tokens
from .errors import error
from .serialise import call_dict

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # token-authenticated: no ambient cookie credentials to forge
bp.before_request(tokens.authenticate)
from . import idempotency; idempotency.register(bp)  # noqa: E402,E702 - Idempotency-Key hooks, after the token check


def _body():
    """The JSON body (depth-checked before decoding, size-limited before reading: web/input_limits.py),
    or an error answer. A body that is JSON but not an object is for the use case to refuse (422)."""
    body, problem = read_json_body()
    if problem is not None:
        return None, error(*problem)
    return body, None


def _domain_error(exc: Exception):
    if isinstance(exc, call_service.EscalationTooSoon):
        # A limit on how often, not a fault in the request: 429, and when it may be repeated.
        resp = error(429, "too_soon", "This referral was escalated too recently.", fields=exc.errors,
                     retry_at=exc.retry_at.isoformat())
        resp.headers["Retry-After"] = str(exc.retry_after_seconds)
        return resp
    if isinstance(exc, InvalidInput):
        return error(422, "invalid", "Some fields are not valid.", fields=exc.errors)
    if isinstance(exc, VersionConflict):
        return error(409, "version_conflict",
                     "The call changed since you loaded it; reload and try again.",
                     expected_version=exc.expected, current_version=exc.actual)
    if isinstance(exc, TriggerNotAllowed):
        return error(422, "trigger_not_allowed", str(exc), state=exc.state, allowed=exc.allowed,
                     fields={"trigger": f"Not allowed in state '{exc.state}'."})
    if isinstance(exc, GuardFailed):
        return error(422, "guard_failed", str(exc), fields=exc.errors)
    if isinstance(exc, call_service.NotFound):
        return error(404, "not_found", str(exc))
    if isinstance(exc, call_service.OutsideRelationship):
        return outside_relationship(exc)
    if isinstance(exc, call_service.Forbidden):
        return error(403, "forbidden", str(exc))
    raise exc


def outside_relationship(exc: call_service.OutsideRelationship):
    extra = {"break_glass": f"POST /api/v1/calls/{exc.ref}/break-glass with a reason"} if exc.break_glass else {}
    return error(403, "outside_relationship", str(exc), **extra)


def _route() -> str:
    rule = request.url_rule.rule if request.url_rule is not None else request.path
    return f"{request.method} {rule}"


@bp.post("/calls")
@requires("calls.write")
def create_call():
    body, bad = _body()
    if bad:
        return bad
    allow_duplicate = request.args.get("allow_duplicate", "").lower() in ("true", "1", "yes")
    try:
        call = call_service.log_call(services(), actor(), body, allow_duplicate=allow_duplicate)
    except call_service.DuplicateSuspected as dup:
        return error(409, "possible_duplicate",
                     "Open calls exist for this NHS number; see them, or repeat with ?allow_duplicate=true.",
                     open_calls=[_open_call(c) for c in dup.open_calls])
    except Exception as exc:  # noqa: BLE001 - mapped to 4xx or re-raised
        return _domain_error(exc)
    resp = jsonify(ref=call.ref, state=call.state, version=call.version,
                   recommended_route=call.recommended)
    resp.status_code = 201
    resp.headers["Location"] = f"/api/v1/calls/{call.ref}"
    return resp


def _open_call(c: call_service.OpenCall) -> dict:
    # Outside the user's relationship: that an open call exists, where, in what state, since when.
    out = {"ref": c.ref, "centre": c.centre, "state": c.state, "logged_at": c.logged_at.isoformat()}
    if c.visible:
        out.update(need=c.need, urgency=c.urgency)
    return out


@bp.get("/calls/<ref>")
@requires("calls.read")
def read_call(ref: str):
    try:
        view = records.view_call(services(), actor(), ref, _route())
    except Exception as exc:  # noqa: BLE001 - mapped to 4xx or re-raised
        return _domain_error(exc)
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
    body, bad = _body()
    if bad:
        return bad
    try:
        grant = records.break_glass(services(), actor(), ref, body, _route())
    except Exception as exc:  # noqa: BLE001
        return _domain_error(exc)
    resp = jsonify(ref=ref, grant_id=grant.id, reason=grant.reason, expires_at=grant.expires_at.isoformat())
    resp.status_code = 201
    return resp


@bp.get("/calls/<ref>/access-log")
@requires("calls.read")
def access_log(ref: str):
    """Who has viewed the call's record (supervisors of the centres it has been with)."""
    try:
        rows = records.access_log(services(), actor(), ref)
    except Exception as exc:  # noqa: BLE001
        return _domain_error(exc)
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
    body, bad = _body()
    if bad:
        return bad
    try:
        call = call_service.fire_call_trigger(services(), actor(), ref, body)
    except Exception as exc:  # noqa: BLE001
        return _domain_error(exc)
    return jsonify(ref=call.ref, state=call.state, version=call.version,
                   referrals=[{"id": r.id, "service": r.service, "state": r.state, "version": r.version,
                               "sharing_basis": r.sharing_basis} for r in call.referrals])


@bp.post("/calls/<ref>/consent")
@requires("calls.write")
def record_consent(ref: str):
    """Record the person's consent to share as it is now (audited; the call's version moves)."""
    body, bad = _body()
    if bad:
        return bad
    try:
        call = call_service.record_consent(services(), actor(), ref, body)
    except Exception as exc:  # noqa: BLE001
        return _domain_error(exc)
    return jsonify(ref=call.ref, state=call.state, version=call.version, consent=call.consent,
                   consent_recorded_by=call.consent_recorded_by,
                   consent_recorded_at=_iso(call.consent_recorded_at))


@bp.post("/calls/<ref>/referrals/<referral_id>/events")
@requires("calls.write")
def referral_event(ref: str, referral_id: str):
    body, bad = _body()
    if bad:
        return bad
    try:
        call = call_service.fire_referral_trigger(services(), actor(), ref, referral_id, body)
    except Exception as exc:  # noqa: BLE001
        return _domain_error(exc)
    referral = call.referral(referral_id)
    return jsonify(ref=call.ref, state=call.state, version=call.version,
                   referral={"id": referral.id, "state": referral.state, "version": referral.version})


@bp.post("/calls/<ref>/referrals/<referral_id>/reroute")
@requires("referrals.reroute")
def referral_reroute(ref: str, referral_id: str):
    body, bad = _body()
    if bad:
        return bad
    try:
        call, new = call_service.reroute_referral(services(), actor(), ref, referral_id, body)
    except Exception as exc:  # noqa: BLE001
        return _domain_error(exc)
    old = call.referral(referral_id)
    return jsonify(ref=call.ref, state=call.state, version=call.version,
                   withdrawn={"id": old.id, "service": old.service, "state": old.state, "version": old.version},
                   referral={"id": new.id, "service": new.service, "state": new.state, "version": new.version,
                             "sharing_basis": new.sharing_basis})


@bp.post("/calls/<ref>/referrals/<referral_id>/escalate")
@requires("referrals.escalate")
def referral_escalate(ref: str, referral_id: str):
    body, bad = _body()
    if bad:
        return bad
    if not isinstance(body, dict):
        return error(422, "invalid", "Some fields are not valid.", fields={"body": "Expected a JSON object."})
    try:
        call = call_service.escalate_referral(services(), actor(), ref, referral_id, body.get("reason"))
    except Exception as exc:  # noqa: BLE001
        return _domain_error(exc)
    referral = call.referral(referral_id)
    return jsonify(ref=call.ref, referral={"id": referral.id, "service": referral.service,
                                           "state": referral.state, "version": referral.version},
                   escalated_to="duty_lead")


@bp.get("/queues")
@requires("queues.read")
def queues():
    return jsonify(queue_service.queue_stats(services()))


@bp.post("/routing/decide")
@requires("routing.decide")
def routing_decide():
    body, bad = _body()
    if bad:
        return bad
    try:
        decision = call_service.decide_route(services(), body)
    except Exception as exc:  # noqa: BLE001
        return _domain_error(exc)
    d = decision.to_dict()
    return jsonify({k: d[k] for k in ("tier", "service", "outcome", "locality", "rule")} |
                   {"reason": d.get("reason"), "out_of_area": d.get("out_of_area"),
                    "alert_supervisor": d.get("alert_supervisor"), "next_open": d.get("next_open")})


@bp.get("/openapi.json")
def openapi_document():
    return jsonify(openapi.document_for(services().catalogue))

