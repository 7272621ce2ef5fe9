"""The engine applies a trigger to a call (or one of its referrals): checks the guard, changes the state,
bumps the version and returns the audit events and outbox messages the change causes. Pure: persisting
them in one transaction is the service layer's job."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from transitions import MachineError

from .errors import GuardFailed, TriggerNotAllowed, VersionConflict, WorkflowError
from .guards import (
    EFFECTS,
    GUARDS,
    OUT_OF_HOURS_KEY,
    FireContext,
    describe_choice,
    out_of_hours_reason,
    out_of_hours_taken,
    recommended_choice,
    sharing_allowed,
)
from .meaning import CALL_WORKFLOW, REFERRAL_WORKFLOW, TIER3_REVIEW
from .model import AuditEvent, Call, OutboxMessage, Referral, Timer
from .sharing import OVERRIDE_KEY
from .workflow import CompiledWorkflow, TransitionDef, WorkflowDefinition, check_family

__all__ = ["CALL_WORKFLOW", "REFERRAL_WORKFLOW", "Engine", "Result", "outbox_event"]


@dataclass
class Result:
    audit: list[AuditEvent] = field(default_factory=list)
    outbox: list[OutboxMessage] = field(default_factory=list)
    new_referrals: list[Referral] = field(default_factory=list)
    timers: list[Timer] = field(default_factory=list)
    # Clocks that stopped (or started afresh): (call ref, referral id or None, kind, when). The service
    # layer closes their running timers in the same transaction.
    stopped_clocks: list[tuple[str, str | None, str, datetime]] = field(default_factory=list)

    def extend(self, other: Result) -> None:
        # A clock started by this change and stopped by the next, in one transaction, never ran.
        stopped = {(ref, rid, kind) for ref, rid, kind, _ in other.stopped_clocks}
        self.timers = [t for t in self.timers if (t.call_ref, t.referral_id, t.kind) not in stopped]
        self.audit += other.audit
        self.outbox += other.outbox
        self.new_referrals += other.new_referrals
        self.timers += other.timers
        self.stopped_clocks += other.stopped_clocks


def _check(event: Any, t: TransitionDef) -> bool:
    ctx: FireContext = event.kwargs["ctx"]
    for name in t.conditions:
        for fieldname, message in GUARDS[name](event.model, ctx, t.route).items():
            ctx.errors.setdefault(fieldname, message)
    # Consent to share is checked for every transition that creates a referral, whatever its definition
    # names as conditions: a definition cannot forget it, and no workflow version changes for it.
    if "create_referral" in t.effects:
        for fieldname, message in sharing_allowed(event.model, ctx).items():
            ctx.errors.setdefault(fieldname, message)
    return not ctx.errors


class Engine:
    def __init__(self, definitions: Iterable[WorkflowDefinition], directory: Any = None, sla: Any = None):
        defs = list(definitions)
        check_family(defs)
        self.directory = directory
        self.sla = sla  # an SlaPolicy: without one (some unit tests) no clock is kept
        self._clock_changes: dict[tuple[str, int, str | None, str, str], tuple[tuple[str, bool, bool], ...]] = {}
        self._compiled: dict[tuple[str, int], CompiledWorkflow] = {
            d.key: CompiledWorkflow(d, _check) for d in defs}
        self._latest: dict[str, WorkflowDefinition] = {}
        for d in defs:
            if d.name not in self._latest or d.version > self._latest[d.name].version:
                self._latest[d.name] = d
        for needed in (CALL_WORKFLOW, REFERRAL_WORKFLOW):
            if needed not in self._latest:
                raise WorkflowError(f"no '{needed}' workflow is defined")

    def has(self, name: str, version: int) -> bool:
        return (name, version) in self._compiled

    def latest(self, name: str) -> WorkflowDefinition:
        return self._latest[name]

    def definition(self, name: str, version: int) -> WorkflowDefinition:
        return self._compiled[(name, version)].definition

    def definitions(self) -> list[WorkflowDefinition]:
        return [c.definition for c in self._compiled.values()]

    def allowed(self, entity: Call | Referral) -> list[TransitionDef]:
        """What a user may do now: the machine's triggers for the state, less internal ones."""
        compiled = self._compiled[(entity.workflow, entity.workflow_version)]
        names = set(compiled.allowed_triggers(_state(entity)))
        return [t for t in compiled.definition.triggers_from(_state(entity)) if t.trigger in names]

    def start_call(self, call: Call, *, actor: str, now: datetime) -> Result:
        wf = self.definition(call.workflow, call.workflow_version)
        call.state, call.version = wf.initial, 1
        result = Result()
        result.audit.append(AuditEvent(
            call_ref=call.ref, entity="call", entity_id=call.ref, actor=actor, at=now,
            from_state=None, to_state=wf.initial, trigger="log",
            data={"centre": call.centre, "need": call.need, "urgency": call.urgency,
                  "recommended": call.recommended}))
        result.outbox.append(outbox_event("call.logged", call, None, now, to=wf.initial))
        self._clocks(result, call, None, None, call.state, "log", now)
        return result

    def fire(self, call: Call, trigger: str, *, actor: str, now: datetime,
             data: dict[str, Any] | None = None, reason: str | None = None,
             expected_version: int | None = None, recommendation: Any = None,
             allow_internal: bool = False) -> Result:
        if expected_version is not None and expected_version != call.version:
            raise VersionConflict(expected_version, call.version)
        ctx = FireContext(actor=actor, now=now, data=dict(data or {}), reason=reason, call=call,
                          directory=self.directory, recommendation=recommendation,
                          call_workflow=self.definition(call.workflow, call.workflow_version))
        t = self._apply(call, trigger, ctx, allow_internal)
        if not (reason or "").strip() and out_of_hours_taken(recommendation, t.route, ctx.data):
            # The routing table's out-of-hours alternative needs no typed reason: the record says why.
            reason = ctx.reason = out_of_hours_reason(recommendation)
        result = Result()
        # Only the inputs this transition takes: what a client sends besides is not part of the record.
        audit_data: dict[str, Any] = {k: v for k, v in ctx.data.items() if k in t.needs}
        if t.route:
            audit_data.update(self._record_route(call, t, ctx))
        if ctx.sharing is not None and ctx.sharing.override is not None:
            audit_data[OVERRIDE_KEY] = {"basis": ctx.sharing.override.basis, "reason": ctx.sharing.override.reason}
        for name in t.effects:
            if name == "create_referral":
                result.extend(self._create_referral(call, ctx))
            else:
                _effect(name)(call, ctx)
        result.audit.insert(0, AuditEvent(
            call_ref=call.ref, entity="call", entity_id=call.ref, actor=actor, at=now,
            from_state=t.from_state, to_state=_state(call), trigger=trigger, reason=reason, data=audit_data))
        result.outbox.insert(0, outbox_event("call.state_changed", call, None, now,
                                              from_=t.from_state, to=call.state, trigger=trigger))
        if call.route and call.route.get("alert_supervisor") and t.route:
            result.outbox.append(outbox_event("alert.supervisor", call, None, now,
                                               why=call.route.get("rule_reason", "routing rule")))
        self._clocks(result, call, None, t.from_state, _state(call), trigger, now)
        return result

    def fire_referral(self, call: Call, referral_id: str, trigger: str, *, actor: str, now: datetime,
                      data: dict[str, Any] | None = None, reason: str | None = None,
                      expected_version: int | None = None) -> Result:
        referral = call.referral(referral_id)
        if referral is None:
            raise KeyError(referral_id)
        if expected_version is not None and expected_version != referral.version:
            raise VersionConflict(expected_version, referral.version)
        ctx = FireContext(actor=actor, now=now, data=dict(data or {}), reason=reason, call=call,
                          directory=self.directory,
                          call_workflow=self.definition(call.workflow, call.workflow_version))
        t = self._apply(referral, trigger, ctx, allow_internal=False)
        for name in t.effects:
            _effect(name)(referral, ctx)
        result = Result()
        result.audit.append(AuditEvent(
            call_ref=call.ref, entity="referral", entity_id=referral.id, actor=actor, at=now,
            from_state=t.from_state, to_state=_state(referral), trigger=trigger, reason=reason,
            data={"service": referral.service}))
        result.outbox.append(outbox_event("referral.state_changed", call, referral, now,
                                           from_=t.from_state, to=referral.state, trigger=trigger))
        self._clocks(result, call, referral, t.from_state, _state(referral), trigger, now)
        if t.parent_trigger:
            # The call follows its referral, in the same transaction.
            result.extend(self.fire(call, t.parent_trigger, actor=actor, now=now, reason=reason,
                                    data={"referral_id": referral.id}, allow_internal=True))
        return result

    # -- internals -------------------------------------------------------------------------------

    @dataclass
    class _Applied:
        from_state: str
        route: str | None
        effects: tuple[str, ...]
        parent_trigger: str | None
        needs: tuple[str, ...]

    def _apply(self, entity: Call | Referral, trigger: str, ctx: FireContext,
               allow_internal: bool) -> Engine._Applied:
        """The shared machine decides: whether the trigger may fire from the record's state (internal
        triggers only for the engine itself), its guards, and the destination; its `after` callback says
        which transition it took (ctx.transition). Nothing is looked up twice."""
        compiled = self._compiled[(entity.workflow, entity.workflow_version)]
        machine = compiled.machine if allow_internal else compiled.user_machine
        from_state = _state(entity)
        event = machine.events.get(trigger)
        try:
            moved = event is not None and event.trigger(entity, ctx=ctx)
        except MachineError:  # the trigger exists, but not from this state
            moved = None
        if not moved:
            if not ctx.errors:  # a failed guard always names a field (_check)
                raise TriggerNotAllowed(trigger, _state(entity), [x.trigger for x in self.allowed(entity)])
            raise GuardFailed(trigger, ctx.errors)
        t: TransitionDef = ctx.transition
        entity.version += 1
        entity.updated_at = ctx.now
        if entity.state in compiled.definition.final_states:
            entity.closed_at = ctx.now
        return Engine._Applied(from_state, t.route, t.effects, t.parent_trigger, t.needs)

    def _record_route(self, call: Call, t: Engine._Applied, ctx: FireContext) -> dict[str, Any]:
        service = ctx.data.get("service") if t.route == "refer" else None
        rec = ctx.recommendation
        overridden = False
        route: dict[str, Any] = {"kind": t.route, "service": service, "decided_at": ctx.now.isoformat(),
                                 "decided_by": ctx.actor}
        if rec is not None:
            rec_kind, rec_service = recommended_choice(rec)
            # In tier 3 review the reviewer decides the route: no override (the state's tag, meaning.py).
            reviewed = t.from_state in ctx.call_workflow.states_tagged(TIER3_REVIEW)
            overridden = (t.route, service) != (rec_kind, rec_service) and not reviewed
            route.update(recommended=describe_choice(rec_kind, rec_service), rule=rec.rule,
                         rule_reason=rec.reason, alert_supervisor=bool(rec.alert_supervisor))
        route.update(overridden=overridden, override_reason=ctx.reason if overridden else None)
        recorded = {"route": t.route, "override": overridden, "recommended": route.get("recommended"),
                    "rule": route.get("rule")}
        if out_of_hours_taken(rec, t.route, ctx.data):
            route[OUT_OF_HOURS_KEY] = recorded[OUT_OF_HOURS_KEY] = True
        call.route = route
        return recorded

    def _create_referral(self, call: Call, ctx: FireContext) -> Result:
        wf = self.latest(REFERRAL_WORKFLOW)
        referral = Referral(service=ctx.data["service"], workflow=wf.name, workflow_version=wf.version,
                            sent_at=ctx.now, sent_by=ctx.actor)
        referral.state, referral.version = wf.initial, 1
        data: dict[str, Any] = {"service": referral.service}
        if ctx.sharing is not None:  # None only for an engine without a directory (unit tests)
            referral.sharing_basis = ctx.sharing.basis
            referral.sharing_reason = ctx.sharing.override.reason if ctx.sharing.override else None
            data["sharing"] = ctx.sharing.audit(call.consent)
        call.referrals.append(referral)
        result = Result(new_referrals=[referral])
        result.audit.append(AuditEvent(
            call_ref=call.ref, entity="referral", entity_id=referral.id, actor=ctx.actor, at=ctx.now,
            from_state=None, to_state=referral.state, trigger="refer", reason=ctx.reason, data=data))
        result.outbox.append(outbox_event("referral.sent", call, referral, ctx.now, to=referral.state))
        self._clocks(result, call, referral, None, referral.state, "refer", ctx.now)
        return result

    def _clocks(self, result: Result, call: Call, referral: Referral | None, from_state: str | None,
                to_state: str, trigger: str, now: datetime) -> None:
        """Start and stop the SLA clocks this state change affects (sla.yaml, clocks)."""
        if self.sla is None:
            return
        subject = referral if referral is not None else call
        key = (subject.workflow, subject.workflow_version, from_state, to_state, trigger)
        changes = self._clock_changes.get(key)
        if changes is None:
            changes = self._clock_changes[key] = self._changes(key)
        for kind, stops, starts in changes:
            if stops:
                result.stopped_clocks.append((call.ref, referral.id if referral else None, kind, now))
            if starts:
                clock = self._due(kind, call, referral, now)
                if clock is not None:
                    result.timers.append(Timer(
                        kind=kind, call_ref=call.ref, referral_id=referral.id if referral else None,
                        due_at=clock.due_at, set_at_version=subject.version, rule=clock.rule, created_at=now))

    def _changes(self, key: tuple[str, int, str | None, str, str]) -> tuple[tuple[str, bool, bool], ...]:
        """The clocks a state change of a workflow version starts or stops: (kind, stops, starts), stops
        also when it starts afresh. Depends only on the definitions and the policy, both fixed for this
        engine: worked out once per change (_clocks, every workflow step)."""
        workflow, version, from_state, to_state, trigger = key
        definition = self.definition(workflow, version)
        out = []
        for kind, binding in self.sla.clocks.items():
            if binding.workflow != workflow:
                continue
            change = binding.change(definition, from_state, to_state, trigger)
            if change is None:
                continue
            stops = change == "stop" or from_state in binding.states(definition)  # stopped, or restarted
            out.append((kind, stops, change == "start"))
        return tuple(out)

    def _due(self, kind: str, call: Call, referral: Referral | None, now: datetime) -> Any:
        sla, directory = self.sla, self.directory
        if kind == "triage":
            centre = directory.centres.get(call.centre) if directory else None
            if centre is None:
                return None
            return sla.triage_due(call.urgency, now, centre.calendar)
        if kind == "callback":
            if call.callback_due is None:
                return None
            promised = sla.callback_due(call.callback_due)
            return type(promised)("callback", sla.callback_escalates_at(call.callback_due), promised.rule)
        service = directory.services.get(referral.service) if directory and referral else None
        if service is None or referral is None:
            return None
        if kind == "acceptance":
            return sla.acceptance_due(call.urgency, now, service.calendar)
        if kind == "response" and referral.service in sla.response:
            return sla.response_due(referral.service, call.urgency, now, service.calendar)
        return None



def _state(entity: Call | Referral) -> str:
    """A started call's or referral's state (None only before start_call or the referral's creation set
    its initial state; only the machine moves it after)."""
    if entity.state is None:
        raise WorkflowError(f"{type(entity).__name__} has no state: it was never started")
    return entity.state


def _effect(name: str) -> Callable[[Any, FireContext], None]:
    """An effect a transition names (create_referral is the engine's own: applied by start_call's caller)."""
    effect = EFFECTS[name]
    if effect is None:
        raise TypeError(f"effect {name!r} is applied by the engine itself")
    return effect


def outbox_event(topic: str, call: Any, referral: Any | None, now: datetime, **extra: Any) -> OutboxMessage:
    """An outbox event about a call (and one of its referrals): entities or rows with their attributes.
    References and codes only: outbox payloads feed SMS and logs, where identifiers must never go."""
    payload: dict[str, Any] = {"ref": call.ref, "centre": call.centre, "urgency": call.urgency,
                               "need": call.need, "version": call.version}
    if referral is not None:
        payload.update(referral_id=referral.id, service=referral.service, referral_version=referral.version)
    for key, value in extra.items():
        payload[key.rstrip("_")] = value
    return OutboxMessage(topic=topic, payload=payload, created_at=now)
