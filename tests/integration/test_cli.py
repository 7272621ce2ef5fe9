"""The operators' CLI, whose command names automation relies on."""
from __future__ import annotations

import shutil

from ipoa.config import REPO_ROOT

PW = "long-enough-pw"


def run(app, *args, input=None):
    return app.test_cli_runner().invoke(args=list(args), input=input, catch_exceptions=False)


def test_init_is_idempotent(app):
    first = run(app, "init")
    second = run(app, "init")
    assert first.exit_code == 0 and second.exit_code == 0
    assert "7 centres, 12 services, 11 localities" in second.output
    assert "deployed" not in second.output  # nothing new to deploy the second time


def test_users_create_and_token_authenticate_the_api(app, svc):
    out = run(app, "users", "create", "nurse.jo", "--role", "handler", "--centre", "CHS", "--password-stdin",
              input=PW + "\n")
    assert out.exit_code == 0, out.output
    again = app.test_cli_runner().invoke(args=["users", "create", "nurse.jo", "--role", "handler",
                                               "--centre", "CHS", "--password-stdin"], input=PW + "\n")
    assert again.exit_code != 0 and "already exists" in again.output
    token = run(app, "users", "token", "nurse.jo").output.strip().splitlines()[-1]
    resp = app.test_client().get("/api/v1/queues", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200


def test_users_create_rejects_bad_input(app):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["users", "create", "x", "--role", "handler", "--centre", "NOPE",
                               "--password-stdin"], input=PW + "\n").exit_code != 0
    assert runner.invoke(args=["users", "create", "x", "--role", "handler", "--password-stdin"],
                         input=PW + "\n").exit_code != 0
    assert runner.invoke(args=["users", "create", "x", "--role", "wizard", "--centre", "CNH",
                               "--password-stdin"], input=PW + "\n").exit_code != 0


def test_seed_demo_adds_users_for_every_role_and_calls_once(app, svc):
    out = run(app, "seed-demo")
    assert out.exit_code == 0
    for role in ("handler", "supervisor", "professional", "admin"):
        assert f"({role}" in out.output
    assert out.output.count("demo call ") == 7
    again = run(app, "seed-demo")
    assert "demo calls already present (7)" in again.output
    # One text the carrier reported undelivered, for the supervisor's exceptions panel; no identifier.
    from sqlalchemy import select

    from ipoa.adapters.orm import sms_messages
    from ipoa.service import dashboard

    with svc.uow() as uow:
        (text,) = uow.session.execute(select(sms_messages).where(sms_messages.c.status == "undelivered")).all()
    assert text.error_code == 30003 and "Mary" not in text.body and "LE15" not in text.body
    assert [t.call_ref for t in dashboard.exceptions(svc).failed] == [text.call_ref]


def test_workflows_check_and_diagram(app):
    out = run(app, "workflows", "check")
    assert out.exit_code == 0 and "call v1" in out.output and "referral v1" in out.output
    diagram = run(app, "workflows", "diagram", "call").output
    assert diagram.startswith("stateDiagram-v2")
    assert "in_triage --> referred : refer" in diagram


def test_workflows_check_names_the_file_and_the_problem(app, tmp_path):
    folder = tmp_path / "workflows"
    shutil.copytree(REPO_ROOT / "workflows", folder)
    path = folder / "call.workflow.yaml"
    path.write_text(path.read_text().replace("dest: closed\n", "dest: shut\n", 1))
    app.extensions["ipoa"].workflows_dir = folder
    try:
        out = app.test_cli_runner().invoke(args=["workflows", "check"])
    finally:
        app.extensions["ipoa"].workflows_dir = REPO_ROOT / "workflows"
    assert out.exit_code == 1
    assert "call.workflow.yaml" in out.output and "unknown destination state 'shut'" in out.output


def _user(svc, username: str):
    from sqlalchemy import select

    from ipoa.users import User

    with svc.uow() as uow:
        return uow.session.scalars(select(User).where(User.username == username)).first()


def test_users_create_with_a_mobile_stores_it_in_e164(app, svc):
    out = run(app, "users", "create", "sup.cnh", "--role", "supervisor", "--centre", "CNH",
              "--password-stdin", "--mobile", "07700 900123", input=PW + "\n")
    assert out.exit_code == 0, out.output
    assert "+447700900123" in out.output
    assert _user(svc, "sup.cnh").mobile == "+447700900123"
    # Optional: without one, none is stored.
    assert run(app, "users", "create", "sup2", "--role", "supervisor", "--centre", "CNH",
               "--password-stdin", input=PW + "\n").exit_code == 0
    assert _user(svc, "sup2").mobile is None


def test_users_create_refuses_a_number_that_is_not_a_uk_mobile(app, svc):
    runner = app.test_cli_runner()
    for bad in ("0116 496 0000", "not a number", "+33 6 12 34 56 78", "07700"):  # landline, junk, French, short
        out = runner.invoke(args=["users", "create", "sup.bad", "--role", "supervisor", "--centre", "CNH",
                                  "--password-stdin", "--mobile", bad], input=PW + "\n")
        assert out.exit_code != 0, bad
        assert "--mobile" in out.output and "not a valid UK mobile" in out.output, out.output
    assert _user(svc, "sup.bad") is None


def test_seed_demo_gives_the_supervisor_a_fiction_range_mobile(app, svc):
    out = run(app, "seed-demo")
    assert out.exit_code == 0
    mobile = _user(svc, "supervisor").mobile
    assert mobile.startswith("+447700900") and 0 <= int(mobile[-3:]) <= 999  # Ofcom's drama range
    assert _user(svc, "handler").mobile is None


def test_seed_demo_adds_the_mobile_to_a_demo_supervisor_seeded_before(app, svc):
    assert run(app, "users", "create", "supervisor", "--role", "supervisor", "--centre", "CNH",
               "--password-stdin", input=PW + "\n").exit_code == 0
    out = run(app, "seed-demo")
    assert "demo user supervisor now has mobile +447700900301" in out.output
    assert _user(svc, "supervisor").mobile == "+447700900301"


def test_the_demo_shows_a_consent_refusal_and_a_break_glass_access(app, svc):
    """make run's demo: a call whose person refused consent, one shared on a lawful basis, and one CNH call
    the ASC handler opened by break-glass, waiting for the CNH supervisor's review."""
    from sqlalchemy import select

    from ipoa.adapters.orm import access_events, break_glass_grants, calls, referrals
    from ipoa.service import records
    from ipoa.service.calls import Actor

    out = run(app, "seed-demo")
    assert "demo break-glass: handler.asc opened" in out.output
    with svc.uow() as uow:
        s = uow.session
        assert s.scalar(select(calls.c.ref).where(calls.c.consent == "refused")) is not None
        assert s.scalar(select(referrals.c.sharing_basis).where(referrals.c.sharing_basis == "safeguarding"))
        (grant,) = s.execute(select(break_glass_grants)).all()
        (event,) = s.execute(select(access_events)).all()
    assert (grant.username, grant.centre, grant.reason) == ("handler.asc", "CNH", "transfer_in_progress")
    assert (event.purpose, event.grant_id) == ("break_glass", grant.id)
    (listed,) = records.break_glass_reviews(svc, Actor("supervisor", "supervisor", "CNH"))
    assert listed.call_ref == grant.call_ref


def test_professionals_add_has_no_off_duty_flag_and_a_rota_puts_them_on_duty(app, svc):
    from datetime import UTC, datetime

    from ipoa.service import rotas

    out = run(app, "professionals", "add", "Nia Nurse", "--service", "DN", "--mobile", "07700 900201")
    assert out.exit_code == 0 and "on duty when a rota says so" in out.output
    refused = app.test_cli_runner().invoke(args=["professionals", "add", "Ned", "--service", "DN", "--mobile",
                                                 "07700 900202", "--off-duty"])
    assert refused.exit_code != 0 and "No such option '--off-duty'" in refused.output
    assert rotas.on_duty_now(svc, "DN", datetime(2026, 12, 5, 10, tzinfo=UTC)).professionals == ()


def test_rota_import_reports_numbered_lines_and_imports_nothing_then_exports(app, svc, clock, tmp_path):
    from datetime import UTC, datetime

    from ipoa.service.professionals import add_professional

    clock.set(datetime(2026, 12, 3, 10, tzinfo=UTC))  # the export lists the week from this Thursday

    add_professional(svc, name="Nia Nurse", service="DN", mobile="07700 900201")
    bad = tmp_path / "bad.csv"
    bad.write_text("service,date,start,end,professional,role\n"
                   "DN,2026-12-05,08:00,20:00,07700 900201,duty_lead\n"
                   "DN,2026-12-31,25:00,20:00,07700 900201,member\n", encoding="utf-8")
    out = app.test_cli_runner().invoke(args=["rota", "import", str(bad)])
    assert out.exit_code != 0
    assert "Line 3: the start time '25:00' is not a time of day; use 24-hour HH:MM" in out.output
    assert "nothing imported: 1 problem(s)" in out.output
    assert run(app, "rota", "export", "--service", "DN").output.splitlines() == [
        "service,date,start,end,professional,role"]
    good = tmp_path / "good.csv"
    good.write_text("\ufeffservice,date,start,end,professional,role\n"
                    "DN,2026-12-05,08:00,20:00,07700 900201,member\n"
                    "DN,2026-12-05,08:00,20:00,07700 900201,duty_lead\n", encoding="utf-8")
    out = run(app, "rota", "import", str(good))
    assert out.exit_code == 0 and "imported 1 shift(s)" in out.output
    assert "warning" not in out.output  # it covers time, it opens no gap
    exported = run(app, "rota", "export", "--service", "DN").output.splitlines()
    assert exported[1:] == ["DN,2026-12-05,08:00,20:00,07700 900201,member",
                            "DN,2026-12-05,08:00,20:00,07700 900201,duty_lead"]
    # A file that shortens Saturday's shift replaces it and leaves 12:00-20:00 uncovered: a warning.
    shorter = tmp_path / "shorter.csv"
    shorter.write_text("service,date,start,end,professional,role\n"
                       "DN,2026-12-05,08:00,12:00,07700 900201,member\n"
                       "DN,2026-12-05,08:00,12:00,07700 900201,duty_lead\n", encoding="utf-8")
    out = run(app, "rota", "import", str(shorter))
    assert out.exit_code == 0 and "imported 1 shift(s)" in out.output
    assert ("warning: This leaves Community (district) nursing (DN) with nobody on duty while it is open: "
            "Sat 5 Dec 12:00 to Sat 5 Dec 20:00, 8 hours. Arrange cover on its rota.") in out.output
    unknown = app.test_cli_runner().invoke(args=["rota", "export", "--service", "NOPE"])
    assert unknown.exit_code != 0 and "no service NOPE" in unknown.output


def test_the_demo_rota_texts_the_day_nurse_by_day_and_the_night_nurse_by_night(app, svc, clock):
    from datetime import UTC, datetime

    from ipoa.service import rotas

    clock.set(datetime(2026, 12, 3, 10, tzinfo=UTC))  # a Thursday, 10:00 in London
    out = run(app, "seed-demo")
    assert "demo rota for DN: day 08:00-20:00 and night 20:00-08:00, every day" in out.output
    assert "demo cover: DN night of Sat 05 Dec worked by the day nurse" in out.output
    assert [p.name for p in rotas.on_duty_now(svc, "DN").professionals] == ["Nia Nurse (DN)"]
    assert [p.name for p in rotas.on_duty_now(svc, "CRT").duty_leads] == ["Carl Paramedic (CRT)"]
    night = rotas.on_duty_now(svc, "DN", datetime(2026, 12, 3, 22, tzinfo=UTC))
    assert [p.name for p in night.professionals] == ["Nell Nights (DN)"]
    covered = rotas.on_duty_now(svc, "DN", datetime(2026, 12, 5, 22, tzinfo=UTC))
    assert [p.name for p in covered.professionals] == ["Nia Nurse (DN)"]
    assert "demo rota for" not in run(app, "seed-demo").output  # once
