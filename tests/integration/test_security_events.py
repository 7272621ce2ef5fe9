"""The security log through the service layer: users and tokens, SMS STOP/START, deploys, the query.
Every change and its event commit together; the chain verifies afterwards."""
from __future__ import annotations

import copy
import json
import shutil

import pytest
from sqlalchemy import select

from ipoa.adapters import audit_store
from ipoa.adapters.orm import api_tokens, professionals, security_events
from ipoa.config import REPO_ROOT
from ipoa.domain.catalogue import Catalogue, parse_workflow
from ipoa.domain.errors import WorkflowError
from ipoa.service import deploys, replies, security
from ipoa.service import users as user_service
from ipoa.service.professionals import add_professional
from ipoa.users import User

CLI = "cli:ops"
PW = "a long enough password"


def logged(svc, kind: str | None = None) -> list:
    """Security events oldest first (all, or of one kind)."""
    stmt = select(security_events).order_by(security_events.c.seq)
    if kind:
        stmt = stmt.where(security_events.c.kind == kind)
    with svc.uow() as uow:
        return uow.session.execute(stmt).all()


def anywhere(svc, text: str) -> bool:
    """Does text appear in any column of any security event (the detail as stored JSON)?"""
    for row in logged(svc):
        for value in row._mapping.values():
            if text in (json.dumps(value) if isinstance(value, (dict, list)) else str(value)):
                return True
    return False


def chain_ok(svc) -> int:
    with svc.uow() as uow:
        problem, count = audit_store.verify_chain(uow.session, "security")
    assert problem is None, str(problem)
    return count


def user_row(svc, username: str) -> User:
    with svc.uow() as uow:
        return uow.session.scalars(select(User).where(User.username == username)).one()


def make(svc, username="nurse.jo", role="handler", centre="CHS", **kw):
    return user_service.create_user(svc, CLI, username=username, role=role, centre=centre, password=PW, **kw)


# -- users -----------------------------------------------------------------------------------------

def test_creating_a_user_records_who_what_role_and_centre_and_never_the_password(svc):
    make(svc, mobile="07700 900123")
    (event,) = logged(svc)
    assert (event.kind, event.actor, event.subject, event.detail) == (
        "user_created", CLI, "nurse.jo", {"role": "handler", "centre": "CHS"})
    assert event.at == svc.clock.now() and event.client is None
    assert not anywhere(svc, PW) and not anywhere(svc, "900123")
    assert user_row(svc, "nurse.jo").check_password(PW)
    chain_ok(svc)


@pytest.mark.parametrize("kw, field, message", [
    ({"centre": "NOPE"}, "centre", "unknown centre NOPE"),
    ({"centre": None}, "centre", "need a home centre"),
    ({"role": "wizard"}, "role", "unknown role"),
    ({"password": "short"}, "password", "at least 12"),
    ({"password": "x" * 201}, "password", "at most 200"),
    ({"mobile": "0116 496 0000"}, "mobile", "not a valid UK mobile"),
    ({"username": "two words"}, "username", "letters, digits and . _ - @ ' only"),
    ({"username": "pass!word#1"}, "username", "letters, digits and . _ - @ ' only"),  # as the sign-in log reads it
    ({"username": "a\nb"}, "username", "letters, digits and . _ - @ ' only"),
])
def test_a_refused_user_is_not_created_and_nothing_is_logged(svc, kw, field, message):
    args = {"username": "nurse.jo", "role": "handler", "centre": "CHS", "password": PW, **kw}
    with pytest.raises(user_service.UserError) as refused:
        user_service.create_user(svc, CLI, **args)
    assert refused.value.field == field and message in str(refused.value)
    assert logged(svc) == []


def test_a_duplicate_username_is_refused(svc):
    make(svc)
    with pytest.raises(user_service.UserError, match="already exists"):
        make(svc)
    assert len(logged(svc)) == 1


def test_changes_name_the_fields_never_the_values(svc):
    make(svc)
    changed = user_service.update_user(svc, CLI, "nurse.jo", display_name="Jo Nurse", mobile="07700900456",
                                       centre="CNH")
    assert changed == ["display_name", "mobile", "centre"]
    (event,) = logged(svc, "user_changed")
    assert (event.actor, event.subject, event.detail) == (CLI, "nurse.jo", {"fields": ["display_name", "mobile",
                                                                                         "centre"]})
    assert not anywhere(svc, "900456") and not anywhere(svc, "Jo Nurse")
    row = user_row(svc, "nurse.jo")
    assert (row.display_name, row.mobile, row.centre) == ("Jo Nurse", "+447700900456", "CNH")


def test_a_role_change_records_from_and_to(svc):
    make(svc)
    assert user_service.update_user(svc, CLI, "nurse.jo", role="supervisor") == ["role"]
    (event,) = logged(svc, "role_changed")
    assert (event.actor, event.subject, event.detail) == (CLI, "nurse.jo", {"from": "handler", "to": "supervisor"})
    assert logged(svc, "user_changed") == []
    assert user_row(svc, "nurse.jo").role == "supervisor"


def test_a_role_change_with_a_centre_change_is_two_events(svc):
    make(svc)
    assert user_service.update_user(svc, CLI, "nurse.jo", role="admin", centre=None) == ["centre", "role"]
    assert [(e.kind, e.detail) for e in logged(svc)[1:]] == [
        ("user_changed", {"fields": ["centre"]}), ("role_changed", {"from": "handler", "to": "admin"})]


def test_a_change_leaving_a_handler_without_a_centre_is_refused(svc):
    make(svc)
    with pytest.raises(user_service.UserError, match="need a home centre"):
        user_service.update_user(svc, CLI, "nurse.jo", centre=None)
    with pytest.raises(user_service.UserError, match="need a home centre"):
        make(svc, "admin.jo", role="admin", centre=None)
        user_service.update_user(svc, CLI, "admin.jo", role="supervisor")
    assert user_row(svc, "nurse.jo").centre == "CHS"
    assert [e.kind for e in logged(svc)] == ["user_created", "user_created"]


def test_a_change_to_what_it_already_is_records_nothing(svc):
    make(svc, display_name="Jo")
    assert user_service.update_user(svc, CLI, "nurse.jo", display_name="Jo", role="handler") == []
    assert [e.kind for e in logged(svc)] == ["user_created"]


def test_deactivate_and_reactivate_are_recorded_once_each(svc):
    make(svc)
    assert user_service.set_active(svc, CLI, "nurse.jo", False) is True
    assert user_service.set_active(svc, CLI, "nurse.jo", False) is False  # already: nothing to record
    assert user_row(svc, "nurse.jo").active is False
    assert user_service.set_active(svc, CLI, "nurse.jo", True) is True
    assert [(e.kind, e.actor, e.subject, e.detail) for e in logged(svc)[1:]] == [
        ("user_deactivated", CLI, "nurse.jo", {}), ("user_reactivated", CLI, "nurse.jo", {})]
    assert user_row(svc, "nurse.jo").active is True


def test_a_password_change_is_recorded_without_the_password(svc):
    make(svc)
    user_service.set_password(svc, CLI, "nurse.jo", "another long password")
    (event,) = logged(svc, "password_changed")
    assert (event.actor, event.subject, event.detail) == (CLI, "nurse.jo", {})
    assert not anywhere(svc, "another long password")
    row = user_row(svc, "nurse.jo")
    assert row.check_password("another long password") and not row.check_password(PW)
    with pytest.raises(user_service.UserError, match="at least 12"):
        user_service.set_password(svc, CLI, "nurse.jo", "short")


def test_an_unknown_user_is_refused_in_plain_english(svc):
    for change in (lambda: user_service.update_user(svc, CLI, "nobody", role="admin"),
                   lambda: user_service.set_active(svc, CLI, "nobody", False),
                   lambda: user_service.set_password(svc, CLI, "nobody", PW),
                   lambda: user_service.issue_token(svc, CLI, "nobody"),
                   lambda: user_service.revoke_tokens(svc, CLI, "nobody"),
                   lambda: user_service.tokens(svc, "nobody")):
        with pytest.raises(user_service.UserError, match="no user nobody"):
            change()
    assert logged(svc) == []


# -- tokens ----------------------------------------------------------------------------------------

def test_issuing_a_token_records_its_id_never_the_token(svc):
    make(svc)
    token_id, token = (issued := user_service.issue_token(svc, CLI, "nurse.jo")).id, issued.token
    (event,) = logged(svc, "token_issued")
    assert (event.actor, event.subject, event.detail) == (CLI, "nurse.jo", {
        "token_id": token_id, "name": "unnamed", "expires_at": issued.expires_at.isoformat(), "days": 90})
    assert not anywhere(svc, token) and not anywhere(svc, token[5:20])
    (listed,) = user_service.tokens(svc, "nurse.jo")
    assert (listed.id, listed.created_at, listed.revoked_at) == (token_id, svc.clock.now(), None)


def test_revoking_one_token_or_all_of_a_users(svc, clock):
    make(svc)
    ids = [user_service.issue_token(svc, CLI, "nurse.jo").id for _ in range(3)]
    assert user_service.revoke_token(svc, CLI, ids[0]) == "nurse.jo"
    with pytest.raises(user_service.UserError, match="already revoked"):
        user_service.revoke_token(svc, CLI, ids[0])
    with pytest.raises(user_service.UserError, match="no API token 9999"):
        user_service.revoke_token(svc, CLI, 9999)
    assert user_service.revoke_tokens(svc, CLI, "nurse.jo") == ids[1:]
    assert user_service.revoke_tokens(svc, CLI, "nurse.jo") == []  # none left in force: nothing logged
    assert [(e.subject, e.detail) for e in logged(svc, "token_revoked")] == [
        ("nurse.jo", {"token_id": i, "name": "unnamed"}) for i in ids]
    with svc.uow() as uow:
        revoked = uow.session.execute(select(api_tokens.c.revoked_at)).scalars().all()
    assert revoked == [clock.now()] * 3
    assert all(t.revoked_at is not None for t in user_service.tokens(svc, "nurse.jo"))
    chain_ok(svc)


# -- a change and its event commit together -------------------------------------------------------

def test_a_change_whose_event_cannot_be_written_does_not_happen(svc, monkeypatch):
    make(svc)

    def broken(session, events):
        raise RuntimeError("the security log is unwritable")

    monkeypatch.setattr(audit_store, "append", broken)
    with pytest.raises(RuntimeError):
        user_service.set_active(svc, CLI, "nurse.jo", False)
    with pytest.raises(RuntimeError):
        user_service.issue_token(svc, CLI, "nurse.jo")
    monkeypatch.undo()
    assert user_row(svc, "nurse.jo").active is True
    assert user_service.tokens(svc, "nurse.jo") == []
    assert [e.kind for e in logged(svc)] == ["user_created"]


# -- SMS STOP / START ------------------------------------------------------------------------------

NIA = "+447700900201"


def test_stop_and_start_are_logged_by_the_professionals_id_never_the_number(svc):
    prof_id = add_professional(svc, name="Nia", service="DN", mobile="07700 900201")
    replies.handle(svc, provider_sid="SM1", from_number=NIA, body="STOP")
    with svc.uow() as uow:
        assert uow.session.scalar(select(professionals.c.opted_out_at)) == svc.clock.now()
    replies.handle(svc, provider_sid="SM2", from_number=NIA, body="START")
    replies.handle(svc, provider_sid="SM2", from_number=NIA, body="START")  # the same webhook again
    # Adding her is an event of its own (professional_changed), by the professional's id too.
    assert [(e.kind, e.actor, e.subject, e.detail) for e in logged(svc)] == [
        ("professional_changed", "system", str(prof_id), {"change": "added", "service": "DN"}),
        ("sms_opt_out", "sms", str(prof_id), {}), ("sms_opt_in", "sms", str(prof_id), {})]
    assert not anywhere(svc, "900201") and not anywhere(svc, "Nia")
    with svc.uow() as uow:
        assert uow.session.scalar(select(professionals.c.opted_out_at)) is None
    chain_ok(svc)


def test_stop_from_an_unknown_number_changes_and_logs_nothing(svc):
    add_professional(svc, name="Nia", service="DN", mobile="07700 900201")
    before = logged(svc)
    replies.handle(svc, provider_sid="SM1", from_number="+447700900999", body="STOP")
    assert logged(svc) == before


# -- deploys ---------------------------------------------------------------------------------------

def _with_call_v2(catalogue) -> Catalogue:
    raw = copy.deepcopy(next(d for d in catalogue.workflows if d.name == "call").raw)
    raw["version"] = 2
    raw["states"].append({"name": "on_hold", "label": "On hold", "waiting": True})
    raw["transitions"].append({"trigger": "hold", "source": ["in_triage"], "dest": "on_hold"})
    raw["transitions"].append({"trigger": "resume", "source": ["on_hold"], "dest": "in_triage"})
    return Catalogue(workflows=[*catalogue.workflows, parse_workflow(raw, "test call v2")],
                     directory=catalogue.directory, routing=catalogue.routing, sla=catalogue.sla)


def test_a_deploy_records_new_workflow_versions_and_the_configuration_once(svc, catalogue):
    first = deploys.deploy(svc, CLI, catalogue)  # the workflows are deployed already (the fixture)
    (config,) = logged(svc)
    assert (config.kind, config.actor, config.subject) == ("config_deployed", CLI, None)
    assert config.detail == deploys.config_checksums(svc)
    assert set(config.detail) == {"directory_sha256", "routing_sha256", "board_sha256", "sla_sha256", "sla_file"}
    assert config.detail["sla_file"] == "sla.yaml" and len(config.detail["sla_sha256"]) == 64
    assert any("configuration recorded" in line for line in first)
    assert deploys.deploy(svc, CLI, catalogue) == [] and len(logged(svc)) == 1  # unchanged: nothing

    v2 = _with_call_v2(catalogue)
    assert deploys.deploy(svc, CLI, v2) == ["deployed call v2"]
    (event,) = logged(svc, "workflow_deployed")
    assert (event.actor, event.subject, event.detail) == (
        CLI, "call v2", {"name": "call", "version": 2, "checksum": v2.workflows[-1].checksum})
    assert deploys.deploy(svc, CLI, v2) == []
    chain_ok(svc)


def test_a_changed_directory_routing_board_or_sla_file_is_a_new_config_deployed(svc, catalogue, tmp_path, monkeypatch):
    folder = tmp_path / "workflows"
    shutil.copytree(REPO_ROOT / "workflows", folder)
    monkeypatch.setattr(svc, "workflows_dir", folder)
    deploys.deploy(svc, CLI, catalogue)
    for name in ("directory.yaml", "routing.yaml", "board.yaml", "sla.yaml"):
        path = folder / name
        path.write_text(path.read_text() + "\n# reviewed\n")
        deploys.deploy(svc, CLI, catalogue)
    details = [e.detail for e in logged(svc, "config_deployed")]
    assert len(details) == 5
    changed = [{k for k in details[i] if details[i][k] != details[i + 1][k]} for i in range(4)]
    assert changed == [{"directory_sha256"}, {"routing_sha256"}, {"board_sha256"}, {"sla_sha256"}]
    # Another SLA policy file in use (make run's demo clocks) is a change of configuration too.
    monkeypatch.setattr(svc, "sla_file", folder / "demo" / "sla.yaml")
    deploys.deploy(svc, CLI, catalogue)
    assert logged(svc, "config_deployed")[-1].detail["sla_file"] == "demo/sla.yaml"


def test_a_refused_deploy_records_nothing(svc, catalogue):
    raw = copy.deepcopy(catalogue.workflows[0].raw)
    raw["states"][0]["label"] = "Changed without a new version"
    changed = Catalogue(workflows=[parse_workflow(raw, "changed")], directory=catalogue.directory,
                        routing=catalogue.routing, sla=catalogue.sla)
    with pytest.raises(WorkflowError):
        deploys.deploy(svc, CLI, changed)
    assert logged(svc) == []


# -- reading the log -------------------------------------------------------------------------------

def test_events_newest_first_filtered_and_paged(svc):
    make(svc)
    make(svc, "sup.ann", role="supervisor", centre="CNH")
    for _ in range(4):
        user_service.issue_token(svc, CLI, "nurse.jo")
    user_service.update_user(svc, "cli:other", "sup.ann", role="handler")

    everything = security.events(svc)
    assert [e.seq for e in everything.events] == list(range(7, 0, -1)) and everything.older is None
    assert [e.kind for e in security.events(svc, kind="user_created").events] == ["user_created"] * 2
    by_user = security.events(svc, user="nurse.jo")
    assert [e.kind for e in by_user.events] == ["token_issued"] * 4 + ["user_created"]
    assert [e.seq for e in security.events(svc, user="cli:other").events] == [7]  # the actor too

    first = security.events(svc, kind="token_issued", limit=3)
    assert [e.seq for e in first.events] == [6, 5, 4] and first.older == 4
    rest = security.events(svc, kind="token_issued", limit=3, before=first.older)
    assert [e.seq for e in rest.events] == [3] and rest.older is None
    with pytest.raises(ValueError):
        security.events(svc, kind="nonsense")
