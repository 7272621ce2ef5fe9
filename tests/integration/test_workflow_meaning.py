"""Workflow meaning lives in the definitions (domain/meaning.py). An administrator copies workflows/, renames
states and triggers (a new version, as README.md's "Data an administrator edits" asks; sla.yaml names tags,
so it follows by itself), and the app loaded from the copy still re-routes, escalates, takes SMS replies,
keeps its SLA clocks, counts its reports and its dashboard, beside records still on the version before. A
copy missing a tag is refused by `workflows check` naming the file and the tag; a change of tags alone is
deployed in place by `init`."""
from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select, update

from ipoa import create_app
from ipoa.adapters import workflow_store
from ipoa.adapters.orm import security_events, sms_messages, workflow_definitions
from ipoa.config import REPO_ROOT
from ipoa.domain import meaning
from ipoa.domain.errors import TriggerNotAllowed
from ipoa.domain.reporting.period import Period, Scope
from ipoa.service import calls as call_service
from ipoa.service import dashboard, outbox, replies, reports
from ipoa.service.calls import Actor
from tests.conftest import NO_SIGN_IN_RULES, call_payload, csrf_token, sign_in
from tests.helpers.rota import add_on_duty
from tests.helpers.web import service_fires

# What the administrator renames: every state and trigger the code used to name.
STATES = {
    "referral": {"sent": "awaiting_service", "accepted": "taken_on", "in_progress": "visiting",
                 "completed": "finished", "declined": "turned_down"},
    "call": {"in_tier3_review": "clinical_review", "referred": "with_service", "in_triage": "triage"},
}
TRIGGERS = {
    "referral": {"accept": "take_on", "decline": "turn_down", "complete": "finish", "start": "first_visit",
                 "withdraw": "pull_back"},
    "call": {"refer": "send_referral", "transfer": "reassign", "start_triage": "begin_triage",
             "referral_withdrawn": "referral_pulled_back"},
}


def _rename_workflow(data: dict, states: dict[str, str], triggers: dict[str, str], parent: dict[str, str]) -> dict:
    s, t = (lambda x: states.get(x, x)), (lambda x: triggers.get(x, x))
    data["version"] += 1  # a renamed state is a changed machine: a new version (README)
    data["initial"] = s(data["initial"])
    data["final"] = [s(x) for x in data["final"]]
    for st in data["states"]:
        st["name"] = s(st["name"])
    for tr in data["transitions"]:
        tr["trigger"], tr["source"], tr["dest"] = t(tr["trigger"]), [s(x) for x in tr["source"]], s(tr["dest"])
        if "parent_trigger" in tr:
            tr["parent_trigger"] = parent.get(tr["parent_trigger"], tr["parent_trigger"])
    return data


def copy_workflows(folder: Path) -> Path:
    shutil.copytree(REPO_ROOT / "workflows", folder)
    return folder


def load(folder: Path, name: str) -> dict:
    return yaml.safe_load((folder / f"{name}.workflow.yaml").read_text(encoding="utf-8"))


def save(folder: Path, name: str, data: dict) -> None:
    (folder / f"{name}.workflow.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


@pytest.fixture
def renamed(tmp_path) -> Path:
    """workflows/ as an administrator leaves it after renaming: both workflows at v2. The SLA policies,
    directory and routing table need nothing: they name no state or trigger (a clock runs in the states a
    tag marks, in each record's own version)."""
    folder = copy_workflows(tmp_path / "workflows")
    for name in ("call", "referral"):
        save(folder, name, _rename_workflow(load(folder, name), STATES[name], TRIGGERS[name], TRIGGERS["call"]))
    return folder


def app_from(folder: Path, svc, clock):
    """The app as `flask --app ipoa` builds it from its configuration, with WORKFLOWS_DIR the copy, on the
    suite's database and Redis; then `init` deploys the copy."""
    app = create_app({"TESTING": True, "SECRET_KEY": "test-secret", "BENCH_ENDPOINTS": False,
                      "DATABASE_URL": svc.database_url, "REDIS_URL": svc.redis_url, "WORKFLOWS_DIR": str(folder),
                      "SLA_POLICY_FILE": None, "SMS_BACKEND": "console", **NO_SIGN_IN_RULES})
    services = app.extensions["ipoa"]
    services.clock, services.workflow_refresh_seconds = clock, 0
    out = app.test_cli_runner().invoke(args=["init"])
    assert out.exit_code == 0, out.output
    return app, services


HANDLER = Actor("handler", "handler", "CNH")
SUPERVISOR = Actor("supervisor", "supervisor", "CNH")


def referred(svc, service: str = "DN", refer: str = "send_referral", triage: str = "begin_triage", **caller):
    call = call_service.log_call(svc, HANDLER, call_payload(need="community_nursing", caller=caller),
                                 allow_duplicate=True)
    call_service.fire_call_trigger(svc, HANDLER, call.ref, {"trigger": triage, "expected_version": 1})
    return call_service.fire_call_trigger(svc, HANDLER, call.ref, {
        "trigger": refer, "expected_version": 2, "data": {"service": service},
        "reason": None if service == "DN" else "Known to this service"})


@pytest.fixture
def renamed_app(svc, users, renamed, clock):
    app, services = app_from(renamed, svc, clock)
    yield app, services
    services.close()


def test_the_copy_deploys_as_new_versions(renamed_app):
    _, services = renamed_app
    engine = services.engine()
    assert {d.key for d in engine.definitions()} == {("call", 1), ("call", 2), ("referral", 1), ("referral", 2)}
    r2 = engine.definition("referral", 2)
    assert r2.states_tagged(meaning.AWAITING_ACCEPTANCE) == {"awaiting_service"}
    assert r2.trigger_with_role(meaning.ACCEPT) == "take_on"


def test_reroute_and_escalate_follow_the_tags(renamed_app):
    _, services = renamed_app
    call = referred(services)
    referral = call.referrals[0]
    assert (call.workflow_version, call.state, referral.workflow_version, referral.state) == (
        2, "with_service", 2, "awaiting_service")

    call_service.escalate_referral(services, SUPERVISOR, call.ref, referral.id, "No answer from DN yet")
    call, new = call_service.reroute_referral(services, SUPERVISOR, call.ref, referral.id, {
        "service": "CRT", "reason": "DN cannot visit today", "expected_version": 1})
    old = call.referral(referral.id)
    assert (old.state, new.service, new.state, call.state) == ("withdrawn", "CRT", "awaiting_service", "with_service")
    _, history = call_service.get_call(services, call.ref)
    moves = {(e.entity, e.trigger) for e in history}
    assert {("referral", "pull_back"), ("call", "referral_pulled_back"), ("call", "send_referral")} <= moves
    assert next(e for e in history if e.trigger == "send_referral" and e.data.get("reroute")).data["reroute"] == {
        "from_referral": referral.id, "from_service": "DN"}

    # Taken on: no longer re-routable, still escalatable (by the tags, not the names).
    service_fires(services, call.ref, new.id,
                                       {"trigger": "take_on", "expected_version": 1})
    with pytest.raises(TriggerNotAllowed):
        call_service.reroute_referral(services, SUPERVISOR, call.ref, new.id, {
            "service": "DN", "reason": "changed our mind", "expected_version": 2})
    services.clock.advance(minutes=30)
    call_service.escalate_referral(services, SUPERVISOR, call.ref, new.id, "Visit overdue")


def test_sms_replies_fire_the_renamed_triggers(renamed_app):
    app, services = renamed_app
    add_on_duty(services, name="Nia", service="DN", mobile="07700 900201")
    call = referred(services, type="professional", phone="07700 900299", wants_updates=True)
    other = referred(services)

    assert replies.handle(services, provider_sid="SM1", from_number="+447700900201", body=f"ACCEPT {call.ref}")
    assert replies.handle(services, provider_sid="SM2", from_number="+447700900201", body=f"DONE {call.ref}")
    assert replies.handle(services, provider_sid="SM3", from_number="+447700900201",
                          body=f"DECLINE {other.ref} no capacity")
    call, _ = call_service.get_call(services, call.ref)
    other, _ = call_service.get_call(services, other.ref)
    assert (call.referrals[0].state, call.state) == ("finished", "closed")
    assert (other.referrals[0].state, other.state) == ("turned_down", "triage")

    # The referrer hears of acceptance and completion: the triggers' roles, whatever their names.
    outbox.handle(services, _event_ids(services))
    with services.uow() as uow:
        updates = uow.session.execute(select(sms_messages.c.template).where(
            sms_messages.c.recipient_kind == "referrer").order_by(sms_messages.c.created_at)).scalars().all()
    # Both texts are made at the same instant (the fixed clock): their order in the table is not theirs.
    assert sorted(updates) == ["referral_accepted", "referral_completed"]


def _event_ids(services):
    from ipoa.adapters.orm import outbox as outbox_table

    with services.uow() as uow:
        return list(uow.session.scalars(select(outbox_table.c.id).order_by(outbox_table.c.created_at)))


def test_sla_clocks_run_by_tag_in_each_records_own_version(svc, renamed, clock, users):
    """A referral on v1 ('sent') and one on v2 ('awaiting_service'), both unaccepted past their acceptance
    clock: both breach. A call still waiting for triage on v1 ('in_triage') breaches too; a v2 call moved on
    to 'with_service' has no triage clock left."""
    from ipoa.adapters.orm import timers as timers_table
    from ipoa.service import timers

    v1 = referred(svc, refer="refer", triage="start_triage")
    v1_triage = call_service.log_call(svc, HANDLER, call_payload(need="community_nursing"), allow_duplicate=True)
    call_service.fire_call_trigger(svc, HANDLER, v1_triage.ref, {"trigger": "start_triage", "expected_version": 1})
    app, services = app_from(renamed, svc, clock)
    try:
        v2 = referred(services)
        with services.uow() as uow:
            running = uow.session.execute(select(timers_table.c.call_ref, timers_table.c.kind).where(
                timers_table.c.stopped_at.is_(None))).all()
        assert sorted(running) == sorted([(v1.ref, "acceptance"), (v1_triage.ref, "triage"),
                                          (v2.ref, "acceptance")])
        services.clock.advance(hours=5)
        with services.uow() as uow:
            due = list(uow.session.scalars(select(timers_table.c.id).where(timers_table.c.fired_at.is_(None))))
        assert set(timers.fire_many(services, due).values()) == {"breached"}
        for ref in (v1.ref, v2.ref):
            call, _ = call_service.get_call(services, ref)
            assert call.referrals[0].breach == "acceptance"
        call, _ = call_service.get_call(services, v1_triage.ref)
        assert (call.workflow_version, call.state, call.breach) == (1, "in_triage", "triage")
    finally:
        services.close()


def test_the_dashboard_counts_both_versions_by_their_own_tags(svc, renamed, clock, users):
    # One referral on the shipped v1 ('sent', 'accepted'), before the copy is deployed...
    v1 = referred(svc, refer="refer", triage="start_triage")
    v1_accepted = referred(svc, refer="refer", triage="start_triage")
    service_fires(svc, v1_accepted.ref, v1_accepted.referrals[0].id,
                                       {"trigger": "accept", "expected_version": 1})
    app, services = app_from(renamed, svc, clock)
    try:
        # ... and on v2 ('awaiting_service', 'taken_on').
        waiting = referred(services)
        taken = referred(services)
        service_fires(services, taken.ref, taken.referrals[0].id,
                                           {"trigger": "take_on", "expected_version": 1})
        figures = dashboard.figures(services)
        dn = next(f for f in figures.services if f.code == "DN")
        cnh = next(f for f in figures.centres if f.code == "CNH")
        assert (dn.awaiting_acceptance, dn.accepted) == (2, 2)
        assert (cnh.awaiting_acceptance, cnh.accepted) == (2, 2)
        assert dn.counts == {"sent": 1, "accepted": 1, "awaiting_service": 1, "taken_on": 1}

        drill = dashboard.calls_behind(services, service="DN", measure="awaiting_acceptance")
        assert sorted(r.ref for r in drill.rows) == sorted([v1.ref, waiting.ref])
        assert all(r.reroutable and r.escalatable for r in drill.rows)
        drill = dashboard.calls_behind(services, service="DN", measure="accepted")
        assert sorted((r.ref, r.reroutable, r.escalatable) for r in drill.rows) == sorted(
            [(v1_accepted.ref, False, True), (taken.ref, False, True)])
        # The supervisor's page offers re-routing and escalating on both versions' waiting referrals.
        client = app.test_client()
        assert sign_in(client, "supervisor").status_code == 302
        page = client.get("/supervisor/calls?service=DN&measure=awaiting_acceptance").get_data(as_text=True)
        assert page.count("Re-route the referral") == 2 and page.count("Escalate to the DN duty lead") == 2
        page = client.get(f"/calls/{waiting.ref}").get_data(as_text=True)
        assert "Re-route to another service" in page and "follows its referral below" in page

        # Reassigning from the dashboard fires the call version's `move_centre` transition (`reassign`).
        fresh = call_service.log_call(services, HANDLER, call_payload(), allow_duplicate=True)
        (row,) = dashboard.calls_behind(services, centre="CNH", measure="logged").rows
        assert row.ref == fresh.ref and row.may_transfer
        listing = "/supervisor/calls?centre=CNH&measure=logged"
        assert "Reassign to another centre" in client.get(listing).get_data(as_text=True)
        answer = client.post(f"/supervisor/calls/{fresh.ref}/transfer", data={
            "centre": "ASC", "reason": "Social care need", "expected_version": 1,
            "list_centre": "CNH", "list_measure": "logged", "csrf_token": csrf_token(client, listing)})
        assert answer.status_code == 302
        moved, history = call_service.get_call(services, fresh.ref)
        assert (moved.state, moved.centre, history[-1].trigger) == ("transferred", "ASC", "reassign")
    finally:
        services.close()


def test_reports_count_the_renamed_states(renamed_app):
    _, services = renamed_app
    accepted = referred(services)
    services.clock.advance(minutes=20)
    service_fires(services, accepted.ref, accepted.referrals[0].id,
                                       {"trigger": "take_on", "expected_version": 1})
    service_fires(services, accepted.ref, accepted.referrals[0].id,
                                       {"trigger": "first_visit", "expected_version": 2})
    declined = referred(services)
    service_fires(services, declined.ref, declined.referrals[0].id,
                                       {"trigger": "turn_down", "reason": "no capacity", "expected_version": 1})
    today = services.clock.now().date()
    report = reports.build_report(services, Period(today, today), Scope())
    assert report.referrals_sent == 2
    assert report.time_to_acceptance.values == (20 * 60.0,)
    assert report.accepted_in_sla.hits == 1
    assert report.declined == 1
    assert report.responded_in_target.total == 1


def test_workflows_check_refuses_a_copy_missing_a_tag(app, tmp_path):
    folder = copy_workflows(tmp_path / "workflows")
    referral = load(folder, "referral")
    for st in referral["states"]:
        st["tags"] = [t for t in st.get("tags", []) if t != "accepted"]
    save(folder, "referral", referral)
    app.extensions["ipoa"].workflows_dir = folder
    try:
        out = app.test_cli_runner().invoke(args=["workflows", "check"])
        init = app.test_cli_runner().invoke(args=["init"])
    finally:
        app.extensions["ipoa"].workflows_dir = REPO_ROOT / "workflows"
    for result in (out, init):
        assert result.exit_code == 1, result.output
        assert f"{folder / 'referral.workflow.yaml'}: " in result.output
        assert "needs exactly 1 state tagged 'accepted'" in result.output


def test_workflows_check_refuses_a_copy_renamed_without_its_tags(app, tmp_path):
    """Renaming is fine; dropping a tag on the way is not (here: the renamed review state lost its tag)."""
    folder = copy_workflows(tmp_path / "workflows")
    call = load(folder, "call")
    for st in call["states"]:
        if st["name"] == "in_tier3_review":
            st.pop("tags")
    save(folder, "call", call)
    app.extensions["ipoa"].workflows_dir = folder
    try:
        out = app.test_cli_runner().invoke(args=["workflows", "check"])
    finally:
        app.extensions["ipoa"].workflows_dir = REPO_ROOT / "workflows"
    assert out.exit_code == 1
    assert f"{folder / 'call.workflow.yaml'}: " in out.output and "'tier3_review'" in out.output


def test_init_updates_a_deployed_versions_tags_in_place(app, svc, users, tmp_path):
    """Tags are meaning, not shape: the same version number, its tags replaced, logged; the engine rereads."""
    call = referred(svc, refer="refer", triage="start_triage")
    rid = call.referrals[0].id
    service_fires(svc, call.ref, rid, {"trigger": "accept", "expected_version": 1})
    folder = copy_workflows(tmp_path / "workflows")
    referral = load(folder, "referral")
    for st in referral["states"]:
        if st["name"] == "accepted":
            st["tags"] = ["accepted"]  # no longer escalatable once accepted
    save(folder, "referral", referral)
    app.extensions["ipoa"].workflows_dir = folder
    svc.clock.advance(minutes=1)
    try:
        check = app.test_cli_runner().invoke(args=["workflows", "check"])
        init = app.test_cli_runner().invoke(args=["init"])
    finally:
        app.extensions["ipoa"].workflows_dir = REPO_ROOT / "workflows"
    assert check.exit_code == 0 and "referral v1's tags or roles differ" in check.output
    assert init.exit_code == 0 and "updated the tags and roles of referral v1" in init.output
    with pytest.raises(TriggerNotAllowed):
        call_service.escalate_referral(svc, SUPERVISOR, call.ref, rid, "chasing")
    with svc.uow() as uow:
        (event,) = uow.session.execute(select(security_events.c.detail).where(
            security_events.c.kind == "workflow_deployed",
            security_events.c.subject == "referral v1")).scalars().all()
    assert event["meaning_only"] is True and event["version"] == 1


def test_a_version_stored_before_tags_keeps_its_old_meaning(app, svc, users):
    """A deployment from before tags existed: its stored v1 has none. It behaves as it did, and init puts the
    file's tags in place; its checksum (the shape) was never different."""
    with svc.uow() as uow:
        for name in ("call", "referral"):
            body = uow.session.scalar(select(workflow_definitions.c.body).where(
                workflow_definitions.c.name == name, workflow_definitions.c.version == 1))
            # deployed_at too: the engine's marker moves, as it would in a process started afresh.
            uow.session.execute(update(workflow_definitions).where(
                workflow_definitions.c.name == name, workflow_definitions.c.version == 1)
                .values(body=meaning.strip_meaning(body), deployed_at=svc.clock.now() - timedelta(days=1)))
        uow.commit()
        stored = {d.name: d for d in workflow_store.load_all(uow.session)}
    assert stored["referral"].states_tagged(meaning.ESCALATABLE) == {"sent", "accepted", "in_progress"}
    call = referred(svc, refer="refer", triage="start_triage")
    call_service.escalate_referral(svc, SUPERVISOR, call.ref, call.referrals[0].id, "chasing")
    svc.clock.advance(minutes=1)
    init = app.test_cli_runner().invoke(args=["init"])
    assert init.exit_code == 0, init.output
    assert "updated the tags and roles of call v1" in init.output
    assert "updated the tags and roles of referral v1" in init.output
