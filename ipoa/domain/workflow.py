"""Workflow definitions: loaded from YAML data, validated, compiled once into a shared `transitions`
machine per (name, version). Records never get a machine of their own (a machine per object costs
~0.1 ms and tens of KiB: docs/stack-notes.md, "transitions"); the shared machine is fired with the record
as its model. What states and triggers mean to the rest of the code (their tags and roles) is checked here
too: domain/meaning.py."""
from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from transitions import Machine

from . import meaning
from .errors import WorkflowError

_TOP_KEYS = {"name", "version", "description", "initial", "final", "states", "transitions", "parent"}
_STATE_KEYS = {"name", "label", "waiting", "description", "tags"}
_TRANSITION_KEYS = {
    "trigger", "label", "source", "dest", "conditions", "effects", "route",
    "internal", "parent_trigger", "description", "needs", "roles",
}
ROUTE_KINDS = {"refer", "resolved_at_first_contact", "divert_999", "tier3_review"}


@dataclass(frozen=True)
class StateDef:
    name: str
    label: str
    final: bool
    waiting: bool  # counts as waiting in a queue (oldest-wait figures)
    tags: frozenset[str] = frozenset()  # what the state means to the code (domain/meaning.py)


@dataclass(frozen=True)
class TransitionDef:
    trigger: str
    label: str
    sources: tuple[str, ...]
    dest: str
    conditions: tuple[str, ...] = ()
    effects: tuple[str, ...] = ()
    route: str | None = None
    internal: bool = False
    parent_trigger: str | None = None
    needs: tuple[str, ...] = ()  # input fields a form must offer for this trigger
    roles: frozenset[str] = frozenset()  # what the trigger means to the code (domain/meaning.py)


@dataclass
class WorkflowDefinition:
    name: str
    version: int
    initial: str
    states: dict[str, StateDef]
    transitions: tuple[TransitionDef, ...]
    parent: str | None = None
    description: str = ""
    source: str = "<data>"
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    # states_tagged's answers: a definition is never changed once read (a corrected meaning is a new one).
    _tagged: dict[str, frozenset[str]] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def key(self) -> tuple[str, int]:
        return (self.name, self.version)

    @property
    def checksum(self) -> str:
        """Of the machine's shape: everything but the tags and roles, which are meaning and may be corrected
        on a deployed version (domain/meaning.py). A definition written before tags existed has the same
        checksum as before."""
        return meaning.digest(meaning.strip_meaning(self.raw))

    @property
    def meaning_checksum(self) -> str:
        return meaning.digest(meaning.meaning_of(self.raw))

    @property
    def final_states(self) -> set[str]:
        return {s.name for s in self.states.values() if s.final}

    @property
    def open_states(self) -> frozenset[str]:
        """The states a record is still open in: those `final` does not list (its closed_at is unset)."""
        return frozenset(s.name for s in self.states.values() if not s.final)

    def states_tagged(self, tag: str) -> frozenset[str]:
        """The states carrying a tag (domain/meaning.py): empty for a tag of the other workflow."""
        found = self._tagged.get(tag)
        if found is None:
            meaning.known_state_tag(tag)
            found = self._tagged[tag] = frozenset(s.name for s in self.states.values() if tag in s.tags)
        return found

    def triggers_with_role(self, role: str) -> frozenset[str]:
        """The triggers carrying a role (domain/meaning.py): empty for a role of the other workflow."""
        meaning.known_trigger_role(role)
        return frozenset(t.trigger for t in self.transitions if role in t.roles)

    def trigger_with_role(self, role: str) -> str:
        """The one trigger of a role this workflow must have exactly one of (checked on load)."""
        (trigger,) = self.triggers_with_role(role)
        return trigger

    def roles_of(self, trigger: str) -> frozenset[str]:
        return next((t.roles for t in self.transitions if t.trigger == trigger), frozenset())

    def trigger_for(self, state: str, *, route: str | None = None, effect: str | None = None) -> str | None:
        """The trigger leaving `state` by a transition of this route kind (or with this effect), if any:
        re-routing refers again by the `route: refer` transition, the dashboard reassigns by `move_centre`."""
        return next((t.trigger for t in self.transitions if state in t.sources
                     and (route is None or t.route == route) and (effect is None or effect in t.effects)), None)

    def plain_steps(self, state: str) -> list[TransitionDef]:
        """Transitions from `state` that are not internal, route nowhere and need, check and do nothing
        (start_triage, from logged or transferred): steps ipoa may take on a handler's behalf before a route
        they chose. A step with effects (call_back clears a promised callback) or conditions is never one."""
        return [t for t in self.triggers_from(state) if not (t.route or t.needs or t.conditions or t.effects)]

    def step_before_route(self, state: str, trigger: str) -> str | None:
        """The plain step after which the route `trigger` may fire, when it may not fire from `state` now:
        so accepting the recommended route for a call nobody has started to triage is one action, audited
        as both transitions. None when it may fire now, is not a route, or no plain step leads to it."""
        if self.transition(trigger, state) is not None:
            return None
        return next((step.trigger for step in self.plain_steps(state)
                     if (after := self.transition(trigger, step.dest)) is not None and after.route), None)

    def routes(self, trigger: str) -> bool:
        """Whether any transition of this trigger takes a route (refer, advice, ...): only those read the
        routing table's recommendation (the override check, the route recorded)."""
        return any(t.route for t in self.transitions if t.trigger == trigger)

    def transition(self, trigger: str, source: str) -> TransitionDef | None:
        return next((t for t in self.transitions if t.trigger == trigger and source in t.sources), None)

    def triggers_from(self, state: str, include_internal: bool = False) -> list[TransitionDef]:
        return [t for t in self.transitions
                if state in t.sources and (include_internal or not t.internal)]

    def mermaid(self, counts: dict[str, int] | None = None) -> str:
        """stateDiagram-v2 text; with counts, each state is labelled with its live number of records."""
        lines = ["stateDiagram-v2", f"    [*] --> {self.initial}"]
        for s in self.states.values():
            label = s.label + (f" ({counts.get(s.name, 0)})" if counts is not None else "")
            lines.append(f"    {s.name} : {label}")
        for t in self.transitions:
            for src in t.sources:
                lines.append(f"    {src} --> {t.dest} : {t.trigger}")
        for name in sorted(self.final_states):
            lines.append(f"    {name} --> [*]")
        return "\n".join(lines) + "\n"


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _closure(start: set[str], edges: dict[str, set[str]]) -> set[str]:
    """Every state reachable from `start` along `edges`."""
    seen, todo = set(start), deque(start)
    while todo:
        for nxt in edges[todo.popleft()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def parse_definition(
    data: Any,
    source: str,
    known_guards: Iterable[str],
    known_effects: Iterable[str],
) -> WorkflowDefinition:
    """Validate one definition; every problem raises WorkflowError naming the source and the problem."""

    def fail(problem: str) -> WorkflowError:
        return WorkflowError(f"{source}: {problem}")

    if not isinstance(data, dict):
        raise fail("a workflow definition must be a mapping")
    raw = copy.deepcopy(data)
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise fail(f"unknown keys {sorted(unknown)}")
    name, version = data.get("name"), data.get("version")
    if not isinstance(name, str) or not name.isidentifier():
        raise fail("'name' must be an identifier")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise fail("'version' must be a whole number from 1")

    parent = data.get("parent")
    if parent is not None and (not isinstance(parent, str) or not parent.isidentifier()):
        raise fail("'parent' must be the name of a workflow")
    final_list = _as_list(data.get("final"))
    for f in final_list:
        if not isinstance(f, str):
            raise fail(f"final state {f!r} is not a defined state")
    final = set(final_list)
    states: dict[str, StateDef] = {}
    for entry in _as_list(data.get("states")):
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise fail(f"bad state entry {entry!r}")
        sname = entry["name"]
        bad = set(entry) - _STATE_KEYS
        if bad:
            raise fail(f"state '{sname}' has unknown keys {sorted(bad)}")
        if not sname.isidentifier():
            raise fail(f"state name {sname!r} must be an identifier")
        if sname in states:
            raise fail(f"state '{sname}' is defined twice")
        states[sname] = StateDef(
            name=sname,
            label=str(entry.get("label", sname.replace("_", " ").capitalize())),
            final=sname in final,
            waiting=bool(entry.get("waiting", False)),
            tags=meaning.parse_words(entry.get("tags"), meaning.STATE_TAGS, name, f"state '{sname}'", "tag",
                                     fail),
        )
    if not states:
        raise fail("no states")
    for f in final:
        if f not in states:
            raise fail(f"final state '{f}' is not a defined state")
    initial = data.get("initial")
    if not isinstance(initial, str) or initial not in states:
        raise fail(f"initial state '{initial}' is not a defined state")

    guards, effects = set(known_guards), set(known_effects)
    transitions: list[TransitionDef] = []
    seen: dict[tuple[str, str], int] = {}
    for i, t in enumerate(_as_list(data.get("transitions")), start=1):
        where = f"transition {i}"
        if not isinstance(t, dict):
            raise fail(f"{where} must be a mapping")
        bad = set(t) - _TRANSITION_KEYS
        if bad:
            raise fail(f"{where} has unknown keys {sorted(bad)}")
        trig = t.get("trigger")
        if not isinstance(trig, str) or not trig.isidentifier():
            raise fail(f"{where}: 'trigger' must be an identifier")
        where = f"transition {i} ('{trig}')"
        sources = _as_list(t.get("source"))
        if sources == ["*"]:
            sources = [s for s in states if s not in final]
        if not sources:
            raise fail(f"{where} has no source")
        for s in sources:
            if not isinstance(s, str) or s not in states:
                raise fail(f"{where}: unknown source state '{s}'")
            if s in final:
                raise fail(f"{where}: final state '{s}' cannot have outgoing transitions")
            if (trig, s) in seen:
                raise fail(f"{where}: duplicate trigger '{trig}' from state '{s}' "
                           f"(also transition {seen[(trig, s)]})")
            seen[(trig, s)] = i
        dest = t.get("dest")
        if not isinstance(dest, str) or dest not in states:
            raise fail(f"{where}: unknown destination state '{dest}'")
        conds = _as_list(t.get("conditions"))
        for c in conds:
            if not isinstance(c, str) or c not in guards:
                raise fail(f"{where}: unknown guard {c!r} (known: {', '.join(sorted(guards))})")
        effs = _as_list(t.get("effects"))
        for e in effs:
            if not isinstance(e, str) or e not in effects:
                raise fail(f"{where}: unknown effect {e!r} (known: {', '.join(sorted(effects))})")
        route = t.get("route")
        if route is not None and (not isinstance(route, str) or route not in ROUTE_KINDS):
            raise fail(f"{where}: unknown route kind {route!r}")
        parent_trigger = t.get("parent_trigger")
        if parent_trigger is not None and (not isinstance(parent_trigger, str)
                                           or not parent_trigger.isidentifier()):
            raise fail(f"{where}: 'parent_trigger' must be a trigger name")
        needs = _as_list(t.get("needs"))
        for n in needs:
            if not isinstance(n, str):
                raise fail(f"{where}: 'needs' must list field names, not {n!r}")
        transitions.append(TransitionDef(
            trigger=trig,
            label=str(t.get("label", trig.replace("_", " ").capitalize())),
            sources=tuple(sources),
            dest=dest,
            conditions=tuple(conds),
            effects=tuple(effs),
            route=route,
            internal=bool(t.get("internal", False)),
            parent_trigger=parent_trigger,
            needs=tuple(needs),
            roles=meaning.parse_words(t.get("roles"), meaning.TRIGGER_ROLES, name, where, "role", fail),
        ))
    if not transitions:
        raise fail("no transitions")

    outgoing: dict[str, set[str]] = {s: set() for s in states}
    for t in transitions:
        for s in t.sources:
            outgoing[s].add(t.dest)
    reachable = _closure({initial}, outgoing)
    unreachable = [s for s in states if s not in reachable]
    if unreachable:
        raise fail(f"unreachable states from '{initial}': {', '.join(unreachable)}")
    if not final:
        raise fail("no final state declared")
    dead = [s for s in states if s not in final and not outgoing[s]]
    if dead:
        raise fail(f"dead-end states (not final, no way out): {', '.join(dead)}")
    # A cycle with no exit is a dead end too: every state must be able to finish.
    incoming: dict[str, set[str]] = {s: set() for s in states}
    for src, dests in outgoing.items():
        for d in dests:
            incoming[d].add(src)
    can_finish = _closure(final, incoming)
    trapped = [s for s in states if s not in can_finish]
    if trapped:
        raise fail(f"dead-end states (no path to a final state): {', '.join(trapped)}")
    meaning.check_definition(name, states, transitions, fail)

    return WorkflowDefinition(
        name=name, version=version, initial=initial, states=states,
        transitions=tuple(transitions), parent=parent,
        description=str(data.get("description", "")), source=source, raw=raw,
    )


class CompiledWorkflow:
    """A definition and its shared `transitions` machines, which decide whether a trigger may fire from a
    record's state, run its guards (conditions) and move the record to the destination. `machine` holds
    every transition, for the engine (a referral moving its call by an internal trigger); `user_machine`
    leaves out internal ones, so a user firing one is refused by the machine like any trigger not allowed."""

    def __init__(self, definition: WorkflowDefinition, check: Callable[[Any, TransitionDef], bool]):
        self.definition = definition
        self.machine = self._machine(definition, definition.transitions, check)
        self.user_machine = self._machine(definition, [t for t in definition.transitions if not t.internal], check)

    @staticmethod
    def _machine(definition: WorkflowDefinition, transitions: Iterable[TransitionDef],
                 check: Callable[[Any, TransitionDef], bool]) -> Machine:
        spec = []
        for t in transitions:
            spec.append({
                "trigger": t.trigger,
                "source": list(t.sources),
                "dest": t.dest,
                # One combined condition per transition so every guard runs and all field errors are
                # collected, not just the first.
                "conditions": [lambda event, _t=t: check(event, _t)],
                # Which transition the machine took, for the engine's effects, audit and outbox.
                "after": [lambda event, _t=t: setattr(event.kwargs["ctx"], "transition", _t)],
            })
        return Machine(
            model=None,
            states=list(definition.states),
            transitions=spec,
            initial=definition.initial,
            auto_transitions=False,
            send_event=True,
            ignore_invalid_triggers=False,
        )

    def allowed_triggers(self, state: str) -> list[str]:
        """What a user may fire from a state (internal triggers left out)."""
        return self.user_machine.get_triggers(state)


def check_family(definitions: Iterable[WorkflowDefinition]) -> None:
    """Cross-definition checks: a child's parent_trigger must exist in the latest parent version."""
    latest: dict[str, WorkflowDefinition] = {}
    for d in definitions:
        if d.name not in latest or d.version > latest[d.name].version:
            latest[d.name] = d
    for d in latest.values():
        if d.parent is None:
            continue
        parent = latest.get(d.parent)
        if parent is None:
            raise WorkflowError(f"{d.source}: parent workflow '{d.parent}' is not defined")
        parent_triggers = {t.trigger for t in parent.transitions}
        for t in d.transitions:
            if t.parent_trigger and t.parent_trigger not in parent_triggers:
                raise WorkflowError(
                    f"{d.source}: transition '{t.trigger}' names parent trigger '{t.parent_trigger}' "
                    f"which '{parent.name}' v{parent.version} does not define")
        def refusal(problem: str, _d: WorkflowDefinition = d) -> Exception:
            return WorkflowError(f"{_d.source}: {problem}")

        meaning.check_reroute(d, parent, refusal)
