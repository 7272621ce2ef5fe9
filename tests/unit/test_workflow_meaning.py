"""State tags and trigger roles (domain/meaning.py): what the shipped definitions declare, the API the code
derives its sets from, every refusal naming the source and the tag or role, tags kept out of the shape's
checksum, the meaning given to versions stored before tags existed, and the engine firing through the
shared machine without looking the transition up itself. Pure: reads only workflows/."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from ipoa.domain import meaning
from ipoa.domain.catalogue import load_workflow_files, parse_workflow
from ipoa.domain.engine import Engine
from ipoa.domain.errors import GuardFailed, TriggerNotAllowed, WorkflowError
from ipoa.domain.model import Call
from ipoa.domain.workflow import WorkflowDefinition, check_family

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"
SOURCE = "test.workflow.yaml"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def raw(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / f"{name}.workflow.yaml").read_text(encoding="utf-8"))


def state(data: dict, name: str) -> dict:
    return next(s for s in data["states"] if s["name"] == name)


def transition(data: dict, trigger: str) -> dict:
    return next(t for t in data["transitions"] if t["trigger"] == trigger)


def refused(data, *fragments: str) -> str:
    with pytest.raises(WorkflowError) as exc:
        parse_workflow(data, SOURCE)
    message = str(exc.value)
    assert message.startswith(f"{SOURCE}: "), message
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.fixture(scope="module")
def shipped() -> dict[str, WorkflowDefinition]:
    return {d.name: d for d in load_workflow_files(WORKFLOWS)}


# -- the shipped definitions declare what the code used to hard-code ---------------------------------------


def test_shipped_referral_tags(shipped):
    r = shipped["referral"]
    assert r.states_tagged("awaiting_acceptance") == {"sent"}
    assert r.states_tagged("accepted") == {"accepted"}
    assert r.states_tagged("response") == {"in_progress", "completed"}
    assert r.states_tagged("reroutable") == {"sent"}
    assert r.states_tagged("escalatable") == {"sent", "accepted", "in_progress"}
    assert r.open_states == {"sent", "accepted", "in_progress"}


def test_shipped_referral_roles(shipped):
    r = shipped["referral"]
    assert r.triggers_with_role("service") == {"accept", "start", "complete", "decline"}
    assert {role: r.trigger_with_role(role) for role in ("accept", "decline", "complete", "withdraw")} == {
        "accept": "accept", "decline": "decline", "complete": "complete", "withdraw": "withdraw"}
    assert r.roles_of("accept") == {"service", "accept"} and r.roles_of("withdraw") == {"withdraw"}
    assert r.roles_of("no_such_trigger") == frozenset()


def test_shipped_call_tags(shipped):
    c = shipped["call"]
    assert c.states_tagged("tier3_review") == {"in_tier3_review"}
    # A tag or role of the other workflow finds nothing (it is not a typo).
    assert c.states_tagged("accepted") == frozenset() and c.triggers_with_role("service") == frozenset()
    assert c.trigger_for("in_triage", route="refer") == "refer"
    assert c.trigger_for("logged", effect="move_centre") == "transfer"
    assert c.trigger_for("referred", effect="move_centre") is None


def test_a_typo_in_the_code_fails_loudly(shipped):
    with pytest.raises(ValueError, match="unknown state tag 'acepted'"):
        shipped["referral"].states_tagged("acepted")
    with pytest.raises(ValueError, match="unknown trigger role 'servce'"):
        shipped["referral"].triggers_with_role("servce")


def test_sms_commands_map_to_roles_the_service_must_hold():
    assert meaning.SMS_COMMANDS == {"ACCEPT": "accept", "DECLINE": "decline", "DONE": "complete"}
    assert set(meaning.SMS_ROLES) <= set(meaning.TRIGGER_ROLES)


# -- refusals name the file and the tag --------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["awaiting_acceptance", "accepted", "response", "reroutable", "escalatable"])
def test_a_referral_workflow_missing_a_tag_is_refused(tag):
    data = raw("referral")
    for s in data["states"]:
        s["tags"] = [t for t in s.get("tags", []) if t != tag]
    refused(data, "needs", f"tagged '{tag}'", "none is")


def test_a_call_workflow_missing_the_tier3_tag_is_refused():
    data = raw("call")
    del state(data, "in_tier3_review")["tags"]
    refused(data, "the call workflow needs at least 1 state tagged 'tier3_review'")


@pytest.mark.parametrize("role", ["service", "accept", "decline", "complete", "withdraw"])
def test_a_referral_workflow_missing_a_role_is_refused(role):
    data = raw("referral")
    for t in data["transitions"]:
        t["roles"] = [r for r in t.get("roles", []) if r != role]
    refused(data, "needs", f"trigger with the role '{role}'", "none has")


def test_exactly_one_accepted_state():
    data = raw("referral")
    state(data, "in_progress")["tags"] = ["response", "escalatable", "accepted"]
    refused(data, "needs exactly 1 state tagged 'accepted'", "2 are (accepted, in_progress)")


def test_exactly_one_trigger_per_sms_role():
    data = raw("referral")
    transition(data, "start")["roles"] = ["service", "complete"]
    refused(data, "needs exactly 1 trigger with the role 'complete'", "complete, start")


def test_an_unknown_tag_is_refused():
    data = raw("referral")
    state(data, "sent")["tags"] = ["awaiting_acceptance", "reroutable", "escalateable"]
    refused(data, "state 'sent'", "unknown tag 'escalateable'", "escalatable")


def test_an_unknown_role_is_refused():
    data = raw("referral")
    transition(data, "accept")["roles"] = ["servce", "accept"]
    refused(data, "transition 1 ('accept')", "unknown role 'servce'")


def test_a_tag_of_the_other_workflow_is_refused():
    data = raw("call")
    state(data, "referred")["tags"] = ["accepted"]
    refused(data, "state 'referred'", "'accepted' belongs to the referral workflow")


def test_a_workflow_of_another_name_takes_no_tags():
    data = {"name": "mini", "version": 1, "initial": "a", "final": ["z"],
            "states": [{"name": "a", "tags": ["accepted"]}, "z"],
            "transitions": [{"trigger": "go", "source": "a", "dest": "z"}]}
    refused(data, "state 'a'", "the tag 'accepted' belongs to the referral workflow, not the mini workflow")
    data["states"][0]["tags"] = ["urgent"]
    refused(data, "unknown tag 'urgent'", "the mini workflow takes no tags")


@pytest.mark.parametrize("tags", ["accepted", [["accepted"]], [1]])
def test_malformed_tags_are_refused_not_crashes(tags):
    data = raw("referral")
    state(data, "accepted")["tags"] = tags
    if tags == "accepted":  # a single word is a list of one, like sources
        state(data, "in_progress")["tags"] = ["response", "escalatable"]
        parse_workflow(data, SOURCE)
    else:
        refused(data, "state 'accepted'", "tags must be words")


def test_a_final_state_cannot_be_escalatable():
    data = raw("referral")
    state(data, "completed")["tags"] = ["response", "escalatable"]
    refused(data, "state 'completed' is final and cannot be tagged 'escalatable'")


def test_a_triggers_roles_are_the_same_wherever_it_appears():
    data = raw("referral")
    data["transitions"].append({"trigger": "accept", "source": "in_progress", "dest": "accepted",
                                "roles": ["service"]})
    refused(data, "('accept') has roles ['service']", "transition 1 gives the same trigger ['accept', 'service']")


def test_an_sms_role_needs_the_service_role():
    data = raw("referral")
    transition(data, "decline")["roles"] = ["decline"]
    refused(data, "trigger 'decline' has the role 'decline'", "but not 'service'")


def test_accept_must_lead_to_the_accepted_state():
    data = raw("referral")
    transition(data, "accept")["dest"] = "in_progress"
    data["transitions"].append({"trigger": "take_on", "source": "sent", "dest": "accepted", "roles": ["service"]})
    refused(data, "trigger 'accept' has the role 'accept' but leads to 'in_progress'")


def test_a_reroutable_state_must_be_left_by_withdraw():
    data = raw("referral")
    state(data, "sent")["tags"] = ["awaiting_acceptance", "reroutable", "escalatable"]
    transition(data, "withdraw")["source"] = ["accepted", "in_progress"]
    refused(data, "state 'sent' is tagged 'reroutable' but no trigger with the role 'withdraw' leaves it")


def test_reroute_needs_the_call_back_where_it_can_be_referred():
    call = raw("call")
    transition(call, "referral_withdrawn")["dest"] = "awaiting_callback"
    defs = [parse_workflow(call, "call.workflow.yaml"), parse_workflow(raw("referral"), "referral.workflow.yaml")]
    with pytest.raises(WorkflowError) as exc:
        check_family(defs)
    message = str(exc.value)
    assert message.startswith("referral.workflow.yaml: ")
    assert "returns the call to 'awaiting_callback'" in message and "route: refer" in message


# -- meaning is not shape ----------------------------------------------------------------------------------------


def test_tags_and_roles_are_outside_the_checksum(shipped):
    data = raw("referral")
    state(data, "accepted")["tags"] = ["accepted"]  # no longer escalatable
    changed = parse_workflow(data, SOURCE)
    assert changed.checksum == shipped["referral"].checksum
    assert changed.meaning_checksum != shipped["referral"].meaning_checksum
    data["states"][0]["label"] = "Waiting"  # a label is shape, as before
    assert parse_workflow(data, SOURCE).checksum != shipped["referral"].checksum


def test_the_checksum_of_a_definition_without_tags_is_unchanged(shipped):
    """Versions deployed before tags existed keep their stored checksum: the shape is what it was."""
    import hashlib
    import json

    for name in ("call", "referral"):
        stripped = meaning.strip_meaning(raw(name))
        assert shipped[name].checksum == hashlib.sha256(json.dumps(stripped, sort_keys=True).encode()).hexdigest()


def test_versions_stored_before_tags_get_the_meaning_the_code_gave_them(shipped):
    for name in ("call", "referral"):
        legacy = meaning.strip_meaning(raw(name))
        again = parse_workflow(meaning.with_legacy_meaning(legacy), f"deployed {name} v1")
        assert again.meaning_checksum == shipped[name].meaning_checksum
        assert again.checksum == shipped[name].checksum


def test_a_stored_version_with_tags_is_read_as_stored():
    data = raw("referral")
    state(data, "accepted")["tags"] = ["accepted"]
    assert meaning.with_legacy_meaning(data) == data


def test_a_version_stored_before_a_tag_was_added_gets_that_tag_by_name(shipped):
    """Deployed with tier3_review but before the clock tags (awaiting_triage, awaiting_callback) existed:
    those two are given by the names the shipped sla.yaml used; the tag it carried stays as stored."""
    data = raw("call")
    for s in data["states"]:
        s["tags"] = [t for t in s.get("tags", []) if t not in ("awaiting_triage", "awaiting_callback")]
    again = parse_workflow(meaning.with_legacy_meaning(data), "deployed call v1")
    assert again.states_tagged("awaiting_triage") == {"logged", "in_triage", "transferred"}
    assert again.states_tagged("awaiting_callback") == {"awaiting_callback"}
    assert again.meaning_checksum == shipped["call"].meaning_checksum


def test_a_stored_version_renamed_before_tags_is_refused_by_name():
    legacy = meaning.strip_meaning(raw("referral"))
    for s in legacy["states"]:
        if s["name"] == "accepted":
            s["name"] = "taken_on"
    for t in legacy["transitions"]:
        t["source"] = ["taken_on" if x == "accepted" else x for x in t["source"]]
        t["dest"] = "taken_on" if t["dest"] == "accepted" else t["dest"]
    with pytest.raises(WorkflowError, match=r"^deployed referral v1: .*tagged 'accepted'"):
        parse_workflow(meaning.with_legacy_meaning(legacy), "deployed referral v1")


# -- the engine fires through the shared machine ----------------------------------------------------------------


def _call(ref: str = "QXZR-7KWM") -> Call:
    return Call(ref=ref, centre="CNH", caller_type="patient", caller_name=None, caller_phone=None,
                nhs_number=None, given_name="A", family_name="B", date_of_birth=None, postcode=None,
                locality=None, out_of_area=False, need="other", urgency="routine", summary="s",
                workflow="call", workflow_version=1, logged_at=NOW, logged_by="handler")


def test_the_engine_does_not_look_the_transition_up_itself(shipped, monkeypatch):
    """The machine decides whether the trigger may fire, its guards and its destination, and says which
    transition it took: the definition's own lookup is never asked."""
    engine = Engine(list(shipped.values()))

    def asked(*_a, **_k):
        raise AssertionError("the engine looked the transition up itself")

    monkeypatch.setattr(WorkflowDefinition, "transition", asked)
    call = _call()
    engine.start_call(call, actor="handler", now=NOW)
    engine.fire(call, "start_triage", actor="handler", now=NOW)
    result = engine.fire(call, "refer", actor="handler", now=NOW, data={"service": "DN"})
    assert call.state == "referred" and result.new_referrals
    engine.fire_referral(call, call.referrals[0].id, "decline", actor="dn", now=NOW, reason="full")
    assert (call.referrals[0].state, call.state) == ("declined", "in_triage")  # the call followed


def test_the_machine_refuses_what_is_not_allowed(shipped):
    engine = Engine(list(shipped.values()))
    call = _call()
    engine.start_call(call, actor="handler", now=NOW)
    with pytest.raises(TriggerNotAllowed) as exc:
        engine.fire(call, "close", actor="handler", now=NOW)  # defined, not from 'logged'
    assert exc.value.allowed == ["start_triage", "divert_999", "transfer", "promise_callback", "cancel"]
    with pytest.raises(TriggerNotAllowed):
        engine.fire(call, "no_such_trigger", actor="handler", now=NOW)
    engine.fire(call, "start_triage", actor="handler", now=NOW)
    engine.fire(call, "refer", actor="handler", now=NOW, data={"service": "DN"})
    with pytest.raises(TriggerNotAllowed):  # internal: only a referral moves the call by it
        engine.fire(call, "referral_completed", actor="handler", now=NOW)
    with pytest.raises(GuardFailed) as guard:
        engine.fire_referral(call, call.referrals[0].id, "decline", actor="dn", now=NOW)
    assert "reason" in guard.value.errors
    assert (call.state, call.version, call.referrals[0].state) == ("referred", 3, "sent")


def _decision(service: str | None, tier: int) -> object:
    from ipoa.domain.routing import Decision

    return Decision(tier=tier, service=service, outcome=None, locality=None, rule="15", reason="test",
                    alert_supervisor=False, out_of_area=False, next_open=None)


def test_tier3_review_is_the_tagged_state_not_a_name():
    """The override rule follows the tag: a call workflow whose review state has another name."""
    call_wf = raw("call")
    rename = {"in_tier3_review": "clinical_review"}
    for s in call_wf["states"]:
        s["name"] = rename.get(s["name"], s["name"])
    for t in call_wf["transitions"]:
        t["source"] = [rename.get(x, x) for x in t["source"]]
        t["dest"] = rename.get(t["dest"], t["dest"])
    engine = Engine([parse_workflow(call_wf, "call"), parse_workflow(raw("referral"), "referral")])
    call = _call()
    engine.start_call(call, actor="handler", now=NOW)
    engine.fire(call, "start_triage", actor="handler", now=NOW)
    engine.fire(call, "tier3_review", actor="handler", now=NOW, recommendation=_decision(None, 3))
    assert call.state == "clinical_review"
    # No reason needed to choose DN over the recommended ILT: the reviewer decides.
    engine.fire(call, "refer", actor="clinician", now=NOW, data={"service": "DN"},
                recommendation=_decision("ILT", 2))
    assert call.state == "referred" and call.route["overridden"] is False


def test_outside_tier3_review_an_override_needs_a_reason(shipped):
    engine = Engine(list(shipped.values()))
    call = _call()
    engine.start_call(call, actor="handler", now=NOW)
    engine.fire(call, "start_triage", actor="handler", now=NOW)
    with pytest.raises(GuardFailed) as exc:
        engine.fire(call, "refer", actor="handler", now=NOW, data={"service": "DN"},
                    recommendation=_decision("ILT", 2))
    assert "recommended route is to refer to ILT" in exc.value.errors["reason"]
