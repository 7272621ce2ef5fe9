"""Workflow definitions: the shipped YAML loads with the states the domain needs, every validation
problem is refused with a message naming the source and the problem, Mermaid output, and the compiled
machine is shared (firing on many records leaves nothing behind). Pure: reads only workflows/ and
files written under tmp_path."""
from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from ipoa.domain.catalogue import load_catalogue, load_workflow_files, parse_workflow
from ipoa.domain.engine import Engine
from ipoa.domain.errors import WorkflowError
from ipoa.domain.model import Call
from ipoa.domain.workflow import check_family

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "workflows"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday in GMT
SOURCE = "test.workflow.yaml"

CALL_STATES = {"logged", "in_triage", "resolved", "diverted_999", "referred", "in_tier3_review",
               "transferred", "awaiting_callback", "cancelled", "closed"}
REFERRAL_STATES = {"sent", "accepted", "in_progress", "completed", "declined", "withdrawn"}


@pytest.fixture(scope="module")
def shipped():
    return {d.name: d for d in load_workflow_files(WORKFLOWS)}


def raw(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / f"{name}.workflow.yaml").read_text(encoding="utf-8"))


def minimal() -> dict:
    """The smallest valid definition: a -> b -> z."""
    return {
        "name": "mini",
        "version": 1,
        "initial": "a",
        "final": ["z"],
        "states": ["a", "b", "z"],
        "transitions": [
            {"trigger": "go", "source": "a", "dest": "b"},
            {"trigger": "finish", "source": "b", "dest": "z"},
        ],
    }


def refused(data, *fragments: str) -> str:
    with pytest.raises(WorkflowError) as exc:
        parse_workflow(data, SOURCE)
    message = str(exc.value)
    assert message.startswith(f"{SOURCE}: "), message
    for fragment in fragments:
        assert fragment in message, message
    return message


# -- the shipped definitions -------------------------------------------------------------------------


def test_shipped_workflows_load(shipped):
    assert set(shipped) == {"call", "referral"}
    assert shipped["call"].version == 1 and shipped["referral"].version == 1
    assert shipped["referral"].parent == "call"
    assert load_catalogue(WORKFLOWS).workflows  # with the directory and routing table too


def test_call_workflow_states(shipped):
    call = shipped["call"]
    assert set(call.states) == CALL_STATES
    assert call.initial == "logged"
    assert call.final_states == {"closed", "cancelled"}


def test_the_plain_step_before_a_route_is_start_triage_and_never_one_with_an_effect(shipped):
    call = shipped["call"]
    assert [t.trigger for t in call.plain_steps("logged")] == ["start_triage"]
    assert call.step_before_route("logged", "refer") == "start_triage"
    assert call.step_before_route("transferred", "resolve") == "start_triage"
    assert call.step_before_route("in_triage", "refer") is None  # may fire now
    assert call.step_before_route("logged", "divert_999") is None  # may fire now
    assert call.step_before_route("logged", "promise_callback") is None  # not a route
    # call_back clears the promised callback: never taken on the handler's behalf.
    assert call.plain_steps("awaiting_callback") == []
    assert call.step_before_route("awaiting_callback", "refer") is None


def test_a_step_with_a_condition_or_needs_is_not_plain():
    data = minimal()
    data["transitions"] = [{"trigger": "go", "source": "a", "dest": "b", "conditions": ["reason_given"]},
                           {"trigger": "finish", "source": "b", "dest": "z", "route": "refer"}]
    wf = parse_workflow(data, SOURCE)
    assert wf.plain_steps("a") == [] and wf.step_before_route("a", "finish") is None
    data["transitions"][0].pop("conditions")
    assert parse_workflow(data, SOURCE).step_before_route("a", "finish") == "go"


def test_referral_workflow_states(shipped):
    referral = shipped["referral"]
    assert set(referral.states) == REFERRAL_STATES
    assert referral.initial == "sent"
    assert referral.final_states == {"completed", "declined", "withdrawn"}


def test_referral_parent_triggers_exist_in_call_workflow(shipped):
    call_triggers = {t.trigger for t in shipped["call"].transitions}
    parent_triggers = {t.parent_trigger for t in shipped["referral"].transitions if t.parent_trigger}
    assert parent_triggers == {"referral_completed", "referral_declined", "referral_withdrawn"}
    assert parent_triggers <= call_triggers
    internal = {t.trigger for t in shipped["call"].transitions if t.internal}
    assert internal == parent_triggers


def test_shipped_checksum_is_stable(shipped):
    again = {d.name: d for d in load_workflow_files(WORKFLOWS)}
    for name in shipped:
        assert shipped[name].checksum == again[name].checksum


def test_shipped_definition_round_trips_through_parse():
    for name in ("call", "referral"):
        data = raw(name)
        before = copy.deepcopy(data)
        d = parse_workflow(data, f"{name}.workflow.yaml")
        assert d.raw == before
        assert data == before  # parsing does not mutate its input


def test_minimal_definition_is_valid():
    d = parse_workflow(minimal(), SOURCE)
    assert d.key == ("mini", 1)
    assert d.source == SOURCE
    assert [t.trigger for t in d.triggers_from("a")] == ["go"]


def test_wildcard_source_means_every_non_final_state():
    data = minimal()
    data["transitions"].append({"trigger": "abandon", "source": "*", "dest": "z"})
    d = parse_workflow(data, SOURCE)
    abandon = next(t for t in d.transitions if t.trigger == "abandon")
    assert set(abandon.sources) == {"a", "b"}


# -- every validation problem names the source and the problem ---------------------------------------


def test_not_a_mapping():
    refused(["a", "b"], "must be a mapping")
    refused(None, "must be a mapping")


def test_unknown_source_state():
    data = minimal()
    data["transitions"][0]["source"] = ["a", "nowhere"]
    refused(data, "transition 1 ('go')", "unknown source state 'nowhere'")


def test_unknown_destination_state():
    data = minimal()
    data["transitions"][1]["dest"] = "nowhere"
    refused(data, "transition 2 ('finish')", "unknown destination state 'nowhere'")


def test_missing_destination():
    data = minimal()
    del data["transitions"][1]["dest"]
    refused(data, "transition 2 ('finish')", "unknown destination state")


def test_unknown_initial_state():
    data = minimal()
    data["initial"] = "start"
    refused(data, "initial state 'start' is not a defined state")


def test_unknown_final_state():
    data = minimal()
    data["final"] = ["z", "omega"]
    refused(data, "final state 'omega' is not a defined state")


def test_unreachable_state():
    data = minimal()
    data["states"].append("orphan")
    data["transitions"].append({"trigger": "leave", "source": "orphan", "dest": "z"})
    refused(data, "unreachable", "orphan")


def test_dead_end_state():
    data = minimal()
    data["states"].append("stuck")
    data["transitions"].append({"trigger": "wander", "source": "a", "dest": "stuck"})
    refused(data, "dead-end", "no way out", "stuck")


def test_trap_cycle_without_path_to_a_final_state():
    data = minimal()
    data["states"] += ["loop1", "loop2"]
    data["transitions"] += [
        {"trigger": "enter_loop", "source": "a", "dest": "loop1"},
        {"trigger": "spin", "source": "loop1", "dest": "loop2"},
        {"trigger": "spin", "source": "loop2", "dest": "loop1"},
    ]
    message = refused(data, "no path to a final state", "loop1", "loop2")
    assert "'a'" not in message.split("no path to a final state")[1]


def test_cycle_with_an_exit_is_fine():
    data = minimal()
    data["transitions"].append({"trigger": "back", "source": "b", "dest": "a"})
    parse_workflow(data, SOURCE)


def test_duplicate_trigger_from_the_same_source():
    data = minimal()
    data["states"].append("c")
    data["transitions"] += [
        {"trigger": "go", "source": ["a"], "dest": "c"},
        {"trigger": "finish", "source": "c", "dest": "z"},
    ]
    refused(data, "transition 3 ('go')", "duplicate trigger 'go' from state 'a'", "transition 1")


def test_same_trigger_from_different_sources_is_fine():
    data = minimal()
    data["transitions"].append({"trigger": "go", "source": "b", "dest": "a"})
    parse_workflow(data, SOURCE)


def test_unknown_guard():
    data = minimal()
    data["transitions"][0]["conditions"] = ["reason_given", "is_full_moon"]
    refused(data, "transition 1 ('go')", "unknown guard 'is_full_moon'", "reason_given")


@pytest.mark.parametrize("guard", [5, {"reason_given": None}, ["reason_given"], None, True])
def test_guard_not_a_string(guard):
    data = minimal()
    data["transitions"][0]["conditions"] = [guard]
    refused(data, "transition 1 ('go')", "guard", repr(guard))


def test_unknown_effect():
    data = minimal()
    data["transitions"][0]["effects"] = ["launch_rocket"]
    refused(data, "transition 1 ('go')", "unknown effect 'launch_rocket'", "create_referral")


def test_effect_not_a_string():
    data = minimal()
    data["transitions"][0]["effects"] = [{"set_callback": 1}]
    refused(data, "transition 1 ('go')", "unknown effect")


def test_unknown_route_kind():
    data = minimal()
    data["transitions"][0]["route"] = "teleport"
    refused(data, "unknown route kind 'teleport'")


def test_final_state_with_outgoing_transition():
    data = minimal()
    data["transitions"].append({"trigger": "reopen", "source": "z", "dest": "a"})
    refused(data, "transition 3 ('reopen')", "final state 'z' cannot have outgoing transitions")


def test_no_final_state():
    data = minimal()
    data["final"] = []
    data["transitions"].append({"trigger": "back", "source": "z", "dest": "a"})
    refused(data, "no final state")


def test_unknown_top_level_key():
    data = minimal()
    data["colour"] = "blue"
    refused(data, "unknown keys ['colour']")


def test_unknown_transition_key():
    data = minimal()
    data["transitions"][0]["guard"] = "reason_given"
    refused(data, "transition 1", "unknown keys ['guard']")


@pytest.mark.parametrize("version", [0, -1, "1", 1.5, True, None])
def test_bad_version(version):
    data = minimal()
    data["version"] = version
    refused(data, "'version' must be a whole number from 1")


@pytest.mark.parametrize("name", [None, "", "my-flow", "2call", 7])
def test_bad_name(name):
    data = minimal()
    data["name"] = name
    refused(data, "'name' must be an identifier")


def test_bad_trigger_name():
    data = minimal()
    data["transitions"][0]["trigger"] = "go now"
    refused(data, "transition 1", "'trigger' must be an identifier")


def test_state_defined_twice():
    data = minimal()
    data["states"].append("b")
    refused(data, "state 'b' is defined twice")


def test_bad_state_name():
    data = minimal()
    data["states"].append("not ok")
    refused(data, "state name 'not ok' must be an identifier")


def test_no_states_and_no_transitions():
    data = minimal()
    data["states"] = []
    refused(data, "no states")
    data = minimal()
    data["transitions"] = []
    refused(data, "no transitions")


def test_transition_without_source():
    data = minimal()
    data["transitions"][0]["source"] = []
    refused(data, "transition 1 ('go') has no source")


@pytest.mark.parametrize("mutate, fragment", [
    (lambda d: d["transitions"][0].__setitem__("dest", ["b", "z"]), "destination"),
    (lambda d: d["transitions"][0].__setitem__("source", [["a"]]), "source"),
    (lambda d: d["transitions"][0].__setitem__("source", {"a": 1}), "source"),
    (lambda d: d.__setitem__("initial", ["a"]), "initial"),
    (lambda d: d.__setitem__("final", [["z"]]), "final"),
    (lambda d: d.__setitem__("parent", ["call"]), "parent"),
    (lambda d: d["transitions"][0].__setitem__("parent_trigger", ["x"]), "parent_trigger"),
    (lambda d: d["transitions"][0].__setitem__("needs", [{"service": 1}]), "needs"),
    (lambda d: d["states"].append({"name": "c", "waiting": True, "colour": "red"}),
     "state 'c' has unknown keys ['colour']"),
    (lambda d: d["transitions"][0].__setitem__("route", ["refer"]), "unknown route kind"),
], ids=["dest-list", "source-nested-list", "source-mapping", "initial-list", "final-nested",
        "parent-list", "parent-trigger-list", "needs-mapping", "state-unknown-key", "route-list"])
def test_malformed_shapes_are_workflow_errors_not_crashes(mutate, fragment):
    """A YAML slip (a list where a name belongs) is reported like any other problem, never a TypeError."""
    data = minimal()
    mutate(data)
    refused(data, fragment)


# -- cross-definition and folder checks ----------------------------------------------------------------


def test_child_parent_trigger_must_exist_in_parent():
    referral = raw("referral")
    referral["transitions"][2]["parent_trigger"] = "referral_vanished"
    defs = [parse_workflow(raw("call"), "call.workflow.yaml"),
            parse_workflow(referral, "referral.workflow.yaml")]
    with pytest.raises(WorkflowError) as exc:
        check_family(defs)
    message = str(exc.value)
    assert message.startswith("referral.workflow.yaml: ")
    assert "referral_vanished" in message and "'call' v1" in message


def test_child_parent_must_be_defined():
    defs = [parse_workflow(raw("referral"), "referral.workflow.yaml")]
    with pytest.raises(WorkflowError, match=r"^referral\.workflow\.yaml: parent workflow 'call' is not defined"):
        check_family(defs)


def test_check_family_uses_the_latest_parent_version():
    """A new call version dropping a trigger a referral still names is refused."""
    call2 = raw("call")
    call2["version"] = 2
    call2["transitions"] = [t for t in call2["transitions"] if t["trigger"] != "referral_withdrawn"]
    defs = [parse_workflow(raw("call"), "call.workflow.yaml"),
            parse_workflow(call2, "call2.workflow.yaml"),
            parse_workflow(raw("referral"), "referral.workflow.yaml")]
    with pytest.raises(WorkflowError, match="referral_withdrawn.*'call' v2"):
        check_family(defs)
    with pytest.raises(WorkflowError, match="referral_withdrawn"):
        Engine(defs)


def write(folder: Path, filename: str, data) -> Path:
    path = folder / filename
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def test_folder_with_the_same_name_and_version_twice(tmp_path):
    write(tmp_path, "call.workflow.yaml", raw("call"))
    write(tmp_path, "call-copy.workflow.yaml", raw("call"))
    write(tmp_path, "referral.workflow.yaml", raw("referral"))
    with pytest.raises(WorkflowError) as exc:
        load_workflow_files(tmp_path)
    message = str(exc.value)
    # Files load in name order: call-copy first, so call.workflow.yaml is the duplicate.
    assert message.startswith(f"{tmp_path / 'call.workflow.yaml'}: ")
    assert "'call' version 1" in message and "call-copy.workflow.yaml" in message


def test_folder_with_two_versions_loads(tmp_path):
    call2 = raw("call")
    call2["version"] = 2
    write(tmp_path, "call.workflow.yaml", raw("call"))
    write(tmp_path, "call-v2.workflow.yaml", call2)
    write(tmp_path, "referral.workflow.yaml", raw("referral"))
    write(tmp_path, "notes.yaml", "not: [a workflow")  # ignored: not *.workflow.yaml
    keys = sorted(d.key for d in load_workflow_files(tmp_path))
    assert keys == [("call", 1), ("call", 2), ("referral", 1)]


def test_folder_with_invalid_yaml(tmp_path):
    path = write(tmp_path, "broken.workflow.yaml", "name: broken\nstates: [a, b\n")
    with pytest.raises(WorkflowError) as exc:
        load_workflow_files(tmp_path)
    assert str(exc.value).startswith(f"{path}: not valid YAML")


def test_folder_with_an_invalid_definition_names_the_file(tmp_path):
    data = minimal()
    data["transitions"][0]["dest"] = "nowhere"
    path = write(tmp_path, "mini.workflow.yaml", data)
    with pytest.raises(WorkflowError) as exc:
        load_workflow_files(tmp_path)
    assert str(exc.value).startswith(f"{path}: ") and "nowhere" in str(exc.value)


def test_folder_with_a_broken_family(tmp_path):
    referral = raw("referral")
    referral["transitions"][0]["parent_trigger"] = "no_such_trigger"
    write(tmp_path, "call.workflow.yaml", raw("call"))
    path = write(tmp_path, "referral.workflow.yaml", referral)
    with pytest.raises(WorkflowError) as exc:
        load_workflow_files(tmp_path)
    assert str(exc.value).startswith(f"{path}: ") and "no_such_trigger" in str(exc.value)


def test_engine_needs_both_workflows():
    with pytest.raises(WorkflowError, match="no 'referral' workflow"):
        Engine([parse_workflow(raw("call"), "call.workflow.yaml")])


# -- Mermaid -----------------------------------------------------------------------------------------


def test_mermaid_has_every_state_and_transition(shipped):
    for d in shipped.values():
        text = d.mermaid()
        lines = text.splitlines()
        assert lines[0] == "stateDiagram-v2"
        assert f"    [*] --> {d.initial}" in lines
        for s in d.states.values():
            assert f"    {s.name} : {s.label}" in lines
        for t in d.transitions:
            for src in t.sources:
                assert f"    {src} --> {t.dest} : {t.trigger}" in lines
        for s in d.final_states:
            assert f"    {s} --> [*]" in lines
        edges = sum(len(t.sources) for t in d.transitions)
        assert len(lines) == 1 + 1 + len(d.states) + edges + len(d.final_states)


def test_mermaid_with_counts_labels_every_state(shipped):
    call = shipped["call"]
    text = call.mermaid(counts={"logged": 3, "in_triage": 12})
    lines = text.splitlines()
    assert "    logged : Logged (3)" in lines
    assert "    in_triage : In triage (12)" in lines
    assert "    closed : Closed (0)" in lines  # states without records show 0
    for s in call.states.values():
        assert any(line.startswith(f"    {s.name} : {s.label} (") for line in lines)
    assert "    logged --> in_triage : start_triage" in lines


def test_mermaid_without_counts_has_no_numbers(shipped):
    assert "(0)" not in shipped["call"].mermaid()


# -- the compiled machine is shared ---------------------------------------------------------------


def _call(ref: str) -> Call:
    return Call(ref=ref, centre="CNH", caller_type="patient", caller_name=None, caller_phone=None,
                nhs_number=None, given_name="A", family_name="B", date_of_birth=None, postcode=None,
                locality=None, out_of_area=False, need="other", urgency="routine", summary="s",
                workflow="call", workflow_version=1, logged_at=NOW, logged_by="handler")


def test_compiled_machine_is_shared_and_does_not_grow():
    engine = Engine(load_workflow_files(WORKFLOWS))
    compiled = engine._compiled[("call", 1)]
    machine = compiled.machine
    referral_machine = engine._compiled[("referral", 1)].machine
    before = (len(machine.models), len(machine.events), len(machine.states),
              sum(len(e.transitions) for e in machine.events.values()))
    assert before[0] == 0

    calls = []
    for i in range(500):
        call = _call(f"REF{i:05d}")
        engine.start_call(call, actor="handler", now=NOW)
        engine.fire(call, "start_triage", actor="handler", now=NOW + timedelta(seconds=i))
        if i % 2:
            engine.fire(call, "refer", actor="handler", now=NOW, data={"service": "DN"})
            engine.fire_referral(call, call.referrals[0].id, "accept", actor="pro", now=NOW)
        else:
            engine.fire(call, "cancel", actor="handler", now=NOW, reason="duplicate")
        calls.append(call)

    after = (len(machine.models), len(machine.events), len(machine.states),
             sum(len(e.transitions) for e in machine.events.values()))
    assert after == before
    assert referral_machine.models == []
    assert len(machine._transition_queue) == 0
    # The same compiled object is used for every call; records carry only their own state.
    assert engine._compiled[("call", 1)] is compiled
    assert {c.state for c in calls} == {"referred", "cancelled"}
    assert not any(hasattr(c, "trigger") or hasattr(c, "may_start_triage") for c in calls)


def test_allowed_triggers_come_from_the_shared_machine(shipped):
    engine = Engine(list(shipped.values()))
    call = _call("ABCD-EFGH")
    engine.start_call(call, actor="handler", now=NOW)
    assert [t.trigger for t in engine.allowed(call)] == [
        "start_triage", "divert_999", "transfer", "promise_callback", "cancel"]
    call.state = "referred"
    assert engine.allowed(call) == []  # only internal triggers leave 'referred'
