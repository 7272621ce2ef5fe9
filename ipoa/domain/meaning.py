"""What states and triggers mean to the rest of ipoa: the state tags and trigger roles a workflow definition
carries (workflows/*.workflow.yaml, explained in each file's header and README.md, "Data an administrator
edits"), which of them each workflow must carry, and the checks made on them when a definition is loaded.

The code never names a state or a trigger of a workflow: it asks a definition for its states with a tag or
its triggers with a role (WorkflowDefinition.states_tagged, .triggers_with_role), for the version a record
is on. An administrator may rename states and triggers freely; a definition missing a tag or role the code
needs is refused when loaded (`flask --app ipoa workflows check`, `init`), naming the file and the tag.

Tags and roles are meaning, not the machine's shape: they stay out of a definition's checksum, so `init`
may correct them on a deployed version in place (see adapters/workflow_store.deploy_new)."""
from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# The two workflows the engine runs (re-exported by domain/engine.py, where the code imports them from).
CALL_WORKFLOW = "call"
REFERRAL_WORKFLOW = "referral"


@dataclass(frozen=True)
class Word:
    """A tag (or role) of the vocabulary: the workflow whose states (or triggers) may carry it, what it
    means, and how many states (or triggers) of that workflow must carry it."""

    workflow: str
    means: str
    at_least: int = 1
    at_most: int | None = None
    open_only: bool = False  # only a state that is not final may carry it

    def needs(self) -> str:
        if self.at_most == self.at_least:
            return f"exactly {self.at_least}"
        return f"at least {self.at_least}"


# -- state tags -----------------------------------------------------------------------------------------
TIER3_REVIEW = "tier3_review"
AWAITING_TRIAGE = "awaiting_triage"
AWAITING_CALLBACK = "awaiting_callback"
AWAITING_ACCEPTANCE = "awaiting_acceptance"
ACCEPTED = "accepted"
RESPONSE = "response"
REROUTABLE = "reroutable"
ESCALATABLE = "escalatable"

STATE_TAGS: dict[str, Word] = {
    TIER3_REVIEW: Word(CALL_WORKFLOW, "a clinician or social worker decides the route here: choosing other "
                                      "than the engine's recommendation needs no override reason"),
    AWAITING_TRIAGE: Word(CALL_WORKFLOW, "the call waits for triage: the triage clock runs here (sla.yaml "
                                         "clocks) and the dashboard's oldest urgent wait counts it", open_only=True),
    AWAITING_CALLBACK: Word(CALL_WORKFLOW, "a callback is promised: the callback clock runs here (sla.yaml "
                                           "clocks) and the queue puts it first when due", open_only=True),
    AWAITING_ACCEPTANCE: Word(REFERRAL_WORKFLOW, "sent, not yet taken on by the service (the dashboard's "
                                                 "'awaiting acceptance')", open_only=True),
    ACCEPTED: Word(REFERRAL_WORKFLOW, "taken on by the service (the dashboard's 'accepted', the reports' time "
                                      "to acceptance)", at_most=1),
    RESPONSE: Word(REFERRAL_WORKFLOW, "the service has responded: first visit or contact, or done (the reports' "
                                      "time to response)"),
    REROUTABLE: Word(REFERRAL_WORKFLOW, "a supervisor may withdraw it and refer the call elsewhere in one "
                                        "action", open_only=True),
    ESCALATABLE: Word(REFERRAL_WORKFLOW, "a supervisor may escalate it to the service's duty lead",
                      open_only=True),
}

# -- trigger roles ------------------------------------------------------------------------------------------
SERVICE = "service"
ACCEPT = "accept"
DECLINE = "decline"
COMPLETE = "complete"
WITHDRAW = "withdraw"

TRIGGER_ROLES: dict[str, Word] = {
    SERVICE: Word(REFERRAL_WORKFLOW, "the receiving service's professionals may fire it, on their pages or by SMS"),
    ACCEPT: Word(REFERRAL_WORKFLOW, "what an SMS reply ACCEPT fires; the referrer is texted 'accepted'", at_most=1),
    DECLINE: Word(REFERRAL_WORKFLOW, "what an SMS reply DECLINE <reason> fires; the referrer is texted "
                                     "'declined'", at_most=1),
    COMPLETE: Word(REFERRAL_WORKFLOW, "what an SMS reply DONE fires; the referrer is texted 'completed'",
                   at_most=1),
    WITHDRAW: Word(REFERRAL_WORKFLOW, "what a supervisor's re-route fires on the referral it replaces",
                   at_most=1),
}
# A professional's SMS reply (the commands the referral texts tell them about) fires the trigger with this
# role in the referral's version; it acts as the receiving service, so those triggers must be the service's.
SMS_COMMANDS = {"ACCEPT": ACCEPT, "DECLINE": DECLINE, "DONE": COMPLETE}
SMS_ROLES = tuple(SMS_COMMANDS.values())

_TAG_KEY, _ROLE_KEY = "tags", "roles"


def known_state_tag(tag: str) -> None:
    """A typo in the code (states_tagged("acepted")) fails loudly rather than finding no state."""
    if tag not in STATE_TAGS:
        raise ValueError(f"unknown state tag {tag!r} (known: {', '.join(sorted(STATE_TAGS))})")


def known_trigger_role(role: str) -> None:
    if role not in TRIGGER_ROLES:
        raise ValueError(f"unknown trigger role {role!r} (known: {', '.join(sorted(TRIGGER_ROLES))})")


def _vocabulary(words: Mapping[str, Word], workflow: str) -> list[str]:
    return sorted(w for w, word in words.items() if word.workflow == workflow)


def parse_words(value: Any, words: Mapping[str, Word], workflow: str, where: str, kind: str,
                fail: Callable[[str], Exception]) -> frozenset[str]:
    """The tags of a state (or roles of a transition) as written: a list of words this workflow knows."""
    if value is None:
        return frozenset()
    items = value if isinstance(value, list) else [value]
    mine = _vocabulary(words, workflow)
    out = set()
    for item in items:
        if not isinstance(item, str):
            raise fail(f"{where}: {kind}s must be words, not {item!r}")
        if item not in words:
            known = f"the {workflow} workflow's {kind}s: {', '.join(mine)}" if mine else \
                f"the {workflow} workflow takes no {kind}s"
            raise fail(f"{where}: unknown {kind} {item!r} ({known})")
        if words[item].workflow != workflow:
            raise fail(f"{where}: the {kind} {item!r} belongs to the {words[item].workflow} workflow, "
                       f"not the {workflow} workflow")
        out.add(item)
    return frozenset(out)


def check_definition(workflow: str, states: Mapping[str, Any], transitions: Iterable[Any],
                     fail: Callable[[str], Exception]) -> None:
    """Every tag and role the code needs for this workflow is carried, as often as it needs; the words fit
    together (states: StateDef with .tags and .final; transitions: TransitionDef with .roles)."""
    transitions = list(transitions)
    for tag, word in STATE_TAGS.items():
        if word.workflow != workflow:
            continue
        tagged = sorted(s.name for s in states.values() if tag in s.tags)
        if word.open_only:
            for name in tagged:
                if states[name].final:
                    raise fail(f"state '{name}' is final and cannot be tagged '{tag}' ({word.means})")
        if len(tagged) < word.at_least or (word.at_most is not None and len(tagged) > word.at_most):
            found = f"{len(tagged)} are ({', '.join(tagged)})" if tagged else "none is"
            raise fail(f"the {workflow} workflow needs {word.needs()} state tagged '{tag}' ({word.means}); "
                       f"{found}")

    roles_of: dict[str, tuple[frozenset[str], int]] = {}
    for i, t in enumerate(transitions, start=1):
        seen = roles_of.setdefault(t.trigger, (t.roles, i))
        if seen[0] != t.roles:
            raise fail(f"transition {i} ('{t.trigger}') has roles {sorted(t.roles)} but transition {seen[1]} "
                       f"gives the same trigger {sorted(seen[0])}: a trigger's roles are the same wherever it "
                       f"appears")
    for role, word in TRIGGER_ROLES.items():
        if word.workflow != workflow:
            continue
        triggers = sorted(trig for trig, (roles, _) in roles_of.items() if role in roles)
        if len(triggers) < word.at_least or (word.at_most is not None and len(triggers) > word.at_most):
            found = f"{len(triggers)} have ({', '.join(triggers)})" if triggers else "none has"
            raise fail(f"the {workflow} workflow needs {word.needs()} trigger with the role '{role}' "
                       f"({word.means}); {found}")
    for trig, (roles, _) in roles_of.items():
        for role in SMS_ROLES:
            if role in roles and SERVICE not in roles:
                raise fail(f"trigger '{trig}' has the role '{role}' ({TRIGGER_ROLES[role].means}) but not "
                           f"'{SERVICE}': an SMS reply acts as the receiving service")

    if workflow == REFERRAL_WORKFLOW:
        accepted = {s.name for s in states.values() if ACCEPTED in s.tags}
        for t in transitions:
            if ACCEPT in t.roles and t.dest not in accepted:
                raise fail(f"trigger '{t.trigger}' has the role '{ACCEPT}' but leads to '{t.dest}', which is "
                           f"not tagged '{ACCEPTED}'")
        for tag, role in ((AWAITING_ACCEPTANCE, ACCEPT), (REROUTABLE, WITHDRAW)):
            for s in sorted(n for n, st in states.items() if tag in st.tags):
                if not any(role in t.roles and s in t.sources for t in transitions):
                    raise fail(f"state '{s}' is tagged '{tag}' but no trigger with the role '{role}' leaves it "
                               f"({TRIGGER_ROLES[role].means})")


def check_reroute(child: Any, parent: Any, fail: Callable[[str], Exception]) -> None:
    """Re-routing withdraws the referral (the call follows through the withdrawal's parent_trigger) and
    refers the call again: the state the call returns to must allow a referral (a `route: refer`
    transition). child and parent are the latest referral and call definitions."""
    for t in child.transitions:
        if WITHDRAW not in t.roles:
            continue
        if t.parent_trigger is None:
            raise fail(f"trigger '{t.trigger}' has the role '{WITHDRAW}' but no parent_trigger: re-routing "
                       f"needs the call back where it can be referred again")
        for pt in parent.transitions:
            if pt.trigger != t.parent_trigger:
                continue
            if not any(x.route == "refer" for x in parent.transitions if pt.dest in x.sources):
                raise fail(f"re-routing withdraws with '{t.trigger}', which returns the call to '{pt.dest}' "
                           f"('{parent.name}' v{parent.version}), and no transition refers from there "
                           f"(route: refer)")


# -- meaning versus shape ------------------------------------------------------------------------------------

def strip_meaning(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The definition as written, without its tags and roles: its shape, what the checksum covers."""
    out = copy.deepcopy(dict(raw))
    for state in out.get("states") or []:
        if isinstance(state, dict):
            state.pop(_TAG_KEY, None)
    for t in out.get("transitions") or []:
        if isinstance(t, dict):
            t.pop(_ROLE_KEY, None)
    return out


def meaning_of(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Only the tags and roles: {"states": {name: [tags]}, "transitions": {index: [roles]}}."""
    states = {s["name"]: sorted(s[_TAG_KEY]) for s in raw.get("states") or []
              if isinstance(s, dict) and s.get(_TAG_KEY)}
    transitions = {str(i): sorted(t[_ROLE_KEY]) for i, t in enumerate(raw.get("transitions") or [], start=1)
                   if isinstance(t, dict) and t.get(_ROLE_KEY)}
    return {"states": states, "transitions": transitions}


def digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


# -- versions deployed before definitions carried their meaning ---------------------------------------------
# A version deployed before issue 11 is stored without tags or roles; one deployed before a tag was added to
# the vocabulary (awaiting_triage and awaiting_callback, when the SLA clocks moved from state names in
# sla.yaml to tags) is stored without that tag. Either gets, for each tag or role its stored body carries
# nowhere, the meaning the code (and the shipped sla.yaml) gave those names until then, so records pinned to
# it behave as they did; `init` replaces it with the file's own tags and roles while workflows/ still holds
# that version. Names it does not have get nothing, and the version is then refused like a file missing a tag.
_LEGACY_TAGS = {
    CALL_WORKFLOW: {"in_tier3_review": [TIER3_REVIEW], "logged": [AWAITING_TRIAGE], "in_triage": [AWAITING_TRIAGE],
                    "transferred": [AWAITING_TRIAGE], "awaiting_callback": [AWAITING_CALLBACK]},
    REFERRAL_WORKFLOW: {"sent": [AWAITING_ACCEPTANCE, REROUTABLE, ESCALATABLE],
                        "accepted": [ACCEPTED, ESCALATABLE], "in_progress": [RESPONSE, ESCALATABLE],
                        "completed": [RESPONSE]},
}
_LEGACY_ROLES = {
    REFERRAL_WORKFLOW: {"accept": [SERVICE, ACCEPT], "start": [SERVICE], "complete": [SERVICE, COMPLETE],
                        "decline": [SERVICE, DECLINE], "withdraw": [WITHDRAW]},
}


def _fill_missing(items: Any, key: str, name_key: str, legacy: Mapping[str, list[str]]) -> None:
    """Give each legacy word that no item carries to the items legacy names for it."""
    items = [i for i in items or [] if isinstance(i, dict)]
    carried = {w for i in items for w in (i.get(key) if isinstance(i.get(key), list) else [i.get(key)]) if w}
    for item in items:
        missing = [w for w in legacy.get(item.get(name_key), []) if w not in carried]
        if missing:
            have = item.get(key)
            have = have if isinstance(have, list) else ([have] if have else [])
            item[key] = have + [w for w in missing if w not in have]


def with_legacy_meaning(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The stored body, with the pre-issue-11 meaning for each tag or role it carries nowhere."""
    body = copy.deepcopy(dict(raw))
    name = str(body.get("name"))
    _fill_missing(body.get("states"), _TAG_KEY, "name", _LEGACY_TAGS.get(name, {}))
    _fill_missing(body.get("transitions"), _ROLE_KEY, "trigger", _LEGACY_ROLES.get(name, {}))
    return body
