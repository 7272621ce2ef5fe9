"""The operators' commands for users, tokens and the security log, through Flask's CLI runner: what they
print, what they change, and the security events they leave (actor "cli:<os user>")."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from ipoa.adapters import audit_store
from ipoa.adapters.orm import security_events
from ipoa.service import security
from ipoa.users import User

PW = "long-enough-pw"


@pytest.fixture(autouse=True)
def os_user(monkeypatch):
    monkeypatch.setattr(security.getpass, "getuser", lambda: "ops")


def run(app, *args, input=None):
    return app.test_cli_runner().invoke(args=list(args), input=input, catch_exceptions=False)


def events(svc, kind=None) -> list:
    stmt = select(security_events).order_by(security_events.c.seq)
    if kind:
        stmt = stmt.where(security_events.c.kind == kind)
    with svc.uow() as uow:
        return uow.session.execute(stmt).all()


def user(svc, username):
    with svc.uow() as uow:
        return uow.session.scalars(select(User).where(User.username == username)).first()


def api_status(app, token) -> int:
    return app.test_client().get("/api/v1/queues", headers={"Authorization": f"Bearer {token}"}).status_code


def create(app, username="nurse.jo", *extra):
    out = run(app, "users", "create", username, "--role", "handler", "--centre", "CHS", "--password-stdin", *extra,
              input=PW + "\n")
    assert out.exit_code == 0, out.output
    return out


def test_create_prompts_for_the_password_when_it_is_not_given(app, svc):
    out = run(app, "users", "create", "nurse.jo", "--role", "handler", "--centre", "CHS",
              input=f"{PW}\n{PW}\n")
    assert out.exit_code == 0, out.output
    assert "Password" in out.output and "Repeat for confirmation" in out.output and PW not in out.output
    assert user(svc, "nurse.jo").check_password(PW)
    (event,) = events(svc)
    assert (event.kind, event.actor, event.subject, event.detail) == (
        "user_created", "cli:ops", "nurse.jo", {"role": "handler", "centre": "CHS"})


def test_create_with_passwords_that_do_not_match_creates_nobody(app, svc):
    out = app.test_cli_runner().invoke(args=["users", "create", "nurse.jo", "--role", "handler", "--centre", "CHS"],
                                       input=f"{PW}\nsomething-else\n")
    assert out.exit_code != 0 and "do not match" in out.output
    assert user(svc, "nurse.jo") is None and events(svc) == []


def test_create_refuses_a_short_password_without_echoing_it(app, svc):
    out = app.test_cli_runner().invoke(args=["users", "create", "nurse.jo", "--role", "handler", "--centre", "CHS",
                                             "--password-stdin"], input="short-pw\n")
    assert out.exit_code != 0 and "password refused" in out.output and "at least 12" in out.output
    assert "short-pw" not in out.output
    assert events(svc) == []


def test_update_changes_the_fields_and_logs_names_not_values(app, svc):
    create(app)
    out = run(app, "users", "update", "nurse.jo", "--name", "Jo Nurse", "--mobile", "07700 900123",
              "--role", "supervisor")
    assert out.exit_code == 0, out.output
    assert "updated nurse.jo: display name, mobile, role" in out.output
    assert [(e.kind, e.detail) for e in events(svc)[1:]] == [
        ("user_changed", {"fields": ["display_name", "mobile"]}),
        ("role_changed", {"from": "handler", "to": "supervisor"})]
    assert user(svc, "nurse.jo").mobile == "+447700900123"
    # '' removes the mobile.
    assert "updated nurse.jo: mobile" in run(app, "users", "update", "nurse.jo", "--mobile", "").output
    assert user(svc, "nurse.jo").mobile is None
    assert "nothing changed" in run(app, "users", "update", "nurse.jo", "--role", "supervisor").output


def test_update_refusals_say_why(app, svc):
    create(app)
    runner = app.test_cli_runner()
    nothing = runner.invoke(args=["users", "update", "nurse.jo"])
    assert nothing.exit_code == 2 and "say what to change" in nothing.output
    no_centre = runner.invoke(args=["users", "update", "nurse.jo", "--centre", ""])
    assert no_centre.exit_code != 0 and "--centre" in no_centre.output and "need a home centre" in no_centre.output
    nobody = runner.invoke(args=["users", "update", "nobody", "--name", "X"])
    assert nobody.exit_code == 1 and "no user nobody" in nobody.output
    assert len(events(svc)) == 1


def test_deactivate_stops_the_users_tokens_and_reactivate_restores_them(app, svc):
    create(app)
    token = run(app, "users", "token", "nurse.jo").output.strip().splitlines()[-1]
    assert api_status(app, token) == 200
    out = run(app, "users", "deactivate", "nurse.jo")
    assert "deactivated nurse.jo" in out.output and "tokens revoke --user nurse.jo" in out.output
    assert api_status(app, token) == 401
    assert "already deactivated" in run(app, "users", "deactivate", "nurse.jo").output
    assert "reactivated nurse.jo" in run(app, "users", "reactivate", "nurse.jo").output
    assert api_status(app, token) == 200
    assert [(e.kind, e.actor, e.subject) for e in events(svc)[2:]] == [
        ("user_deactivated", "cli:ops", "nurse.jo"), ("user_reactivated", "cli:ops", "nurse.jo")]


def test_password_is_prompted_for_and_logged_without_it(app, svc):
    create(app)
    out = run(app, "users", "password", "nurse.jo", input="a-new-password\na-new-password\n")
    assert out.exit_code == 0 and "password changed for nurse.jo; their sessions have ended" in out.output
    assert "a-new-password" not in out.output
    assert user(svc, "nurse.jo").check_password("a-new-password")
    (event,) = events(svc, "password_changed")
    assert (event.actor, event.subject, event.detail) == ("cli:ops", "nurse.jo", {})


def test_tokens_are_issued_listed_and_revoked_by_id_or_all_at_once(app, svc):
    create(app)
    issued = [run(app, "users", "token", "nurse.jo").output.strip().splitlines() for _ in range(3)]
    tokens = [lines[-1] for lines in issued]  # the token is still the last line
    assert all(lines[0].startswith("API token ") for lines in issued)
    ids = [e.detail["token_id"] for e in events(svc, "token_issued")]
    assert [f"API token {i} for nurse.jo" in lines[0] for i, lines in zip(ids, issued)] == [True] * 3
    listing = run(app, "users", "tokens", "nurse.jo").output.splitlines()
    assert listing[0] == "id\tuser\tname\tissued\texpires\tlast used\tstate"
    assert [line.split("\t")[0] for line in listing[1:]] == [str(i) for i in ids]
    assert all(line.endswith("\tin force") for line in listing[1:])

    out = run(app, "users", "revoke-token", str(ids[0]))
    assert f"revoked API token {ids[0]} of nurse.jo" in out.output
    assert api_status(app, tokens[0]) == 401 and api_status(app, tokens[1]) == 200
    out = run(app, "users", "revoke-token", "--user", "nurse.jo")
    assert f"revoked 2 API token(s) of nurse.jo: {ids[1]}, {ids[2]}" in out.output
    assert [api_status(app, t) for t in tokens] == [401, 401, 401]
    assert "in force" not in run(app, "users", "tokens", "nurse.jo").output
    assert [e.detail["token_id"] for e in events(svc, "token_revoked")] == ids
    for t in tokens:
        assert not any(t in str(v) for e in events(svc) for v in e._mapping.values())


def test_revoke_token_needs_an_id_or_a_user_but_not_both(app, svc):
    create(app)
    runner = app.test_cli_runner()
    for args in ([], ["1", "--user", "nurse.jo"]):
        out = runner.invoke(args=["users", "revoke-token", *args])
        assert out.exit_code == 2 and "give a token id" in out.output
    out = runner.invoke(args=["users", "revoke-token", "999"])
    assert out.exit_code == 1 and "no API token 999" in out.output


def test_security_events_prints_newest_first_and_filters(app, svc):
    create(app)
    create(app, "nurse.al")
    run(app, "users", "token", "nurse.jo")
    out = run(app, "security", "events")
    lines = out.output.splitlines()
    assert lines[0] == "seq\tat\tkind\tactor\tsubject\tclient\tdetail"
    rows = [line.split("\t") for line in lines[1:]]
    assert [r[0] for r in rows] == ["3", "2", "1"]
    assert rows[0][2:5] == ["token_issued", "cli:ops", "nurse.jo"] and "token id: " in rows[0][6]
    assert rows[2][1] == "2026-11-23 10:00:00 UTC" and rows[2][6] == "centre: CHS; role: handler"
    assert len(run(app, "security", "events", "--kind", "user_created").output.splitlines()) == 3
    assert [line.split("\t")[0] for line in
            run(app, "security", "events", "--user", "nurse.al").output.splitlines()[1:]] == ["2"]
    assert len(run(app, "security", "events", "--limit", "1").output.splitlines()) == 2
    assert "no security events match" in run(app, "security", "events", "--kind", "sign_in").output
    bad = app.test_cli_runner().invoke(args=["security", "events", "--kind", "nonsense"])
    assert bad.exit_code == 2


def test_init_records_the_configuration_once(app, svc):
    assert run(app, "init").exit_code == 0
    assert run(app, "init").exit_code == 0
    (event,) = events(svc)
    assert (event.kind, event.actor) == ("config_deployed", "cli:ops")
    with svc.uow() as uow:
        assert audit_store.verify_chain(uow.session, "security") == (None, 1)
