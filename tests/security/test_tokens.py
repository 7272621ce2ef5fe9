"""API tokens (issue item 4): "API tokens never expire and can only be revoked in SQL". Tokens are now
named, expire (90 days, TOKEN_DAYS, --days), are shown once, listed and revoked from the CLI; an expired
token gets a 401 that says so; last_used_at is written at most once a minute per token."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from ipoa.adapters.orm import api_tokens, security_events
from ipoa.service import security
from ipoa.service import users as user_service

CLI = "cli:ops"
PW = "vivid-otter-lantern-42"


@pytest.fixture(autouse=True)
def os_user(monkeypatch):
    monkeypatch.setattr(security.getpass, "getuser", lambda: "ops")


@pytest.fixture
def nurse(app, svc):
    out = run(app, "users", "create", "nurse.jo", "--role", "handler", "--centre", "CHS", "--password-stdin",
              input=PW + "\n")
    assert out.exit_code == 0, out.output
    return "nurse.jo"


def run(app, *args, input=None):
    return app.test_cli_runner().invoke(args=list(args), input=input)


def api_get(app, token):
    return app.test_client().get("/api/v1/queues", headers={"Authorization": f"Bearer {token}"})


def logged(svc, kind) -> list:
    with svc.uow() as uow:
        return uow.session.execute(select(security_events).where(security_events.c.kind == kind)
                                   .order_by(security_events.c.seq)).all()


def token_row(svc, token_id):
    with svc.uow() as uow:
        return uow.session.execute(select(api_tokens).where(api_tokens.c.id == token_id)).one()


def issue(app, *args) -> tuple[int, str, str]:
    out = run(app, "tokens", "issue", *args)
    assert out.exit_code == 0, out.output
    lines = out.output.strip().splitlines()
    token_id = int(lines[0].split()[2])
    return token_id, lines[-1], lines[0]


def test_a_token_is_named_expires_and_is_shown_once(app, svc, clock, nurse):
    token_id, token, first = issue(app, nurse, "--name", "ambulance-feed", "--days", "5")
    assert first.startswith(f"API token {token_id} for nurse.jo, named 'ambulance-feed', "
                            "expires 2026-11-28 10:00:00 UTC")
    assert token.startswith("ipoa_") and token not in first
    row = token_row(svc, token_id)
    assert (row.name, row.expires_at) == ("ambulance-feed", clock.now() + timedelta(days=5))
    assert row.token_hash != token and token not in json.dumps([str(v) for v in row])
    (event_,) = logged(svc, "token_issued")
    assert event_.detail == {"token_id": token_id, "name": "ambulance-feed", "days": 5,
                             "expires_at": (clock.now() + timedelta(days=5)).isoformat()}
    assert token not in json.dumps(event_.detail)

    assert api_get(app, token).status_code == 200
    clock.advance(days=5)
    expired = api_get(app, token)
    assert expired.status_code == 401
    body = expired.get_json()["error"]
    assert body["code"] == "token_expired" and "expired on 2026-11-28 10:00 UTC" in body["message"]
    assert expired.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_default_lifetime_is_90_days_or_token_days(app, svc, clock, nurse):
    token_id, token, _ = issue(app, nurse, "--name", "default")
    assert token_row(svc, token_id).expires_at == clock.now() + timedelta(days=90)
    app.config["TOKEN_DAYS"] = 30
    other_id, _, _ = issue(app, nurse, "--name", "thirty")
    assert token_row(svc, other_id).expires_at == clock.now() + timedelta(days=30)
    clock.advance(days=89, hours=23)
    assert api_get(app, token).status_code == 200
    clock.advance(hours=1)
    assert api_get(app, token).status_code == 401


def test_refusals_say_why(app, svc, nurse):
    no_name = run(app, "tokens", "issue", nurse)
    assert no_name.exit_code == 2 and "--name" in no_name.output
    for days in ("0", "-3", "400"):
        out = run(app, "tokens", "issue", nurse, "--name", "x", "--days", days)
        assert out.exit_code == 2 and "--days" in out.output and "1 to 366 days" in out.output
    bad_name = run(app, "tokens", "issue", nurse, "--name", "a\nb")
    assert bad_name.exit_code == 2 and "--name" in bad_name.output
    nobody = run(app, "tokens", "issue", "nobody", "--name", "x")
    assert nobody.exit_code == 1 and "no user nobody" in nobody.output
    assert logged(svc, "token_issued") == []


def test_users_token_is_still_an_alias_with_the_token_on_the_last_line(app, svc, nurse):
    out = run(app, "users", "token", nurse)
    assert out.exit_code == 0, out.output
    token = out.output.strip().splitlines()[-1]
    assert api_get(app, token).status_code == 200
    (event_,) = logged(svc, "token_issued")
    assert event_.detail["name"] == "unnamed" and event_.detail["days"] == 90
    named = run(app, "users", "token", nurse, "--name", "script", "--days", "7").output.strip().splitlines()
    assert "named 'script'" in named[0] and api_get(app, named[-1]).status_code == 200


def test_tokens_are_listed_and_revoked_from_the_cli_not_sql(app, svc, clock, nurse):
    a, ta, _ = issue(app, nurse, "--name", "feed")
    b, tb, _ = issue(app, nurse, "--name", "feed")
    c, tc, _ = issue(app, nurse, "--name", "short", "--days", "1")
    api_get(app, ta)
    clock.advance(days=1)
    listing = run(app, "tokens", "list").output.splitlines()
    assert listing[0] == "id\tuser\tname\tissued\texpires\tlast used\tstate"
    rows = [line.split("\t") for line in listing[1:]]
    assert [r[0] for r in rows] == [str(a), str(b)]  # the expired one is not in force
    assert rows[0][1:3] == ["nurse.jo", "feed"] and rows[0][5] == "2026-11-23 10:00:00 UTC" and rows[1][5] == "-"
    everything = run(app, "tokens", "list", nurse, "--all").output.splitlines()[1:]
    assert [line.split("\t")[-1] for line in everything] == ["in force", "in force", "expired"]
    assert run(app, "users", "tokens", nurse).output.splitlines()[1:] == everything

    out = run(app, "tokens", "revoke", str(a))
    assert out.exit_code == 0 and f"revoked API token {a} of nurse.jo" in out.output
    assert api_get(app, ta).status_code == 401 and api_get(app, tb).status_code == 200
    out = run(app, "tokens", "revoke", "--user", nurse, "--name", "feed")
    assert f"revoked 1 API token(s) named 'feed' of nurse.jo: {b}" in out.output
    assert api_get(app, tb).status_code == 401
    assert run(app, "tokens", "revoke", "--user", nurse).output.strip() == f"revoked 1 API token(s) of nurse.jo: {c}"
    assert "no API tokens in force" in run(app, "tokens", "list", nurse).output
    assert run(app, "tokens", "revoke", "--name", "feed").exit_code == 2
    assert [(e.detail["token_id"], e.detail["name"]) for e in logged(svc, "token_revoked")] == [
        (a, "feed"), (b, "feed"), (c, "short")]
    for token in (ta, tb, tc):
        assert token not in run(app, "security", "events", "--limit", "1000").output


def test_a_deactivated_users_tokens_are_refused_until_reactivated(app, svc, nurse):
    _, token, _ = issue(app, nurse, "--name", "feed")
    run(app, "users", "deactivate", nurse)
    assert api_get(app, token).status_code == 401
    run(app, "users", "reactivate", nurse)
    assert api_get(app, token).status_code == 200


def test_last_used_is_written_at_most_once_a_minute(app, svc, clock, nurse):
    token_id, token, _ = issue(app, nurse, "--name", "feed")
    assert token_row(svc, token_id).last_used_at is None
    writes = []

    def count(conn, cursor, statement, *_):
        if statement.lstrip().upper().startswith("UPDATE API_TOKENS"):
            writes.append(statement)

    event.listen(svc.db, "before_cursor_execute", count)
    try:
        assert api_get(app, token).status_code == 200
        first = clock.now()
        for _ in range(5):
            clock.advance(seconds=10)
            assert api_get(app, token).status_code == 200
        assert token_row(svc, token_id).last_used_at == first and len(writes) == 1
        clock.advance(seconds=10)  # a minute since it was written
        assert api_get(app, token).status_code == 200
        assert token_row(svc, token_id).last_used_at == clock.now() and len(writes) == 2
    finally:
        event.remove(svc.db, "before_cursor_execute", count)


def test_the_service_keeps_issue_token_unpackable(svc, nurse):
    token_id, token = user_service.issue_token(svc, CLI, nurse, name="pair")
    assert isinstance(token_id, int) and token.startswith("ipoa_")
    with pytest.raises(user_service.UserError, match="1 to 366 days"):
        user_service.issue_token(svc, CLI, nurse, days=0)
