"""The call handler's and supervisor's pages: server-rendered, usable from the keyboard alone."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from ..adapters.sms_gateway import masked
from ..domain import sharing
from ..domain.access import BREAK_GLASS_REASONS, call_trigger_action
from ..domain.date_parts import london_clock
from ..domain.errors import GuardFailed, TriggerNotAllowed, VersionConflict
from ..domain.guards import OUT_OF_HOURS_KEY, describe_choice, recommended_choice
from ..domain.sharing import CONSENT
from ..domain.urgency import URGENCIES
from ..entry.request_context import actor, services
from ..entry.role_check import requires
from ..service import calls as call_service
from ..service import my_shifts as my_shifts_service
from ..service import phone_answering, records
from ..service import professionals as professionals_service
from ..service import rotas as rotas_service
from ..service import sms as sms_service
from ..service import timers as timer_service
from ..service.inputs import CALLER_TYPES, InvalidInput
from ..service.retention import REMOVED
from . import confirmations, live_pages, people, submissions
from .form_values import expected_version, has_parts, in_page_order, read_date, read_date_time, typed
from .home import home_for
from .live_dashboard import live_context, no_store

bp = Blueprint("web", __name__)

LOG_FIELDS = ("centre", "caller_type", "caller_name", "caller_phone", "nhs_number", "given_name",
              "family_name", "address_line_1", "town", "postcode", "need", "urgency", "summary", "consent")
# The log-a-call form's fields in the order the page shows them: its error summary lists them so.
LOG_PAGE_ORDER = ("centre", "need", "urgency", "caller_type", "consent", "summary", "given_name", "family_name",
                  "postcode", "nhs_number", "date_of_birth", "address_line_1", "town", "caller_name", "caller_phone")
# A call page's form's fields in page order (one form is posted at a time).
CALL_PAGE_ORDER = ("route_choice", "service", "centre", "callback_at", "reason", "consent", "consent_basis",
                   "consent_reason")
# API field paths -> form field names, so errors land beside the right input.
FIELD_MAP = {"caller.type": "caller_type", "caller.name": "caller_name", "caller.phone": "caller_phone",
             "subject.nhs_number": "nhs_number", "subject.given_name": "given_name",
             "subject.family_name": "family_name", "subject.date_of_birth": "date_of_birth",
             "subject.postcode": "postcode", "subject.address_line_1": "address_line_1", "subject.town": "town",
             "data.service": "route_choice", "data.centre": "centre",
             "data.callback_at": "callback_at",
             # The lawful basis for sharing without consent: beside the refer form's basis and reason.
             "data.consent_override": "consent_basis", "data.consent_override.basis": "consent_basis",
             "data.consent_override.reason": "consent_reason"}


@bp.app_template_filter("local")
def local_time(value: datetime | str | None, fmt: str = "%a %d %b %Y %H:%M") -> str:
    """Every page's `|local`: an instant in UK time, with " BST" or " GMT" after a time that happens twice
    (date_parts.london_clock, docs/domain.md "Time")."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return london_clock(value, fmt)


bp.add_app_template_filter(people.who, "who")


@bp.app_template_filter("masked")
def masked_number(value: str | None) -> str:
    if value == REMOVED:  # forgotten by retention (service/retention.py): said so, not masked as a number
        return "(number removed)"
    return masked(value) if value else ""


@bp.app_template_filter("age")
def age(value: datetime | int | None) -> str:
    if value is None:
        return "–"
    seconds = value if isinstance(value, int) else int((services().clock.now() - value).total_seconds())
    seconds = max(0, seconds)
    hours, rem = divmod(seconds, 3600)
    minutes = rem // 60
    if hours >= 24:
        return f"{hours // 24}d {hours % 24}h"
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"


@bp.app_context_processor
def _globals() -> dict[str, Any]:
    svc = services()
    return {
        "directory": svc.directory, "needs": svc.routing.needs, "describe_choice": describe_choice,
        "centre_options": [(c.code, f"{c.code} – {c.name}") for c in svc.directory.centres.values()],
        "need_options": list(svc.routing.needs.items()),
        "urgency_options": [(u, u.replace("_", " ").capitalize()) for u in URGENCIES],
        "caller_type_options": [(t, t.replace("_", " ").capitalize()) for t in CALLER_TYPES],
        "consent_options": list(CONSENT.items()),
        "consent_label": sharing.consent_label, "sharing_bases": sharing.BASES,
        "lawful_basis_options": list(sharing.LAWFUL_BASES.items()),
        "clock_label": clock_label,
    }


CLOCK_LABELS = {"triage": "Triage", "acceptance": "Acceptance", "response": "Response",
                "callback": "Callback"}


def clock_label(kind: str | None) -> str:
    return CLOCK_LABELS.get(kind or "", (kind or "").replace("_", " ").capitalize())


@bp.get("/")
def index():
    return redirect(home_for(current_user))


@bp.get("/no-access")
def no_access():
    return render_template("no_access.html"), 403


@bp.get("/queue")
@requires("calls.read")
def queue():
    """A centre's queue: the whole page rendered here (it works without JavaScript, with a Refresh link);
    with JavaScript the live part re-fetches itself from live.queue_fragment (web/live_pages.py)."""
    try:
        context = live_pages.queue_context(live_pages.queue_centre())
    except call_service.Forbidden as exc:
        return forbidden(str(exc))
    return no_store(make_response(render_template("queue.html", **context)))


def forbidden(message: str, status: int = 403):
    """A refusal, saying why and what to do (never a bare 403 or a 500)."""
    return render_template("error.html", code=status, title="You cannot see this", message=message), status


def outside_relationship(ref: str, exc: call_service.OutsideRelationship):
    """Refused by the access policy: say so, and offer break-glass where the role allows it."""
    return render_template("outside.html", ref=ref, message=str(exc), break_glass=exc.break_glass,
                           reasons=BREAK_GLASS_REASONS, errors={}, values={}), 403


def route_label() -> str:
    """How the access log names the route a record was seen through."""
    rule = request.url_rule.rule if request.url_rule is not None else request.path
    return f"{request.method} {rule}"


def _log_payload(form, date_of_birth: str | None) -> dict[str, Any]:
    def val(name: str) -> str | None:
        v = (form.get(name) or "").strip()
        return v or None

    return {
        "centre": val("centre"),
        "caller": {"type": val("caller_type"), "name": val("caller_name"), "phone": val("caller_phone")},
        "subject": {"nhs_number": val("nhs_number"), "given_name": val("given_name") or "",
                    "family_name": val("family_name") or "", "date_of_birth": date_of_birth,
                    "postcode": val("postcode"), "address_line_1": val("address_line_1"), "town": val("town")},
        "need": val("need"), "urgency": val("urgency"), "summary": val("summary") or "",
        "consent": val("consent"),
    }


def _form_errors(errors: dict[str, str]) -> dict[str, str]:
    return {FIELD_MAP.get(k, k): v for k, v in errors.items()}


def _answered_phone_call(call_sid: str | None) -> tuple[phone_answering.Intake | None, dict[str, str]]:
    """The phone call a handler answered and is logging (Answer, web/phone_pages.py): its pre-filled
    fields, or the error naming phone_leg for any other."""
    if not call_sid:
        return None, {}
    try:
        return phone_answering.intake_for(services(), actor(), call_sid), {}
    except InvalidInput as exc:
        return None, exc.errors


@bp.route("/calls/new", methods=["GET", "POST"])
@requires("calls.write")
def new_call():
    values: dict[str, Any] = {"centre": current_user.centre, submissions.FIELD: submissions.new_id()}
    if request.method == "GET":
        phone, phone_errors = _answered_phone_call(request.args.get("phone_leg"))
        if phone is not None:
            values.update(phone.values)
        return render_template("call_new.html", values=values, errors=phone_errors, error_parts={}, duplicates=None,
                               phone=phone), 400 if phone_errors else 200
    values = {k: request.form.get(k, "") for k in LOG_FIELDS}
    values[submissions.FIELD] = submissions.kept_or_new()
    values.update(typed(request.form, "date_of_birth"))
    values["centre"] = current_user.centre  # a call is logged for the user's own centre (service.access)
    phone_leg = request.form.get("phone_leg") or None
    phone, phone_errors = _answered_phone_call(phone_leg)
    if phone_leg:
        values["phone_leg"] = phone_leg
    if phone_errors:  # not a phone call this handler answered and has not logged: nothing is stored
        return render_template("call_new.html", values=values, errors=phone_errors, error_parts={},
                               duplicates=None, phone=None), 400
    dob = read_date(request.form, "date_of_birth", "subject.date_of_birth")
    try:
        logged = submissions.once("log-call", lambda: call_service.log_call(
            services(), actor(), _log_payload(values, dob.value),
            allow_duplicate=request.form.get("confirm_duplicate") == "1", phone_leg=phone_leg))
    except InvalidInput as exc:
        # No flash: the page's error summary lists each message, linked to its field.
        errors = _form_errors(exc.errors)
        error_parts: dict[str, list[str]] = {}
        if dob.error:
            errors["date_of_birth"], error_parts["date_of_birth"] = dob.error, dob.parts
        return render_template("call_new.html", values=values, errors=in_page_order(errors, LOG_PAGE_ORDER),
                               error_parts=error_parts, duplicates=None, phone=phone), 422
    except call_service.DuplicateSuspected as dup:
        return render_template("call_new.html", values=values, errors={}, error_parts={},
                               duplicates=dup.open_calls, phone=phone), 409
    except call_service.Forbidden as exc:
        flash(str(exc), "error")
        return render_template("call_new.html", values=values, errors={"centre": str(exc)}, error_parts={},
                               duplicates=None, phone=phone), 403
    if isinstance(logged, submissions.Earlier):  # the same form sent again: it logged (or is logging) one call
        if logged.ref is None:
            flash("This call is still being logged from the first time the form was sent. It will be on the "
                  "queue in a moment; do not log it again.", "info")
            return redirect(url_for("web.queue"))
        flash(f"Call {logged.ref} was logged when the form was first sent. It was not logged again.", "info")
        return redirect(url_for("web.call_page", ref=logged.ref))
    flash(f"Call {logged.ref} logged" + (", with the phone call you answered." if phone_leg else "."), "success")
    return redirect(url_for("web.call_page", ref=logged.ref))


def _sharing_context(call) -> dict[str, Any]:
    """What the call page needs to say about consent to share: the organisation holding the call, whether
    a referral outside it needs a lawful basis, and which services are run by another organisation."""
    directory = services().directory
    held_by = directory.organisation_of_centre(call.centre)
    other = {code for code, s in directory.services.items() if held_by is None or s.organisation != held_by.code}
    return {"held_by": held_by, "needs_basis": sharing.needs_basis(call.consent), "other_org_services": other}


def _render_call(ref: str, errors: dict[str, str] | None = None, status: int = 200, form: dict | None = None,
                 reroute: dict | None = None, error_parts: dict[str, list[str]] | None = None):
    svc = services()
    try:
        view = records.view_call(svc, actor(), ref, route_label())
    except call_service.NotFound:
        abort(404)
    except call_service.OutsideRelationship as exc:
        return outside_relationship(ref, exc)
    call, history = view.call, view.history
    # Only the buttons this user may press: a transfer (the move_centre effect) needs `transfer`, which
    # break-glass never grants (domain/access.py call_trigger_action).
    actions = [t for t in call_service.allowed_actions(svc, call)
               if view.may_transfer or call_trigger_action(t.effects) == "act"] if view.may_act else []
    # The routes offered, and the plain step (start_triage) a logged call takes first in the same action.
    routes, route_step = call_service.route_actions(svc, call) if view.may_act else ([], None)
    recommendation = call_service.recommend(svc, call) if routes else None
    # Each referral's buttons are those this user may press: the access policy and the trigger's roles
    # (service.calls.referral_actions): a handler never sees the receiving service's Accept or Complete.
    referral_actions = (call_service.referral_actions(svc, actor(), call) if view.may_act
                        else {r.id: [] for r in call.referrals})
    rec_choice = recommended_choice(recommendation) if recommendation else None
    clocks = timer_service.running_clocks(svc, [ref]).get(ref, [])
    may_reroute = view.may_act and current_user.can("referrals.reroute")
    viewers = records.access_log(svc, actor(), ref) if view.may_view_access_log else None
    # Everyone the page names, looked up at once (the `who` filter).
    people.preload([call.logged_by, call.consent_recorded_by, *(e.actor for e in history),
                    *(grant.reviewed_by for grant in view.break_glass)])
    return render_template(
        "call.html", call=call, history=history, actions=actions, recommendation=recommendation,
        route_actions=routes, route_step=route_step,
        messages=sms_service.messages_for_call(svc, ref), view=view, viewers=viewers,
        phone_legs=phone_answering.legs_of_call(svc, ref),
        recipient_choices=sms_service.recipient_choices(svc, ref),
        break_glass_reasons=BREAK_GLASS_REASONS,
        rec_choice=rec_choice, referral_actions=referral_actions,
        referral_services={r.id: r.service for r in call.referrals}, errors=errors or {}, form=form or {},
        values=form or {}, error_parts=error_parts or {},
        now=svc.clock.now(), clocks=clocks, may_reroute=may_reroute,
        reroutable={r.id for r in call.referrals if call_service.reroutable(svc, r)}, reroute=reroute or {},
        sharing=_sharing_context(call)), status


@bp.get("/calls/<ref>")
def call_page(ref: str):
    """Any signed-in user may ask; the access policy decides (service.records.view_call)."""
    return _render_call(ref)


@bp.post("/calls/<ref>/break-glass")
def break_glass(ref: str):
    """Open one call outside the user's relationship, with a reason: recorded, shown on the record,
    reviewed by the centre's supervisors."""
    values = {"reason": request.form.get("reason", ""), "note": request.form.get("note", "")}
    try:
        grant = records.break_glass(services(), actor(), ref, values, route_label())
    except call_service.NotFound:
        abort(404)
    except InvalidInput as exc:  # the page's error summary lists the messages
        return render_template("outside.html", ref=ref, message="Choose a reason, and say why if it is 'other'.",
                               break_glass=True, reasons=BREAK_GLASS_REASONS, errors=exc.errors,
                               values=values), 422
    except call_service.Forbidden as exc:
        return forbidden(str(exc))
    flash(f"You opened call {ref} by break-glass until {local_time(grant.expires_at, '%H:%M')}. Your access "
          "is recorded and will be reviewed by the centre's supervisors.", "info")
    return redirect(url_for("web.call_page", ref=ref))

class DateErrors(dict[str, tuple[str, list[str]]]):
    """Date inputs of a posted form whose boxes did not make a date: form name -> (message, parts)."""

    def merged(self, errors: dict[str, str]) -> tuple[dict[str, str], dict[str, list[str]]]:
        """The use case's errors (as form names) with these in place of its words for the same fields,
        in page order, and the boxes to highlight."""
        errors = {**errors, **{name: message for name, (message, _) in self.items()}}
        return in_page_order(errors, CALL_PAGE_ORDER), {name: parts for name, (_, parts) in self.items()}


def _trigger_payload(form, date_errors: DateErrors | None = None) -> dict[str, Any]:
    trigger = form.get("trigger", "")
    data: dict[str, Any] = {}
    choice = form.get("route_choice")
    if choice:
        trigger, _, service = choice.partition(":")
        if service:
            data["service"] = service
    if form.get("service"):
        data["service"] = form["service"]
    if form.get("centre"):
        data["centre"] = form["centre"]
    if has_parts(form, "callback_at"):  # day, month, year and HH:MM, UK time
        # A callback is promised for a time ahead: in the repeated hour, the reading still ahead.
        callback = read_date_time(form, "callback_at", "data.callback_at", after=services().clock.now())
        if callback.value is not None:
            data["callback_at"] = callback.value
        if callback.error and date_errors is not None:
            date_errors["callback_at"] = (callback.error, callback.parts)
    override = _consent_override(form)
    if override is not None:
        data[sharing.OVERRIDE_KEY] = override
    return {"trigger": trigger, "data": data, "reason": (form.get("reason") or "").strip() or None,
            "expected_version": expected_version(form)}


def _consent_override(form) -> dict[str, Any] | None:
    """The refer forms' optional lawful basis for sharing without consent; None when neither field was
    filled in (a half-filled one goes through, so the engine says what is missing)."""
    basis = (form.get("consent_basis") or "").strip()
    reason = (form.get("consent_reason") or "").strip()
    if not basis and not reason:
        return None
    return {"basis": basis or None, "reason": reason or None}


def _apply(ref: str, fire, done, *, payload=None, problems=None):
    """fire(payload) -> the call as it is now; done(call, payload) -> the confirmation, what happened.
    payload(form) -> the trigger's payload, when not the page's usual forms' (_trigger_payload);
    problems(exc) -> (errors by page target, the form values to show again), for a form whose errors the
    page shows elsewhere than the usual fields. A route the routing table does not offer now is 400."""
    form = request.form.to_dict()
    date_errors = DateErrors()
    try:
        body = payload(form) if payload is not None else _trigger_payload(form, date_errors)
        call = fire(body)
    except VersionConflict:
        flash("Someone else changed this call while you were looking at it. Here it is as it is now; "
              "nothing you submitted was saved.", "error")
        return _render_call(ref, status=409)
    except TriggerNotAllowed as exc:
        flash(f"That action is no longer possible: {exc}", "error")
        return _render_call(ref, status=422)
    except (GuardFailed, InvalidInput) as exc:  # the page's error summary lists the messages
        status = 400 if isinstance(exc, call_service.RouteNotOffered) else 422
        if problems is not None:
            errors, shown = problems(exc)
            return _render_call(ref, errors=errors, status=status, form=shown)
        errors, error_parts = date_errors.merged(_form_errors(exc.errors))
        return _render_call(ref, errors=errors, status=status, form=form, error_parts=error_parts)
    except call_service.NotFound:
        abort(404)
    except call_service.OutsideRelationship as exc:
        return outside_relationship(ref, exc)
    except call_service.Forbidden as exc:
        return forbidden(str(exc))
    flash(done(call, body) + ".", "success")
    return redirect(url_for("web.call_page", ref=ref))


@bp.post("/calls/<ref>/events")
@requires("calls.write")
def call_event(ref: str):
    # A route form on a logged call says step_first: its start_triage is taken in the same action.
    step_first = request.form.get("step_first") == "1"
    return _apply(ref, lambda payload: call_service.fire_call_trigger(services(), actor(), ref, payload,
                                                                      step_first=step_first),
                  lambda call, payload: confirmations.call_done(call, payload["trigger"], payload["data"]))


# The out-of-hours form's errors, by the ids of what they are about on the page (the error summary links
# there): its lawful basis fields, or the recommendation for a route the table does not offer now.
OUT_OF_HOURS_ERROR_TARGETS = {"consent": "out-of-hours-consent-basis",
                              "data.consent_override": "out-of-hours-consent-basis",
                              "data.consent_override.basis": "out-of-hours-consent-basis",
                              "data.consent_override.reason": "out-of-hours-consent-reason"}


@bp.post("/calls/<ref>/out-of-hours")
@requires("calls.write")
def refer_out_of_hours(ref: str):
    """The recommendation's "Refer to <alternative> instead": the routing table's out-of-hours alternative
    to a closed recommended service, in one action and without a typed reason (the refer trigger with
    data.out_of_hours_alternative). The service layer asks the table again now: a service it does not
    offer now is a 400 naming the field, with nothing stored. Consent to share is checked as for Accept."""
    def payload(form: dict[str, str]) -> dict[str, Any]:
        body = _trigger_payload(form)
        body["data"][OUT_OF_HOURS_KEY] = True
        body["reason"] = None
        return body

    def problems(exc: GuardFailed | InvalidInput) -> tuple[dict[str, str], dict[str, str]]:
        errors: dict[str, str] = {}
        for field, message in exc.errors.items():
            errors.setdefault(OUT_OF_HOURS_ERROR_TARGETS.get(field, "recommendation"), message)
        # Only the out-of-hours form's own fields go back to the page, so no other form claims its errors.
        form = request.form
        return errors, {OUT_OF_HOURS_KEY: "true", "consent_basis": form.get("consent_basis", ""),
                        "consent_reason": form.get("consent_reason", "")}

    # On a logged call its start_triage is taken first, in the same action, as for Accept (step_first).
    step_first = request.form.get("step_first") == "1"
    return _apply(ref, lambda body: call_service.fire_call_trigger(services(), actor(), ref, body,
                                                                   step_first=step_first),
                  lambda call, body: confirmations.call_done(call, body["trigger"], body["data"]),
                  payload=payload, problems=problems)


@bp.post("/calls/<ref>/referrals/<referral_id>/events")
@requires("calls.write")
def referral_event(ref: str, referral_id: str):
    """Only the triggers the call page offers this user: the referrer's, never the receiving service's
    (those are for its professionals, on their own pages or by SMS: service.calls.fire_referral_trigger)."""
    return _apply(ref, lambda payload: call_service.fire_referral_trigger(
        services(), actor(), ref, referral_id, payload),
        lambda call, _: confirmations.referral_done(call, referral_id))


@bp.post("/calls/<ref>/referrals/<referral_id>/reroute")
@requires("referrals.reroute")
def referral_reroute(ref: str, referral_id: str):
    """A supervisor withdraws a referral the service has not accepted and refers the call elsewhere."""
    form = request.form.to_dict()
    payload: dict[str, Any] = {"service": (form.get("service") or "").strip() or None,
                               "reason": (form.get("reason") or "").strip() or None,
                               "expected_version": expected_version(form)}
    override = _consent_override(form)
    if override is not None:
        payload[sharing.OVERRIDE_KEY] = override
    # Errors land on this referral's form only, not on the call's own actions.
    failed = {"referral_id": referral_id, "service": payload["service"] or "", "reason": payload["reason"] or "",
              "consent_basis": form.get("consent_basis", ""), "consent_reason": form.get("consent_reason", "")}
    try:
        old, new = call_service.reroute_referral(services(), actor(), ref, referral_id, payload)
    except VersionConflict:
        flash("Someone else changed this referral while you were looking at it. Here it is as it is "
              "now; nothing you submitted was saved.", "error")
        return _render_call(ref, status=409)
    except TriggerNotAllowed as exc:
        flash(f"This referral can no longer be re-routed: it is {exc.state.replace('_', ' ')}.", "error")
        return _render_call(ref, status=422)
    except (GuardFailed, InvalidInput) as exc:  # the page's error summary lists the messages
        errors = {"reroute_" + k.removeprefix("data."): v for k, v in exc.errors.items()}
        return _render_call(ref, errors=errors, status=422, reroute=failed)
    except call_service.OutsideRelationship as exc:
        return outside_relationship(ref, exc)
    except call_service.Forbidden as exc:
        return forbidden(str(exc))
    except call_service.NotFound:
        abort(404)
    withdrawn = old.referral(referral_id)
    flash(confirmations.rerouted(withdrawn.service if withdrawn else "", new, old.centre) + ".", "success")
    return redirect(url_for("web.call_page", ref=ref))


@bp.post("/calls/<ref>/consent")
@requires("calls.write")
def record_consent(ref: str):
    """The person's consent to share as it is now: asked again, or changed their mind."""
    form = request.form.to_dict()
    payload = {"consent": (form.get("consent") or "").strip() or None,
               "reason": (form.get("consent_note") or "").strip() or None,
               "expected_version": expected_version(form)}
    try:
        call = call_service.record_consent(services(), actor(), ref, payload)
    except VersionConflict:
        flash("Someone else changed this call while you were looking at it. Here it is as it is now; "
              "nothing you submitted was saved.", "error")
        return _render_call(ref, status=409)
    except InvalidInput as exc:  # the page's error summary lists the messages
        # Its own keys: the refer forms' "consent" error is about sharing, not this form.
        errors = {"consent_form_" + ("note" if k == "reason" else k): v for k, v in exc.errors.items()}
        return _render_call(ref, errors=errors, status=422, form={"consent_form": "1", **form})
    except call_service.NotFound:
        abort(404)
    except call_service.OutsideRelationship as exc:
        return outside_relationship(ref, exc)
    except call_service.Forbidden as exc:
        return forbidden(str(exc))
    flash(f"Consent recorded: {sharing.consent_label(call.consent)}.", "success")
    return redirect(url_for("web.call_page", ref=ref))


@bp.get("/r/<token>")
def secure_link(token: str):
    """Where an SMS link lands. Sign-in comes first (the link itself holds nothing but a code: a short one
    from sms_links, or the 22-character token of a text sent before them)."""
    target = sms_service.resolve_link(services(), token)
    if target is None:
        abort(404)
    if target.scope:  # an escalation digest's: the list of breaches it stands for
        kind, _, code = target.scope.partition(":")
        if current_user.can("supervisor.view") and kind in ("centre", "service"):
            query: dict[str, Any] = {kind: code, "measure": "breached"}
            return redirect(url_for("dashboard.calls", **query))
        if current_user.can("referrals.own"):
            return redirect(url_for("web.my_referrals"))
        abort(403)
    referral_id, ref = target.referral_id, target.call_ref
    if current_user.can("referrals.own"):
        return redirect(url_for("web.my_referral", referral_id=referral_id))
    if not current_user.can("calls.read"):
        abort(403)
    # The policy first: a redirect to /calls/<ref> would put the reference in the access logs of someone
    # who may not see the call (docs/information-governance.md, section 3). The refusal names no call, so
    # it offers no break-glass either (that form is the call's page).
    if ref is None:  # a referral's link always has its call: nothing to send them to
        abort(404)
    if not call_service.may_view(services(), actor(), ref):
        return forbidden("You can see the calls of your own centre, and calls transferred to or from it. "
                         "The call this link is about is not one of them.")
    return redirect(url_for("web.call_page", ref=ref))


def _my_professional():
    prof = professionals_service.for_user(services(), current_user.id)
    if prof is None:
        abort(403)
    return prof


@bp.get("/my/referrals")
@requires("referrals.own")
def my_referrals():
    prof = _my_professional()
    rows = professionals_service.service_referrals(services(), prof.service)
    # On duty is the rota's answer now (service/rotas.py), not a column of the professional's row.
    on_duty = rotas_service.is_on_duty(services(), prof.id, prof.service)
    # Their shifts of the next week, and whether they texted OFF (service/my_shifts.py).
    shifts = my_shifts_service.my_shifts(services(), prof)
    return render_template("my_referrals.html", prof={**prof._mapping, "on_duty": on_duty}, rows=rows,
                           shifts=shifts)


@bp.route("/my/referrals/<referral_id>", methods=["GET", "POST"])
@requires("referrals.own")
def my_referral(referral_id: str):
    """One referral to the professional's own service: the details for the visit, and its actions."""
    prof = _my_professional()
    svc = services()
    status = 200
    errors: dict[str, str] = {}
    if request.method == "POST":
        ref = sms_service.call_ref_for_referral(svc, referral_id)
        if ref is None:
            abort(404)
        date_errors = DateErrors()
        payload = _trigger_payload(request.form.to_dict(), date_errors)
        try:
            call = call_service.fire_referral_trigger(svc, actor(), ref, referral_id, payload, as_service=prof.service)
            flash(confirmations.referral_done(call, referral_id), "success")
            return redirect(url_for("web.my_referral", referral_id=referral_id))
        except VersionConflict:
            flash("This referral changed while you were looking at it; nothing was saved.", "error")
            status = 409
        except TriggerNotAllowed as exc:
            flash(f"That action is no longer possible: {exc}", "error")
            status = 422
        except (GuardFailed, InvalidInput) as exc:  # the page's error summary lists the messages
            errors, _ = date_errors.merged(_form_errors(exc.errors))
            status = 422
        except call_service.Forbidden as exc:
            return forbidden(str(exc))
    try:
        call, referral, _ = records.view_referral(svc, actor(), referral_id, route_label())
    except call_service.NotFound:
        abort(404)
    except call_service.Forbidden as exc:
        return forbidden(str(exc))
    actions = call_service.service_actions(svc, referral)
    from . import referral_view  # the page's numbers and deadline, worded for a phone

    return render_template("my_referral.html", call=call, referral=referral, errors=errors, actions=actions,
                           referrer=professionals_service.referrer(svc, referral, call),
                           accept_by=professionals_service.accept_by(svc, referral, call), now=svc.clock.now(),
                           phone_display=referral_view.phone_display, tel_href=referral_view.tel_href,
                           local_deadline=referral_view.local_deadline), status


@bp.get("/messages")
@requires("calls.read")
def messages():
    """The texts about calls of the user's centre (and calls transferred to or from it), newest first:
    with the console backend this is where the demo's alerts show."""
    return render_template("messages.html", messages=sms_service.recent_for(services(), actor()),
                           backend=services().sms_gateway.name)


@bp.get("/supervisor")
@requires("supervisor.view")
def supervisor():
    """The supervisor's live dashboard: the whole page rendered here (it works without JavaScript, with a
    Refresh link); with JavaScript the live part re-fetches itself from dashboard.fragment."""
    return no_store(make_response(render_template("supervisor.html", **live_context())))
