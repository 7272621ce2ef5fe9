"""Use cases on calls. Each runs in one unit of work: validate, load, let the engine decide, record the
audit events and outbox messages, commit. Entry points (web, API, CLI, jobs) call only these."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from ..domain import access as policy
from ..domain import field_messages as fm
from ..domain import meaning, sharing
from ..domain.engine import CALL_WORKFLOW, Result, outbox_event
from ..domain.errors import DomainError, TriggerNotAllowed, VersionConflict, WorkflowError
from ..domain.guards import claims_out_of_hours, out_of_hours_claim
from ..domain.model import AuditEvent, Call, Referral, new_ref
from ..domain.routing import Decision
from ..domain.validation import looks_blank, text_problem
from ..users import CAPABILITIES
from . import access, idempotency
from .errors import Forbidden, NotFound, OutsideRelationship
from .inputs import (
    CONSENT_OVERRIDE_DOC,
    DecideRoute,
    FireTrigger,
    Input,
    InvalidInput,
    LogCall,
    RecordConsent,
    parse,
    refuse,
)
from .workflow_meaning import definition_of

if TYPE_CHECKING:
    from ..adapters.repository import OpenCallRow
    from ..adapters.unit_of_work import UnitOfWork
    from ..bootstrap import Services
    from ..domain.workflow import TransitionDef


@dataclass(frozen=True)
class Actor:
    """Who is acting: their role, home centre (handlers, supervisors) and service (professionals). What
    they may see and change is the access policy's to decide (domain/access.py, service/access.py)."""

    username: str
    role: str
    centre: str | None
    service: str | None = None


@dataclass(frozen=True)
class OpenCall:
    """An open call for the same NHS number. Outside the user's relationship only that it exists, where,
    in what state and since when: never what it is about or who it is for (need and urgency are None)."""

    ref: str
    centre: str
    state: str
    logged_at: datetime
    visible: bool
    need: str | None = None
    urgency: str | None = None


class DuplicateSuspected(DomainError):
    """Open calls exist for this NHS number; the handler must see them before making another."""

    def __init__(self, open_calls: list[OpenCall]):
        self.open_calls = open_calls
        super().__init__(f"{len(open_calls)} open call(s) for this NHS number")


class RouteNotOffered(InvalidInput):
    """A trigger claims the routing table's out-of-hours alternative (data.out_of_hours_alternative) for a
    route the table does not offer now: refused before anything is stored, 400 naming the field, since no
    page of ours sends it unless the table's answer changed since the page was drawn (domain/guards.py)."""


def _context(svc: Services) -> dict[str, Any]:
    return {"centres": svc.directory.centres, "needs": svc.routing.needs,
            "today": svc.clock.now().date()}


def decide_route(svc: Services, payload: dict[str, Any]) -> Decision:
    cmd: DecideRoute = parse(DecideRoute, payload, **_context(svc))
    return svc.routing.decide(cmd.need, cmd.urgency, cmd.at, postcode=cmd.postcode)


def recommend(svc: Services, call: Call, at: datetime | None = None) -> Decision:
    return svc.routing.decide(call.need, call.urgency, at or svc.clock.now(), postcode=call.postcode)


# The purpose (and route) an access event gives for another centre's call named by the check for a duplicate.
DUPLICATE_CHECK = "duplicate_check"


def log_call(svc: Services, actor: Actor, payload: dict[str, Any], *, allow_duplicate: bool = False,
             phone_leg: str | None = None) -> Call:
    """Log a call. phone_leg: the CallSid of the phone call the handler answered and is logging (Answer,
    docs/telephony.md): linked to the new call in the same unit of work, or InvalidInput and nothing stored."""
    cmd: LogCall = parse(LogCall, payload, **_context(svc))
    if not access.may_create_in(actor, cmd.centre):
        raise Forbidden(f"You can log calls for your own centre only ({actor.centre or 'none'}), "
                        f"not {cmd.centre}.")
    now = svc.clock.now()
    decision = svc.routing.decide(cmd.need, cmd.urgency, now, postcode=cmd.subject.postcode)
    with svc.uow() as uow:
        engine = uow.engine(svc)
        wf = engine.latest(CALL_WORKFLOW)
        if cmd.subject.nhs_number and not allow_duplicate:
            # Intakes for one NHS number wait for each other from this check to commit (PostgreSQL: an
            # advisory lock; docs/security.md): only an intake that checks waits.
            existing = uow.calls.lock_and_find_open(cmd.subject.nhs_number, wf.final_states)
            if existing:
                shown = [_open_call(actor, row) for row in existing]
                # Another centre's call named in the warning: that it exists for this NHS number, where and
                # in what state is read out to someone outside its relationship, so it goes in that call's
                # access log, as a view would (docs/information-governance.md, section 3).
                outside = [c.ref for c in shown if not c.visible]
                for ref in outside:
                    access.record_access(uow, actor, ref, DUPLICATE_CHECK, access.Access(DUPLICATE_CHECK), now)
                if outside:
                    uow.commit()
                raise DuplicateSuspected(shown)
        call = Call(
            ref=new_ref(), centre=cmd.centre, caller_type=cmd.caller.type, caller_name=cmd.caller.name,
            caller_phone=cmd.caller.phone, nhs_number=cmd.subject.nhs_number,
            given_name=cmd.subject.given_name, family_name=cmd.subject.family_name,
            date_of_birth=cmd.subject.date_of_birth, postcode=cmd.subject.postcode,
            locality=decision.locality, out_of_area=decision.out_of_area, need=cmd.need,
            urgency=cmd.urgency, summary=cmd.summary, workflow=wf.name, workflow_version=wf.version,
            logged_at=now, logged_by=actor.username, recommended=decision.to_dict(),
            updates_to=cmd.caller.phone if cmd.caller.wants_updates else None, consent=cmd.consent,
            address_line_1=cmd.subject.address_line_1, town=cmd.subject.town)
        result = engine.start_call(call, actor=actor.username, now=now)
        if phone_leg is not None:
            from .phone_answering import link_leg

            link_leg(uow, actor, phone_leg, call.ref, now)
        uow.add_new_call(call, result)
        idempotency.note_created(call)  # a keyed API intake stores its answer in this transaction
        uow.commit()
    return call


def _open_call(actor: Actor, row: OpenCallRow) -> OpenCall:
    record = policy.RecordFacts(centre=row.centre, centres=tuple((row.centre_path or row.centre).split()))
    visible = policy.decide(access.subject(actor), record, "view") is not None
    return OpenCall(ref=row.ref, centre=row.centre, state=row.state, logged_at=row.logged_at, visible=visible,
                    need=row.need if visible else None, urgency=row.urgency if visible else None)


def get_call(svc: Services, ref: str) -> tuple[Call, list[AuditEvent]]:
    """A call and its history, WITHOUT the access policy: for the service layer and tests. Entry points
    read calls through service.records (policy checked, access recorded)."""
    with svc.uow() as uow:
        call = uow.calls.get(ref)
        if call is None:
            raise NotFound(f"no call {ref}")
        return call, uow.calls.history(ref)


def may_view(svc: Services, actor: Actor, ref: str) -> bool:
    """Whether the access policy lets actor see the call now (a live break-glass grant included), asked
    before sending them to it (a text's link): nothing is read out, so no access event."""
    now = svc.clock.now()
    with svc.uow() as uow:
        call = uow.calls.get(ref)
        return call is not None and access.permitted(uow, actor, call, "view", now)


def _state(entity: Call | Referral) -> str:
    """A stored call's or referral's state: set when it was started, and only ever moved after."""
    if entity.state is None:
        name = f"call {entity.ref}" if isinstance(entity, Call) else f"referral {entity.id}"
        raise WorkflowError(f"{name} has no state: it was never started")
    return entity.state


def _call_to_change(uow: UnitOfWork, actor: Actor, ref: str, now: datetime) -> Call:
    """The call, if it exists and the access policy lets this actor change it."""
    call = uow.calls.get(ref)
    if call is None:
        raise NotFound(f"no call {ref}")
    access.authorise(uow, actor, call, "act", now)
    return call


def fire_call_trigger(svc: Services, actor: Actor, ref: str, payload: dict[str, Any], *,
                      effect: str | None = None, step_first: bool = False) -> Call:
    """effect: fire whichever transition from the call's state has this effect, whatever its trigger is
    called in the call's version (the dashboard's reassign: `move_centre`); payload's trigger is then
    only what a refusal names. step_first: a route (the recommendation accepted, or another chosen) from a
    call not yet in triage: the workflow's plain step before it (start_triage, WorkflowDefinition.step_before_route)
    is taken first, in the same transaction, and both are audited; if the route is refused, neither is."""
    cmd: FireTrigger = parse(FireTrigger, payload)
    now = svc.clock.now()
    with svc.uow() as uow:
        call = _call_to_change(uow, actor, ref, now)
        engine = uow.engine(svc, needs=(call.workflow, call.workflow_version))
        trigger = cmd.trigger
        if effect is not None:
            state = _state(call)
            by_effect = engine.definition(call.workflow, call.workflow_version).trigger_for(state, effect=effect)
            if by_effect is None:
                raise TriggerNotAllowed(cmd.trigger, state, [t.trigger for t in engine.allowed(call)])
            trigger = by_effect
        definition = engine.definition(call.workflow, call.workflow_version)
        # A transition that moves the call to another centre needs more than `act`: never under
        # break-glass (domain/access.call_trigger_action; docs/information-governance.md, section 4).
        transition = definition.transition(trigger, _state(call))
        if transition is not None and (needs := policy.call_trigger_action(transition.effects)) != "act":
            access.authorise(uow, actor, call, needs, now)
        # The routing table's recommendation, for a route (what it recommended, whether this overrides it) or a
        # claim to its out-of-hours alternative; a step that routes nowhere (start_triage, ...) reads none
        # (domain/guards.py, engine._record_route: nothing else looks at it).
        decision = (recommend(svc, call, now) if definition.routes(trigger) or claims_out_of_hours(cmd.data)
                    else None)
        if claim_errors := out_of_hours_claim(decision, cmd.data):
            raise RouteNotOffered(claim_errors)
        expected = cmd.expected_version
        if step_first and (step := definition.step_before_route(_state(call), trigger)) is not None:
            uow.record(engine.fire(call, step, actor=actor.username, now=now, expected_version=expected))
            expected = call.version
        result = engine.fire(call, trigger, actor=actor.username, now=now, data=cmd.data,
                             reason=cmd.reason, expected_version=expected,
                             recommendation=decision)
        uow.record(result)
        uow.commit()
    return call


def route_actions(svc: Services, call: Call) -> tuple[list[TransitionDef], str | None]:
    """The routes the call page offers (the recommendation and the others), and the plain step they need
    first, if any: those allowed now, or for a call nobody has started to triage those allowed after the
    workflow's plain step (start_triage), taken in the same action (fire_call_trigger(step_first=True))."""
    definition = definition_of(svc, call)
    state = _state(call)
    routes = [t for t in allowed_actions(svc, call) if t.route]
    for step in definition.plain_steps(state):
        later = [t for t in definition.triggers_from(step.dest)
                 if t.route and t.trigger not in {r.trigger for r in routes}]
        if later:
            return routes + later, step.trigger
    return routes, None


def _load_referral(uow: UnitOfWork, ref: str, referral_id: str) -> tuple[Call, Referral]:
    call = uow.calls.get(ref)
    referral = call.referral(referral_id) if call is not None else None
    if call is None or referral is None:
        raise NotFound(f"no referral {referral_id} on call {ref}")
    return call, referral


def service_triggers(svc: Services, referral: Referral) -> frozenset[str]:
    """What the receiving service's professionals may do to a referral (its version's triggers with the
    `service` role); anything else, withdrawing say, is the referrer's."""
    return definition_of(svc, referral).triggers_with_role(meaning.SERVICE)


def service_actions(svc: Services, referral: Referral) -> list[TransitionDef]:
    """The transitions a professional of the receiving service may take on a referral now."""
    mine = service_triggers(svc, referral)
    return [t for t in allowed_actions(svc, referral) if t.trigger in mine]


def fire_referral_trigger(svc: Services, actor: Actor, ref: str, referral_id: str, payload: dict[str, Any], *,
                          as_service: str | None = None, on_behalf: dict[str, Any] | None = None) -> Call:
    """as_service: a professional of that service acting (on their page, by SMS) on a referral to it,
    whatever the call's centre: only the triggers with the `service` role. Anyone else acts as a member of
    the call's centre, and only with the referrer's triggers (withdraw), by the one rule that also decides
    the call page's buttons (referral_actions): the receiving service's Accept, Decline, Start or Complete
    is refused to handlers and supervisors on every path (page, JSON API, service layer).

    on_behalf: added to the data of the audit events it causes, when someone acts for the service without
    being one of its professionals (a duty lead's SMS reply, service/replies.py)."""
    cmd: FireTrigger = parse(FireTrigger, payload)
    now = svc.clock.now()
    with svc.uow() as uow:
        call, referral = _load_referral(uow, ref, referral_id)
        if as_service is None:
            known = access.Facts(uow, actor, call, now)  # one set of facts for both questions
            access.authorise(uow, actor, call, "act", now, known)
            if not _may_fire(known, referral, definition_of(svc, referral, uow).roles_of(cmd.trigger)):
                raise Forbidden(f"'{cmd.trigger}' is for the receiving service's professionals "
                                f"({referral.service}), not the referring centre.")
        else:
            acting = Actor(actor.username, actor.role, actor.centre, as_service)
            known = access.Facts(uow, acting, call, now)
            access.authorise(uow, acting, call, "act_referral", now, known)
            if referral.service != as_service:
                raise Forbidden(f"Referral {referral_id} is to {referral.service}, not {as_service}.")
            if not _may_fire(known, referral, definition_of(svc, referral, uow).roles_of(cmd.trigger)):
                raise Forbidden(f"'{cmd.trigger}' is for the referring centre, not the service.")
        engine = uow.engine(svc, needs=(referral.workflow, referral.workflow_version))
        result = engine.fire_referral(call, referral_id, cmd.trigger, actor=actor.username, now=now,
                                      data=cmd.data, reason=cmd.reason,
                                      expected_version=cmd.expected_version)
        if on_behalf:
            for event in result.audit:
                event.data.update(on_behalf)
        uow.record(result)
        uow.commit()
    return call


def _may_fire(known: access.Facts, referral: Referral, roles: frozenset[str]) -> bool:
    record, _ = known.for_action(policy.referral_trigger_action(roles))
    return policy.may_fire_referral_trigger(known.subject, record, referral.service, roles)


def referral_actions(svc: Services, actor: Actor, call: Call) -> dict[str, list[TransitionDef]]:
    """Each referral's transitions (by id) that this actor may take now: those its state allows, of which
    the access policy lets them fire each trigger by its roles (domain/access.may_fire_referral_trigger):
    the receiving service's (`service` role) for its own professionals, the rest (withdraw) for whoever may
    change the call. The call page shows these; every path is refused anything else."""
    now = svc.clock.now()
    with svc.uow() as uow:
        record, _ = access.facts(uow, actor, call, now)
    who = access.subject(actor)
    return {r.id: [t for t in allowed_actions(svc, r)
                   if policy.may_fire_referral_trigger(who, record, r.service, t.roles)]
            for r in call.referrals}


class RerouteReferral(Input):
    """A supervisor moves a referral the service has not accepted to another service, in one action."""

    # All three are required; service and reason default to None only so that a missing one is
    # reported with its own message alongside the others.
    model_config = ConfigDict(json_schema_extra=lambda schema, _cls: schema.update(
        required=["service", "reason", "expected_version"]))

    service: str | None = Field(default=None, validate_default=True, max_length=8,
                                description="Code of the service to refer to instead (directory.yaml)")
    reason: str | None = Field(default=None, validate_default=True, max_length=2000,
                               description="Why: recorded on the withdrawal and on the new referral")
    # At most the column's integer, as for the other triggers' versions (service/inputs.FireTrigger): a
    # larger one is a wrong value (422 naming it), not a conflict with the record (409).
    expected_version: int = Field(ge=1, le=2**31 - 1, strict=True,
                                  description="The version of the referral being withdrawn, as last read")
    # Checked by the use case (sharing.parse_override) so that a list or a number is a field error on
    # consent_override.basis / .reason like any other, not a type error from pydantic.
    consent_override: Any = Field(default=None, description="Optional. " + CONSENT_OVERRIDE_DOC)

    @field_validator("service")
    @classmethod
    def _service(cls, v: str | None, info: ValidationInfo) -> str:
        if not v:
            raise refuse(fm.REQUIRED)
        known = (info.context or {}).get("services")
        if known is not None and v not in known:
            raise refuse(fm.UNKNOWN)
        return v

    @field_validator("reason")
    @classmethod
    def _reason(cls, v: str | None) -> str:
        if not v:
            raise refuse(fm.REQUIRED)
        return v


def may_reroute(role: str) -> bool:
    return role in CAPABILITIES["referrals.reroute"]


def reroutable(svc: Services, referral: Referral) -> bool:
    """Whether a referral may be re-routed now: while the service has not taken it on, i.e. its state
    is tagged `reroutable` in its own version."""
    return referral.state in definition_of(svc, referral).states_tagged(meaning.REROUTABLE)


def escalatable(svc: Services, referral: Referral) -> bool:
    """Whether a supervisor may escalate a referral now (its state tagged `escalatable` in its version)."""
    return referral.state in definition_of(svc, referral).states_tagged(meaning.ESCALATABLE)


def reroute_referral(svc: Services, actor: Actor, ref: str, referral_id: str,
                     payload: dict[str, Any]) -> tuple[Call, Referral]:
    """Withdraw an unaccepted referral (the call follows back to triage) and refer the call to another
    service, in one unit of work: both happen or neither. Returns the call and its new referral."""
    if not may_reroute(actor.role):
        raise Forbidden(f"only supervisors may re-route a referral; {actor.username} is a {actor.role}")
    cmd: RerouteReferral = parse(RerouteReferral, payload, services=svc.directory.services)
    _, override_errors = sharing.parse_override(cmd.consent_override, prefix=sharing.OVERRIDE_KEY)
    if override_errors:
        raise InvalidInput(override_errors)
    now = svc.clock.now()
    with svc.uow() as uow:
        call, referral = _load_referral(uow, ref, referral_id)
        access.authorise(uow, actor, call, "act", now)
        if cmd.expected_version != referral.version:
            raise VersionConflict(cmd.expected_version, referral.version)
        # One engine holds every deployed version; ask for both records' so neither is missing.
        referral_wf = definition_of(svc, referral, uow)
        engine = uow.engine(svc, needs=(call.workflow, call.workflow_version))
        if referral.state not in referral_wf.states_tagged(meaning.REROUTABLE):
            raise TriggerNotAllowed("reroute", _state(referral), [])
        if cmd.service == referral.service:
            raise InvalidInput({"service": fm.message("service", fm.SAME, service=referral.service)})
        # Withdraw by the referral version's `withdraw` trigger; the call follows (parent_trigger) to a
        # state it is referred from again by its `route: refer` transition (both checked on load).
        withdrawn = engine.fire_referral(call, referral_id, referral_wf.trigger_with_role(meaning.WITHDRAW),
                                         actor=actor.username, now=now, reason=cmd.reason,
                                         expected_version=cmd.expected_version)
        data: dict[str, Any] = {"service": cmd.service}
        if cmd.consent_override is not None:
            data[sharing.OVERRIDE_KEY] = cmd.consent_override
        state = _state(call)
        refer = engine.definition(call.workflow, call.workflow_version).trigger_for(state, route="refer")
        if refer is None:
            raise TriggerNotAllowed("refer", state, [t.trigger for t in engine.allowed(call)])
        referred = engine.fire(call, refer, actor=actor.username, now=now, data=data, reason=cmd.reason,
                               recommendation=recommend(svc, call, now))
        for event in referred.audit:
            if event.entity == "call" and event.trigger == refer:
                event.data = {**event.data, "reroute": {"from_referral": referral_id,
                                                        "from_service": referral.service}}
        result = Result()  # extend() drops the triage clock the call held only for an instant
        result.extend(withdrawn)
        result.extend(referred)
        uow.record(result)
        uow.commit()
    return call, referred.new_referrals[0]


class EscalationTooSoon(InvalidInput):
    """The referral was escalated by hand less than ESCALATION_REPEAT_MINUTES ago (docs/security.md,
    "Escalations"). An InvalidInput, so pages flash it and the API answers 422 with it under
    fields.escalation; retry_at (UTC) and retry_after_seconds say when it may be repeated, for a 429 with
    Retry-After."""

    def __init__(self, last_at: datetime, retry_at: datetime, now: datetime):
        from ..domain.sms.timetext import local_time_text

        self.last_at, self.retry_at = last_at, retry_at
        self.retry_after_seconds = max(1, int((retry_at - now).total_seconds() + 0.999))
        minutes = -(-self.retry_after_seconds // 60)
        super().__init__({"escalation": (
            f"It was escalated at {local_time_text(last_at, now)}; the duty lead has been texted. It may be "
            f"escalated again from {local_time_text(retry_at, now)} "
            f"(in {minutes} minute{'s' if minutes > 1 else ''}).")})


def escalate_referral(svc: Services, actor: Actor, ref: str, referral_id: str, reason: str | None) -> Call:
    """A supervisor chases an open referral now: audited on the referral (its state unchanged, its version
    too) and an outbox event whose text goes to the receiving service's duty lead."""
    if actor.role not in CAPABILITIES["referrals.escalate"]:
        raise Forbidden(f"only supervisors may escalate a referral; {actor.username} is a {actor.role}")
    if reason is not None and not isinstance(reason, str):
        raise InvalidInput({"reason": "Must be text."})
    if reason is not None and (problem := text_problem(reason, multiline=True, field="reason")):
        raise InvalidInput({"reason": problem})  # a NUL, a bidi override: never stored
    reason = (reason or "").strip()
    if not reason or looks_blank(reason):  # only invisible characters: as empty (domain/validation.py)
        raise InvalidInput({"reason": "Say why you are escalating: the duty lead and the record see it."})
    if len(reason) > 2000:
        raise InvalidInput({"reason": "At most 2000 characters."})
    now = svc.clock.now()
    with svc.uow() as uow:
        call, referral = _load_referral(uow, ref, referral_id)
        access.authorise(uow, actor, call, "act", now)
        # A referral the service has not finished with: its version's `escalatable` states.
        if referral.state not in definition_of(svc, referral, uow).states_tagged(meaning.ESCALATABLE):
            raise TriggerNotAllowed("escalate", _state(referral), [])
        _not_escalated_lately(svc, uow, call.ref, referral.id, now)
        clock = uow.referrals.running_clock(referral.id)
        result = Result()
        result.audit.append(AuditEvent(
            call_ref=call.ref, entity="referral", entity_id=referral.id, actor=actor.username, at=now,
            from_state=referral.state, to_state=referral.state, trigger="escalate", reason=reason,
            data={"service": referral.service}))
        # Codes and references only, like every outbox payload: the reason stays on the record.
        result.outbox.append(outbox_event(
            "referral.escalated", call, referral, now, state=referral.state,
            clock=clock.kind if clock else None, due_at=(clock.due_at if clock else now).isoformat()))
        uow.record(result)
        uow.commit()
    return call


def _not_escalated_lately(svc: Services, uow: UnitOfWork, ref: str, referral_id: str,
                          now: datetime) -> None:
    """One escalation by hand per referral per ESCALATION_REPEAT_MINUTES: the duty lead is texted each
    time, and 14 presses in 11 seconds were 14 texts. The referral's row is locked first (PostgreSQL; on
    SQLite every writing transaction already waits for the one before), so two supervisors pressing at once
    cannot both find no recent escalation: the second waits, then sees the first's audit event."""
    from datetime import timedelta

    from .sms import escalation_settings

    repeat_after = escalation_settings(svc).repeat_after
    if repeat_after <= timedelta(0):
        return
    uow.referrals.lock(referral_id)
    last = uow.referrals.last_escalated_at(ref, referral_id)
    if last is not None and now < last + repeat_after:
        raise EscalationTooSoon(last, last + repeat_after, now)


def record_consent(svc: Services, actor: Actor, ref: str, payload: dict[str, Any]) -> Call:
    """Record the person's consent to share as it is now (asked again, or they changed their mind): who
    and when are the actor and now. A change like any other: the call's version moves (a stale form is
    a conflict), and the audit trail keeps from and to. It governs referrals from now on only; those
    already sent keep the basis they were sent on."""
    cmd: RecordConsent = parse(RecordConsent, payload)
    now = svc.clock.now()
    with svc.uow() as uow:
        call = _call_to_change(uow, actor, ref, now)
        if cmd.expected_version != call.version:
            raise VersionConflict(cmd.expected_version, call.version)
        if cmd.consent == call.consent:
            raise InvalidInput({"consent": fm.message("consent", fm.SAME, current=sharing.CONSENT[cmd.consent])})
        before = call.consent
        call.consent, call.consent_recorded_by, call.consent_recorded_at = cmd.consent, actor.username, now
        call.version += 1
        call.updated_at = now
        uow.record(Result(audit=[AuditEvent(
            call_ref=call.ref, entity="call", entity_id=call.ref, actor=actor.username, at=now,
            from_state=call.state, to_state=_state(call), trigger="record_consent", reason=cmd.reason,
            data={"from": before, "to": cmd.consent})]))
        uow.commit()
    return call


def allowed_actions(svc: Services, entity: Call | Referral) -> list[TransitionDef]:
    return svc.engine(needs=(entity.workflow, entity.workflow_version)).allowed(entity)


__all__ = [
    "Actor", "NotFound", "Forbidden", "OutsideRelationship", "DuplicateSuspected", "OpenCall", "InvalidInput",
    "TriggerNotAllowed",
    "decide_route", "recommend", "log_call", "get_call", "fire_call_trigger", "fire_referral_trigger",
    "allowed_actions", "route_actions", "referral_actions", "RerouteReferral", "reroute_referral", "may_reroute",
    "reroutable", "escalatable", "may_view",
    "service_triggers", "service_actions", "escalate_referral", "record_consent",
]
