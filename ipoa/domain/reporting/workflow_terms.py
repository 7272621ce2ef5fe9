"""The workflow words the report's measures count by, read from the deployed workflow definitions so that
a renamed state or trigger is still counted (the tags and roles are domain/meaning.py's):

* call triggers: which are routing decisions (and which decision each is: the `route` its transition
  records), and which move a call to another centre (the `move_centre` effect);
* call states and triggers of a promised callback: which states await one (tag `awaiting_callback`), and
  which triggers mean the callback was made: those leaving such a state for one that is neither final
  (a cancelled call was not called back) nor awaiting a callback (`call_back` in the shipped workflow);
* referral states: which mean accepted (tag `accepted`), responded, i.e. the first visit or contact
  (tag `response`), and declined (the destination of the trigger with the role `decline`, the one a
  professional's DECLINE fires: no state tag says declined).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..engine import CALL_WORKFLOW
from ..meaning import ACCEPTED, AWAITING_CALLBACK, DECLINE, RESPONSE
from ..workflow import WorkflowDefinition

__all__ = ["CallTriggers", "CallbackTerms", "ReferralStates", "ReferralTerms", "call_triggers", "callback_terms",
           "referral_terms"]


@dataclass(frozen=True)
class CallTriggers:
    routing: frozenset[str]  # every routing decision
    resolved: frozenset[str]  # resolved at first contact (tier 1)
    divert: frozenset[str]  # diverted to 999
    refer: frozenset[str]  # referred to a service
    transfer: frozenset[str]  # moved to another centre


def call_triggers(definitions: Iterable[WorkflowDefinition]) -> CallTriggers:
    """The triggers of every deployed version of the call workflow, by what their transitions do (the
    `route` they record, the `move_centre` effect)."""
    ts = [t for d in definitions if d.name == CALL_WORKFLOW for t in d.transitions]
    return CallTriggers(
        routing=frozenset(t.trigger for t in ts if t.route),
        resolved=frozenset(t.trigger for t in ts if t.route == "resolved_at_first_contact"),
        divert=frozenset(t.trigger for t in ts if t.route == "divert_999"),
        refer=frozenset(t.trigger for t in ts if t.route == "refer"),
        transfer=frozenset(t.trigger for t in ts if "move_centre" in t.effects),
    )


@dataclass(frozen=True)
class CallbackTerms:
    waiting: frozenset[str]  # states awaiting a promised callback
    made: frozenset[str]  # triggers out of them that mean the callback was made


def callback_terms(definitions: Iterable[WorkflowDefinition]) -> CallbackTerms:
    """Over every deployed version of the call workflow (a call stays on the version it started on)."""
    waiting: set[str] = set()
    made: set[str] = set()
    for d in definitions:
        if d.name != CALL_WORKFLOW:
            continue
        awaiting = d.states_tagged(AWAITING_CALLBACK)
        waiting |= awaiting
        for t in d.transitions:
            dest = d.states.get(t.dest)
            if set(t.sources) & awaiting and t.dest not in awaiting and dest is not None and not dest.final:
                made.add(t.trigger)
    return CallbackTerms(frozenset(waiting), frozenset(made))


@dataclass(frozen=True)
class ReferralStates:
    accepted: frozenset[str]  # accepted: the acceptance clock's success, the start of time to response
    response: frozenset[str]  # the first visit or contact (the response clock stops on reaching one)
    declined: frozenset[str]


@dataclass(frozen=True)
class ReferralTerms:
    """The referral states of each deployed (workflow, version), and their union over every version.

    A referral stays on the version it was sent on, and two versions may give one state name different
    meanings (README.md, "Data an administrator edits"), so a referral's state changes are read with its
    own version's states. The union serves a referral on a version this process has not loaded yet: one
    deployed by another process since the engine last looked (bootstrap.Services.engine re-checks at most
    every workflow_refresh_seconds), whose states are most likely those of the versions before it."""

    by_version: Mapping[tuple[str, int], ReferralStates]
    union: ReferralStates

    def of(self, workflow: str, version: int) -> ReferralStates:
        return self.by_version.get((workflow, version), self.union)


def _referral_states(d: WorkflowDefinition) -> ReferralStates:
    return ReferralStates(
        accepted=d.states_tagged(ACCEPTED),
        response=d.states_tagged(RESPONSE),
        declined=frozenset(t.dest for t in d.transitions if DECLINE in t.roles),
    )


def referral_terms(definitions: Iterable[WorkflowDefinition]) -> ReferralTerms:
    """From every deployed definition (the call workflow's have none of these states: empty sets)."""
    by_version = {d.key: _referral_states(d) for d in definitions}
    states = list(by_version.values())
    return ReferralTerms(by_version, ReferralStates(
        accepted=frozenset().union(*(s.accepted for s in states)),
        response=frozenset().union(*(s.response for s in states)),
        declined=frozenset().union(*(s.declined for s in states)),
    ))
