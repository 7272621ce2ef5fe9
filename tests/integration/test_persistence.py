"""The service layer on the real database: one transaction per use case, optimistic concurrency,
workflow versions pinned per call."""
from __future__ import annotations

import copy
import threading

import pytest
from sqlalchemy import func, select

from ipoa.adapters import orm, workflow_store
from ipoa.domain.catalogue import parse_workflow
from ipoa.domain.errors import VersionConflict, WorkflowError
from ipoa.domain.model import Call
from ipoa.service import calls as call_service
from tests.conftest import call_payload
from tests.helpers.web import service_fires


def count(svc, table) -> int:
    with svc.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(table))


def test_a_logged_call_its_audit_and_outbox_commit_together(svc, handler_actor):
    call = call_service.log_call(svc, handler_actor, call_payload())
    loaded, history = call_service.get_call(svc, call.ref)
    assert loaded.state == "logged" and loaded.version == 1
    assert [(e.from_state, e.to_state, e.trigger, e.actor) for e in history] == [
        (None, "logged", "log", "handler")]
    assert count(svc, orm.outbox) == 1
    assert loaded.date_of_birth.isoformat() == "1938-04-02"
    assert loaded.logged_at.tzinfo is not None


def test_a_failure_before_commit_leaves_nothing_half_written(svc, handler_actor, monkeypatch):
    from ipoa.adapters.unit_of_work import UnitOfWork

    def failing_commit(self):
        self.session.flush()  # the rows reached the database inside the transaction...
        raise RuntimeError("crash between flush and commit")

    monkeypatch.setattr(UnitOfWork, "commit", failing_commit)
    with pytest.raises(RuntimeError):
        call_service.log_call(svc, handler_actor, call_payload())
    for table in (orm.calls, orm.audit_events, orm.outbox, orm.referrals):
        assert count(svc, table) == 0, table.name


def test_a_failed_trigger_changes_nothing(svc, handler_actor):
    call = call_service.log_call(svc, handler_actor, call_payload())
    call_service.fire_call_trigger(svc, handler_actor, call.ref, {"trigger": "start_triage", "expected_version": 1})
    before = (count(svc, orm.audit_events), count(svc, orm.outbox), count(svc, orm.referrals))
    with pytest.raises(Exception):  # noqa: B017 - whichever refusal: the point is that nothing was written
        call_service.fire_call_trigger(svc, handler_actor, call.ref,
                                       {"trigger": "refer", "expected_version": 2, "data": {"service": "LB"}})
    assert (count(svc, orm.audit_events), count(svc, orm.outbox), count(svc, orm.referrals)) == before
    assert call_service.get_call(svc, call.ref)[0].state == "in_triage"


def _race(svc, actor, ref: str, payloads: list[dict]) -> list[object]:
    barrier = threading.Barrier(len(payloads))
    outcomes: list[object] = [None] * len(payloads)

    def run(i: int) -> None:
        barrier.wait()
        try:
            outcomes[i] = call_service.fire_call_trigger(svc, actor, ref, payloads[i]).state
        except Exception as exc:  # noqa: BLE001 - the outcome is what we assert on
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(payloads))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes


@pytest.mark.parametrize("attempt", range(5))
def test_of_two_concurrent_updates_from_one_version_exactly_one_wins(svc, handler_actor, attempt):
    call = call_service.log_call(svc, handler_actor, call_payload(), allow_duplicate=True)
    outcomes = _race(svc, handler_actor, call.ref, [
        {"trigger": "start_triage", "expected_version": 1},
        {"trigger": "cancel", "reason": "caller rang off", "expected_version": 1},
    ])
    winners = [o for o in outcomes if isinstance(o, str)]
    losers = [o for o in outcomes if isinstance(o, VersionConflict)]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    final, history = call_service.get_call(svc, call.ref)
    assert final.version == 2 and final.state == winners[0]
    assert len(history) == 2  # the loser left no audit event


@pytest.mark.postgres_only
def test_the_database_refuses_a_write_from_a_stale_version(svc, handler_actor):
    """Both sessions read version 1 before either writes: the domain check passes for both, so only
    the database's version check (UPDATE ... WHERE version = 1) can stop the second."""
    if svc.db.dialect.name != "postgresql":
        pytest.skip("SQLite serialises whole transactions (BEGIN IMMEDIATE); the interleaving cannot happen")
    call = call_service.log_call(svc, handler_actor, call_payload())
    engine = svc.engine()
    with svc.uow() as first, svc.uow() as second:
        a, b = first.calls.get(call.ref), second.calls.get(call.ref)
        now = svc.clock.now()
        first.record(engine.fire(a, "start_triage", actor="a", now=now, expected_version=1))
        second.record(engine.fire(b, "cancel", actor="b", now=now, reason="dup", expected_version=1))
        first.commit()
        with pytest.raises(VersionConflict):
            second.commit()
    final, history = call_service.get_call(svc, call.ref)
    assert (final.state, final.version, len(history)) == ("in_triage", 2, 2)


def _call_v2(catalogue):
    raw = copy.deepcopy(next(d for d in catalogue.workflows if d.name == "call").raw)
    raw["version"] = 2
    raw["states"].append({"name": "on_hold", "label": "On hold", "waiting": True})
    raw["transitions"].append({"trigger": "hold", "source": ["in_triage"], "dest": "on_hold"})
    raw["transitions"].append({"trigger": "resume", "source": ["on_hold"], "dest": "in_triage"})
    return parse_workflow(raw, "test call v2")


def test_a_call_stays_on_the_workflow_version_it_started_on(svc, catalogue, handler_actor):
    old = call_service.log_call(svc, handler_actor, call_payload())
    with svc.uow() as uow:
        assert workflow_store.deploy(uow.session, [_call_v2(catalogue)], svc.clock.now()) == ["deployed call v2"]
        uow.commit()
    new = call_service.log_call(svc, handler_actor, call_payload(), allow_duplicate=True)
    assert (old.workflow_version, new.workflow_version) == (1, 2)
    for ref in (old.ref, new.ref):
        call_service.fire_call_trigger(svc, handler_actor, ref, {"trigger": "start_triage", "expected_version": 1})
    moved = call_service.fire_call_trigger(svc, handler_actor, new.ref, {"trigger": "hold", "expected_version": 2})
    assert moved.state == "on_hold"
    with pytest.raises(call_service.TriggerNotAllowed):
        call_service.fire_call_trigger(svc, handler_actor, old.ref, {"trigger": "hold", "expected_version": 2})


def test_a_changed_definition_under_a_deployed_version_is_refused(svc, catalogue):
    raw = copy.deepcopy(next(d for d in catalogue.workflows if d.name == "call").raw)
    raw["transitions"][0]["label"] = "Begin triage"
    changed = parse_workflow(raw, "edited call.workflow.yaml")
    with svc.uow() as uow, pytest.raises(WorkflowError, match="new version number"):
        workflow_store.deploy(uow.session, [changed], svc.clock.now())


def test_referral_and_call_move_together_in_one_transaction(svc, handler_actor):
    call = call_service.log_call(svc, handler_actor, call_payload(need="community_nursing", urgency="routine"))
    call_service.fire_call_trigger(svc, handler_actor, call.ref, {"trigger": "start_triage", "expected_version": 1})
    call = call_service.fire_call_trigger(svc, handler_actor, call.ref,
                                          {"trigger": "refer", "expected_version": 2, "data": {"service": "DN"}})
    referral = call.referrals[0]
    call = service_fires(svc, call.ref, referral.id,
                         {"trigger": "decline", "reason": "no capacity", "expected_version": 1})
    with svc.uow() as uow:
        stored = uow.calls.get(call.ref)
        assert stored.state == "in_triage" and stored.referrals[0].state == "declined"
        assert stored.referrals[0].outcome_reason == "no capacity"
    assert count(svc, orm.referrals) == 1
    with svc.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Call)) == 1


def test_a_logged_call_is_stored_with_its_audit_event_outbox_event_and_timer(svc, handler_actor):
    """On PostgreSQL the four rows go in one statement (unit_of_work.add_new_call); read them back."""
    call = call_service.log_call(svc, handler_actor, call_payload(
        caller={"type": "professional", "phone": "07700 900123", "wants_updates": True}))
    assert call.id is not None
    with svc.uow() as uow:
        s = uow.session
        row = s.execute(select(orm.calls).where(orm.calls.c.id == call.id)).one()
        assert (row.ref, row.state, row.version, row.urgency, row.updates_to) == (
            call.ref, "logged", 1, "urgent", "+447700900123")
        assert row.recommended == call.recommended and row.route is None and row.logged_at == svc.clock.now()
        audit = s.execute(select(orm.audit_events).where(orm.audit_events.c.call_ref == call.ref)).one()
        assert (audit.trigger, audit.from_state, audit.to_state, audit.actor) == ("log", None, "logged", "handler")
        assert audit.data["centre"] == "CNH"
        event = s.execute(select(orm.outbox).where(orm.outbox.c.payload["ref"].as_string() == call.ref)).one()
        assert (event.topic, event.processed_at, event.attempts) == ("call.logged", None, 0)
        timer = s.execute(select(orm.timers).where(orm.timers.c.call_ref == call.ref)).one()
        assert (timer.kind, timer.set_at_version, timer.fired_at) == ("triage", 1, None)
    assert svc.redis().lrange("ipoa:outbox:committed", 0, -1) == [event.id.encode()]
    # The ORM loads what the single statement wrote.
    loaded, history = call_service.get_call(svc, call.ref)
    assert loaded.id == call.id and [h.trigger for h in history] == ["log"]


# A unit of work that runs only prepared statements (a ringing call's answer: service/phone_calls.incoming)
# runs them on its own connection, without the ORM session (UnitOfWork.connection); a session asked for
# afterwards takes the same transaction over. On SQLite as on PostgreSQL.

def _ping_statements():
    from sqlalchemy import bindparam, insert

    from ipoa.adapters.prepared import Prepared

    at = bindparam("b_at", type_=orm.bench_pings.c.created_at.type)
    return (Prepared(insert(orm.bench_pings).values(created_at=at, note="at commit").returning(orm.bench_pings.c.id)),
            Prepared(insert(orm.bench_pings).values(created_at=at, note="now")))


def test_a_unit_of_work_of_prepared_statements_commits_them_all_or_nothing(svc):
    at_commit, now_ = _ping_statements()
    with svc.uow() as uow:
        now_.run(uow.connection(), {"b_at": svc.clock.now()})
        uow.at_commit(at_commit, {"b_at": svc.clock.now()})
    assert count(svc, orm.bench_pings) == 0  # left without commit: rolled back, the statement at commit unsent
    with svc.uow() as uow:
        now_.run(uow.connection(), {"b_at": svc.clock.now()})
        rows = uow.at_commit(at_commit, {"b_at": svc.clock.now()})
        uow.commit()
    assert len(rows()) == 1 and count(svc, orm.bench_pings) == 2


def test_a_session_made_after_the_units_connection_was_used_is_in_the_same_transaction(svc):
    from sqlalchemy import insert

    at_commit, now_ = _ping_statements()
    for commit in (False, True):
        with svc.uow() as uow:
            now_.run(uow.connection(), {"b_at": svc.clock.now()})
            uow.session.execute(insert(orm.bench_pings).values(created_at=svc.clock.now(), note="orm"))
            assert uow.connection() is uow.session.connection()
            uow.at_commit(at_commit, {"b_at": svc.clock.now()})
            if commit:
                uow.commit()
        assert count(svc, orm.bench_pings) == (3 if commit else 0)


def test_a_workflow_step_and_an_intake_make_no_orm_session(svc, handler_actor, monkeypatch):
    """They run only prepared statements on the unit of work's connection (adapters/unit_of_work._SessionView):
    the ORM session is made only for a store that needs more than that, and then takes over the transaction
    under way (the test above)."""
    import traceback

    from ipoa.adapters.unit_of_work import UnitOfWork

    made: list[str] = []
    session_of = UnitOfWork.session.fget

    def counted(uow):
        if uow._session is None:  # noqa: SLF001 - what this test is about
            made.append("".join(traceback.format_stack()[-6:-1]))  # where, should it fail
        return session_of(uow)

    monkeypatch.setattr(UnitOfWork, "session", property(counted))
    # (a due re-check of the deployed versions reads them with a session; set back after the test)
    monkeypatch.setattr(svc, "workflow_refresh_seconds", 3600)
    call = call_service.log_call(svc, handler_actor, call_payload())
    call = call_service.fire_call_trigger(svc, handler_actor, call.ref,
                                          {"trigger": "start_triage", "expected_version": call.version})
    call = call_service.fire_call_trigger(svc, handler_actor, call.ref, {
        "trigger": "refer", "expected_version": call.version, "data": {"service": "CRT"},
        "reason": "Known to this service"})
    assert call.state == "referred" and len(call.referrals) == 1
    assert made == [], "\n\n".join(made)
    # A use case that does need the session still gets one, in the same transaction.
    with svc.uow() as uow:
        uow.calls.get(call.ref)
        assert uow.calls.logged_in(call.centre, call.logged_at, call.logged_at.replace(year=2100), 5)
        uow.commit()
    assert len(made) == 1
    # all written: log, start triage, refer (the call referred and its referral sent)
    assert count(svc, orm.audit_events) == 4 and count(svc, orm.outbox) == 4 and count(svc, orm.timers) >= 1


def test_a_new_call_and_referral_hold_just_what_their_domain_constructors_set(svc, handler_actor):
    # Mapped, they are built without the ORM's change events (adapters/orm._construct_without_change_events):
    # the constructor's own values, each set once, and still ORM instances (a referral appended to a new
    # call's referrals is in the ORM's collection).
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from sqlalchemy import inspect

    from ipoa.domain.model import Referral

    now = datetime(2026, 6, 3, 9, 0, tzinfo=UTC)
    made = {
        Call: dict(ref="ABCD-EFGH", centre="CNH", caller_type="carer", caller_name="Jo", caller_phone=None,
                   nhs_number=None, given_name="Edith", family_name="Testperson", date_of_birth=None,
                   postcode=None, locality=None, out_of_area=False, need="housing", urgency="routine",
                   summary="s", workflow="call", workflow_version=1, logged_at=now, logged_by="handler",
                   recommended={"tier": 2}, consent="given"),
        Referral: dict(service="LB", workflow="referral", workflow_version=1, sent_at=now, sent_by="handler"),
    }
    for cls, kwargs in made.items():
        built = cls(**kwargs)
        by_the_domain = SimpleNamespace()
        cls.__init__._sa_original_init(by_the_domain, **kwargs)  # the domain's own, as SQLAlchemy keeps it
        expected = vars(by_the_domain)
        if cls is Referral:
            expected["id"] = built.id  # (a new uuid each time)
        assert {name: getattr(built, name) for name in expected} == expected
        assert inspect(built).transient
    call = call_service.log_call(svc, handler_actor, call_payload())
    assert call.referrals == [] and call.id is not None
    referral = Referral(**made[Referral])
    call.referrals.append(referral)
    assert call.referrals == [referral]


def test_each_row_written_once_has_exactly_its_tables_columns_as_fields():
    """adapters/row_inserts.py binds an event's, message's or timer's own fields as its row: a field without a
    column, or a column without a field, must fail here rather than at a write."""
    from dataclasses import fields

    from ipoa.adapters.row_inserts import _TABLES

    for cls, table in _TABLES.items():
        assert {f.name for f in fields(cls)} == {c.name for c in table.columns}, cls.__name__
