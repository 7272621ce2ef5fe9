"""SLA clocks kept by the engine (sla.yaml, clocks): which state changes start, stop and restart them,
their due times from the shipped policy, and a Hypothesis property over random trigger sequences: a
clock runs exactly while its subject is in one of its states, and never twice at once. Pure."""
from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipoa.domain.catalogue import load_workflow_files
from ipoa.domain.engine import Engine
from ipoa.domain.errors import GuardFailed, TriggerNotAllowed, VersionConflict
from ipoa.domain.sla import ClockBinding, SlaPolicyError, check_clock_bindings
from tests.helpers.engine import CATALOGUE, DIRECTORY, NOW, WORKFLOWS, make_call
from tests.helpers.properties import examples

SLA = CATALOGUE.sla
ENGINE = Engine(load_workflow_files(WORKFLOWS), DIRECTORY, SLA)


class Clocks:
    """What the unit of work does with a Result's timers and stopped clocks, in memory."""

    def __init__(self):
        self.running: dict[tuple[str | None, str], object] = {}
        self.history: list[tuple[str, str | None, str]] = []

    def apply(self, result) -> None:
        for _ref, referral_id, kind, _at in result.stopped_clocks:
            if self.running.pop((referral_id, kind), None) is not None:
                self.history.append(("stop", referral_id, kind))
        for t in result.timers:
            assert (t.referral_id, t.kind) not in self.running, "a clock started twice"
            self.running[(t.referral_id, t.kind)] = t
            self.history.append(("start", t.referral_id, t.kind))


def start(urgency="urgent", need="urgent_community_health", centre="CNH", now=NOW):
    call = make_call(need, urgency, centre=centre, now=now)
    clocks = Clocks()
    clocks.apply(ENGINE.start_call(call, actor="handler", now=now))
    return call, clocks


def test_logging_starts_triage_with_the_urgencys_due_time():
    for urgency, minutes in (("emergency", 5), ("urgent", 15), ("same_day", 60)):
        call, clocks = start(urgency)
        (t,) = clocks.running.values()
        assert (t.kind, t.due_at, t.set_at_version) == ("triage", NOW + timedelta(minutes=minutes), 1)


def test_routine_triage_counts_the_centres_open_time():
    # FCP is open Mon-Fri 08:30-17:00: a routine call logged Monday 15:00 is due Tuesday 10:30.
    call, clocks = start("routine", centre="FCP", now=NOW.replace(hour=15))
    (t,) = clocks.running.values()
    assert t.due_at == NOW.replace(day=24, hour=10, minute=30) and "open time" in t.rule
    call, clocks = start("routine", centre="FCP")  # Monday 10:00: the same afternoon
    (t,) = clocks.running.values()
    assert t.due_at == NOW.replace(hour=14)


def test_referral_clocks_follow_the_referral_and_the_call_follows_back_to_triage():
    call, clocks = start()
    clocks.apply(ENGINE.fire(call, "start_triage", actor="h", now=NOW))
    assert clocks.history == [("start", None, "triage")]
    clocks.apply(ENGINE.fire(call, "refer", actor="h", now=NOW, data={"service": "CRT"}, reason="Known"))
    rid = call.referrals[0].id
    assert set(clocks.running) == {(rid, "acceptance")}
    assert clocks.running[(rid, "acceptance")].due_at == NOW + timedelta(minutes=30)
    later = NOW + timedelta(minutes=10)
    clocks.apply(ENGINE.fire_referral(call, rid, "accept", actor="pro", now=later))
    assert set(clocks.running) == {(rid, "response")}
    assert clocks.running[(rid, "response")].due_at == later + timedelta(hours=2)  # CRT: 2 h
    clocks.apply(ENGINE.fire_referral(call, rid, "decline", actor="pro", now=later, reason="No capacity"))
    # Declined: the response clock stops, the call is back in triage with a fresh triage clock.
    assert set(clocks.running) == {(None, "triage")}
    assert clocks.running[(None, "triage")].due_at == later + timedelta(minutes=15)


def test_transfer_restarts_triage_and_a_callback_replaces_it():
    call, clocks = start()
    clocks.apply(ENGINE.fire(call, "transfer", actor="h", now=NOW, data={"centre": "CHS"}, reason="Nursing"))
    assert clocks.history == [("start", None, "triage"), ("stop", None, "triage"), ("start", None, "triage")]
    clocks.apply(ENGINE.fire(call, "start_triage", actor="h", now=NOW))
    at = NOW + timedelta(hours=2)
    clocks.apply(ENGINE.fire(call, "promise_callback", actor="h", now=NOW, data={"callback_at": at.isoformat()}))
    (t,) = clocks.running.values()
    assert (t.kind, t.due_at) == ("callback", at + timedelta(minutes=15))


def test_without_a_policy_no_clock_is_kept():
    bare = Engine(load_workflow_files(WORKFLOWS), DIRECTORY)
    call = make_call()
    result = bare.start_call(call, actor="h", now=NOW)
    assert result.timers == [] and result.stopped_clocks == []


CALL_WF = ENGINE.latest("call")


def test_clock_binding_changes():
    b = ClockBinding("triage", "call", "awaiting_triage", frozenset({"move_centre"}))
    assert b.states(CALL_WF) == {"logged", "in_triage", "transferred"}
    assert b.restart_triggers(CALL_WF) == {"transfer"}
    assert b.change(CALL_WF, None, "logged", "log") == "start"
    assert b.change(CALL_WF, "logged", "in_triage", "start_triage") is None
    assert b.change(CALL_WF, "in_triage", "referred", "refer") == "stop"
    assert b.change(CALL_WF, "referred", "in_triage", "referral_declined") == "start"
    assert b.change(CALL_WF, "logged", "transferred", "transfer") == "start"  # restarted
    assert b.change(CALL_WF, "referred", "closed", "close") is None


def test_a_clock_follows_its_tag_into_a_version_that_renames_the_states():
    """The states come from the record's own version: renamed in a new one, the clock still runs there,
    and a record on the old version keeps the old names (sla.yaml unchanged)."""
    import copy

    from ipoa.domain.catalogue import parse_workflow as parse

    raw = copy.deepcopy(CALL_WF.raw)
    raw["version"] = CALL_WF.version + 1
    renames = {"logged": "new", "in_triage": "triaging"}
    raw["initial"] = renames.get(raw["initial"], raw["initial"])
    for st_ in raw["states"]:
        st_["name"] = renames.get(st_["name"], st_["name"])
    for tr in raw["transitions"]:
        tr["source"] = [renames.get(x, x) for x in tr["source"]]
        tr["dest"] = renames.get(tr["dest"], tr["dest"])
    renamed = parse(raw, "copy/call.workflow.yaml")
    b = SLA.clocks["triage"]
    assert b.states(renamed) == {"new", "triaging", "transferred"}
    assert b.change(renamed, "new", "triaging", "start_triage") is None
    assert b.change(renamed, "triaging", "referred", "refer") == "stop"
    assert b.states(CALL_WF) == {"logged", "in_triage", "transferred"}


@pytest.mark.parametrize("binding, problem", [
    (ClockBinding("triage", "nope", "awaiting_triage"), "unknown workflow 'nope'"),
    (ClockBinding("triage", "call", "awaiting_acceptance"), "has no state tagged 'awaiting_acceptance'"),
    (ClockBinding("triage", "call", "awaiting_triage", frozenset({"teleport"})),
     "no transition with the effect 'teleport'"),
    (ClockBinding("triage", "referral", "awaiting_acceptance"), "runs on calls"),
    (ClockBinding("acceptance", "call", "awaiting_triage"), "runs on referrals"),
])
def test_clock_bindings_are_checked_against_the_workflows(binding, problem):
    policy = type(SLA).__new__(type(SLA))
    policy.__dict__.update(SLA.__dict__)
    policy.clocks = {**SLA.clocks, binding.kind: binding}
    with pytest.raises(SlaPolicyError, match=problem) as exc:
        check_clock_bindings(policy, load_workflow_files(WORKFLOWS), "workflows/sla.yaml")
    assert str(exc.value).startswith(f"workflows/sla.yaml: clocks.{binding.kind}")


@pytest.mark.parametrize("runs_in, problem", [
    ("logged", "'logged' is not a state tag of the call workflow"),  # a state's name, not a tag
    ("awaiting_acceptance", "not a state tag of the call workflow"),  # the referral workflow's tag
])
def test_sla_yaml_names_a_tag_of_the_clocks_workflow(runs_in, problem):
    import yaml

    from ipoa.domain.sla import load_sla_policy

    raw = yaml.safe_load((WORKFLOWS / "sla.yaml").read_text(encoding="utf-8"))
    raw["clocks"]["triage"]["runs_in"] = runs_in
    with pytest.raises(SlaPolicyError, match=problem) as exc:
        load_sla_policy(raw, DIRECTORY, source="workflows/sla.yaml")
    assert "clocks.triage" in str(exc.value)


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(draw=st.data(), urgency=st.sampled_from(["emergency", "urgent", "same_day", "routine"]))
def test_a_clock_runs_exactly_while_its_subject_is_in_its_states(draw, urgency):
    call, clocks = start(urgency, need="community_nursing")
    now = NOW
    for _ in range(draw.draw(st.integers(min_value=0, max_value=30), label="steps")):
        now += timedelta(minutes=draw.draw(st.integers(min_value=0, max_value=600)))
        referral = draw.draw(st.sampled_from(call.referrals)) if call.referrals and draw.draw(st.booleans()) \
            else None
        allowed = [t.trigger for t in ENGINE.allowed(referral or call)]
        if not allowed:
            continue
        trigger = draw.draw(st.sampled_from(allowed))
        data = {"service": draw.draw(st.sampled_from(["DN", "CRT", "ILT", "SCA"])), "centre": "CHS",
                "callback_at": (now + timedelta(hours=1)).isoformat()}
        try:
            if referral is None:
                result = ENGINE.fire(call, trigger, actor="h", now=now, data=data, reason="Because")
            else:
                result = ENGINE.fire_referral(call, referral.id, trigger, actor="p", now=now, reason="Because")
        except (TriggerNotAllowed, GuardFailed, VersionConflict):
            continue
        clocks.apply(result)
        expected = set()
        for kind, b in SLA.clocks.items():
            if b.workflow == "call" and call.state in b.states(CALL_WF):
                expected.add((None, kind))
            for r in call.referrals:
                if b.workflow == "referral" and r.state in b.states(ENGINE.latest("referral")):
                    expected.add((r.id, kind))
        assert set(clocks.running) == expected
        for t in clocks.running.values():
            assert t.due_at >= t.created_at


def test_the_demos_sla_policy_loads_with_short_clocks():
    """make run points SLA_POLICY_FILE at workflows/demo/sla.yaml: checked like the real one."""
    from datetime import timedelta as td

    from ipoa.domain.catalogue import load_catalogue

    demo = load_catalogue(WORKFLOWS, sla_file=WORKFLOWS / "demo" / "sla.yaml").sla
    assert demo.acceptance_due("urgent", NOW, DIRECTORY.services["DN"].calendar).due_at == NOW + td(minutes=2)
    assert demo.callback_escalates_at(NOW) == NOW + td(minutes=2)
    assert demo.clocks == SLA.clocks


def test_a_clock_started_and_stopped_in_one_change_leaves_no_timer():
    """A supervisor's re-route: withdrawing puts the call back in triage for an instant (a triage clock
    starts), referring it again stops that clock, in one transaction: the combined change sets no
    triage timer, only the new referral's acceptance clock."""
    from ipoa.domain.engine import Result

    call, clocks = start()
    clocks.apply(ENGINE.fire(call, "start_triage", actor="h", now=NOW))
    clocks.apply(ENGINE.fire(call, "refer", actor="h", now=NOW, data={"service": "CRT"}, reason="Known"))
    first = call.referrals[0].id
    withdrawn = ENGINE.fire_referral(call, first, "withdraw", actor="sup", now=NOW, reason="CRT full")
    assert [t.kind for t in withdrawn.timers] == ["triage"]
    combined = Result()
    combined.extend(withdrawn)
    combined.extend(ENGINE.fire(call, "refer", actor="sup", now=NOW, data={"service": "CRS"}, reason="CRT full"))
    assert [(t.kind, t.referral_id) for t in combined.timers] == [("acceptance", call.referrals[1].id)]
    clocks.apply(combined)
    assert set(clocks.running) == {(call.referrals[1].id, "acceptance")}
