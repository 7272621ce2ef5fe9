"""`flask --app ipoa professionals list | add | edit | deactivate | reactivate`: the same use cases as the
administrators' pages (service/professionals.py), each change a professional_changed security event by
"cli:<os user>", and a refused change named by its option with a non-zero exit and nothing stored."""
from __future__ import annotations

from datetime import UTC, datetime, time

import pytest
from sqlalchemy import select

from ipoa.adapters.orm import professionals, security_events
from ipoa.service import rotas
from ipoa.service.professionals import add_professional
from tests.conftest import make_user

MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def run(app, *args):
    return app.test_cli_runner().invoke(args=["professionals", *args])


def stored(svc) -> list[tuple]:
    with svc.uow() as uow:
        return [tuple(r) for r in uow.session.execute(
            select(professionals.c.name, professionals.c.mobile, professionals.c.service, professionals.c.user_id,
                   professionals.c.active).order_by(professionals.c.id))]


def events(svc) -> list:
    with svc.uow() as uow:
        return uow.session.execute(select(security_events).where(security_events.c.kind == "professional_changed")
                                   .order_by(security_events.c.seq)).all()


@pytest.fixture
def cli_user(monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "ops")
    return "cli:ops"


def test_add_with_a_user_then_list(app, svc, cli_user):
    nurse = make_user(svc, "nia", "professional", None)
    out = run(app, "add", "Nia Nurse", "--service", "DN", "--mobile", "07700 900201", "--user", "nia")
    assert out.exit_code == 0, out.output
    assert stored(svc) == [("Nia Nurse", "+447700900201", "DN", nurse.id, True)]
    (event,) = events(svc)
    assert (event.actor, event.detail) == (cli_user, {"change": "added", "service": "DN", "user": "nia"})
    add_professional(svc, name="Cal Crisis", service="CRT", mobile="07700 900202")
    listed = run(app, "list")
    assert listed.exit_code == 0
    lines = listed.output.splitlines()
    assert lines[0] == "id\tname\tservice\tmobile\tuser\tstate"
    assert [line.split("\t")[1:] for line in lines[1:]] == [
        ["Cal Crisis", "CRT", "+447700900202", "-", "active"], ["Nia Nurse", "DN", "+447700900201", "nia", "active"]]
    only_dn = run(app, "list", "--service", "DN").output
    assert "Nia Nurse" in only_dn and "Cal Crisis" not in only_dn
    bad = run(app, "list", "--service", "NOPE")
    assert bad.exit_code != 0 and "--service" in bad.output


@pytest.mark.parametrize(("args", "option", "words"), [
    (["--mobile", "0116 496 0000"], "--mobile", "valid UK mobile"),
    (["--mobile", "07700 900999"], "--mobile", "already registered"),
    (["--service", "NOPE"], "--service", "directory"),
    (["--user", "handler"], "--user", "role professional"),
    (["--user", "nobody"], "--user", "no user with that username"),
])
def test_add_refuses_bad_input_naming_the_option(app, svc, users, args, option, words):
    add_professional(svc, name="Taken", service="DN", mobile="07700 900999")
    before = stored(svc)
    base = {"--service": "DN", "--mobile": "07700 900201"}
    base.update(dict(zip(args[::2], args[1::2])))
    rest = [x for option_value in base.items() for x in option_value]
    out = run(app, "add", "Nia Nurse", *rest)
    assert out.exit_code != 0
    assert option in out.output and words in out.output, out.output
    assert stored(svc) == before and len(events(svc)) == 1


def test_edit_changes_the_fields_given_and_a_new_service_takes_them_off_the_old_rota(app, svc, users, cli_user):
    pid = add_professional(svc, name="Nia Nurse", service="DN", mobile="07700 900201")
    shift = rotas.add_pattern_shift(svc, "test", service="DN", weekday=0, start=time(8), end=time(20),
                                    members=[pid], duty_lead=pid)
    out = run(app, "edit", str(pid), "--mobile", "07700 900299", "--service", "CRT", "--user", "professional")
    assert out.exit_code == 0, out.output
    assert f"updated professional {pid}: mobile, service, user" in out.output
    assert stored(svc) == [("Nia Nurse", "+447700900299", "CRT", users["professional"].id, True)]
    assert rotas.on_duty_now(svc, "DN", MONDAY_10).professionals == ()
    event = events(svc)[-1]
    assert event.actor == cli_user and event.detail == {
        "change": "edited", "fields": ["mobile", "service", "user"], "service": "CRT", "from_service": "DN",
        "removed_from_shifts": [shift], "user": "professional"}
    out = run(app, "edit", str(pid), "--unlink")
    assert out.exit_code == 0 and stored(svc)[0][3] is None
    out = run(app, "edit", str(pid), "--name", "Nia Nurse")
    assert out.exit_code == 0 and "nothing changed" in out.output


@pytest.mark.parametrize(("args", "words"), [
    (["--mobile", "not a number"], "--mobile"),
    (["--service", "NOPE"], "--service"),
    (["--user", "handler"], "--user"),
    (["--name", ""], "--name"),
    (["--name", "x" * 500], "--name"),
    (["--user", "professional", "--unlink"], "not both"),
    ([], "say what to change"),
])
def test_edit_refuses_bad_input_naming_the_option(app, svc, users, args, words):
    pid = add_professional(svc, name="Nia Nurse", service="DN", mobile="07700 900201")
    before = stored(svc)
    out = run(app, "edit", str(pid), *args)
    assert out.exit_code != 0 and words in out.output, out.output
    assert stored(svc) == before and len(events(svc)) == 1


def test_an_unknown_id_is_named(app, svc):
    for command in (["edit", "999999", "--name", "X"], ["deactivate", "999999"], ["reactivate", "999999"]):
        out = run(app, *command)
        assert out.exit_code != 0 and "no professional has the id 999999" in out.output, out.output


def test_deactivate_lists_the_shifts_and_reactivate(app, svc, cli_user):
    pid = add_professional(svc, name="Nia Nurse", service="DN", mobile="07700 900201")
    shift = rotas.add_pattern_shift(svc, "test", service="DN", weekday=0, start=time(8), end=time(20),
                                    members=[pid], label="day")
    assert [p.id for p in rotas.on_duty_now(svc, "DN", MONDAY_10).professionals] == [pid]
    out = run(app, "deactivate", str(pid))
    assert out.exit_code == 0, out.output
    assert f"taken off shift {shift}: DN day Mondays 08:00-20:00" in out.output
    # Nobody else works Mondays: the operator is warned of the gaps of the week ahead it opens.
    assert ("warning: This leaves Community (district) nursing (DN) with nobody on duty while it is open: "
            "Mon 23 Nov 10:00 to Mon 23 Nov 20:00, 10 hours; Mon 30 Nov 08:00 to Mon 30 Nov 10:00, 2 hours. "
            "Arrange cover on its rota.") in out.output
    assert rotas.on_duty_now(svc, "DN", MONDAY_10).professionals == ()
    assert stored(svc)[0][4] is False
    again = run(app, "deactivate", str(pid)).output
    assert "already deactivated" in again and "warning" not in again
    assert run(app, "list").output.strip() == "no professionals"  # the active only, without --all
    assert "deactivated" in run(app, "list", "--all").output
    out = run(app, "reactivate", str(pid))
    assert out.exit_code == 0 and "reactivated" in out.output
    assert "already active" in run(app, "reactivate", str(pid)).output
    assert [(e.actor, e.detail["change"]) for e in events(svc)] == [
        ("system", "added"), (cli_user, "deactivated"), (cli_user, "reactivated")]
