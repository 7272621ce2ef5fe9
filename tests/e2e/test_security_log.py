"""Sign-in, failed sign-in and sign-out in the security log, through the test client; what deactivating
a user and revoking a token do to their session and their API calls; the administrators' page."""
from __future__ import annotations

import html
import json
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from ipoa.adapters import audit_store
from ipoa.adapters.orm import security_events
from ipoa.service import users as user_service
from tests.conftest import PASSWORD, csrf_token, sign_in
from tests.helpers.web import tables

CLI = "cli:ops"


def logged(svc, kind=None) -> list:
    stmt = select(security_events).order_by(security_events.c.seq)
    if kind:
        stmt = stmt.where(security_events.c.kind == kind)
    with svc.uow() as uow:
        return uow.session.execute(stmt).all()


def chain_ok(svc) -> int:
    with svc.uow() as uow:
        problem, count = audit_store.verify_chain(uow.session, "security")
    assert problem is None, str(problem)
    return count


def text(resp) -> str:
    return html.unescape(resp.get_data(as_text=True))


def sign_out(client):
    return client.post("/logout", data={"csrf_token": csrf_token(client, "/no-access")})


def signed_out(resp) -> bool:
    return resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/login"


@pytest.fixture
def broken_log(monkeypatch):
    """The security chain cannot be written (a locked head, a full disk, a lost connection)."""

    def broken(session, events):
        raise RuntimeError("the security log is unwritable")

    monkeypatch.setattr(audit_store, "append", broken)


# -- sign-in and sign-out --------------------------------------------------------------------------

def test_sign_in_and_sign_out_are_recorded_with_the_client_address(client, users, svc):
    assert sign_in(client, "handler").status_code == 302
    assert sign_out(client).status_code == 302
    assert [(e.kind, e.actor, e.subject, e.client, e.detail) for e in logged(svc)] == [
        ("sign_in", "handler", None, "127.0.0.1", {}), ("sign_out", "handler", None, "127.0.0.1", {})]
    assert logged(svc)[0].at == svc.clock.now()
    assert chain_ok(svc) == 2


def test_failed_sign_ins_record_the_username_never_the_password_nor_whether_it_exists(client, users, svc):
    secret = "Tr0ub4dor&3-never-stored"
    assert sign_in(client, "handler", secret).status_code == 401          # a user, the wrong password
    assert sign_in(client, "no.such.person", secret).status_code == 401   # nobody by that name
    user_service.set_active(svc, CLI, "supervisor", False)
    assert sign_in(client, "supervisor", PASSWORD).status_code == 401     # right password, deactivated
    failed = logged(svc, "sign_in_failed")
    assert [(e.actor, e.client, e.detail) for e in failed] == [
        ("handler", "127.0.0.1", {"reason": "bad_credentials"}),
        ("no.such.person", "127.0.0.1", {"reason": "bad_credentials"}),
        ("supervisor", "127.0.0.1", {"reason": "bad_credentials"})]
    for row in logged(svc):  # every column of every event, the detail as stored JSON
        for value in row._mapping.values():
            stored = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
            assert secret not in stored and PASSWORD not in stored
    chain_ok(svc)


def test_a_failed_sign_in_strips_control_characters_from_the_username(client, users, svc):
    token = csrf_token(client, "/login")
    resp = client.post("/login", data={"username": "mallory\n2026-11-23 sign_in admin\x1b[0m",
                                       "password": "whatever-it-is", "csrf_token": token})
    assert resp.status_code == 401
    (event,) = logged(svc, "sign_in_failed")
    assert event.actor == "(not a username)"  # a space: no username has one, and no line is forged
    token = csrf_token(client, "/login")
    client.post("/login", data={"username": "mallory\x1b[0m", "password": "whatever-it-is", "csrf_token": token})
    assert logged(svc, "sign_in_failed")[-1].actor == "(not a username)"  # "[" is in no username
    token = csrf_token(client, "/login")
    client.post("/login", data={"username": "\x07\x00", "password": "whatever-it-is", "csrf_token": token})
    assert logged(svc, "sign_in_failed")[-1].actor == "(blank)"


@pytest.mark.parametrize("typed, recorded", [
    ("Zebedee Quixotically 999 000 0034 LE15 6XY", "(not a username)"),  # typed on after a timeout mid-call
    ("9990000034", "[nhs-number]"), ("07700900123", "[phone]"), ("LE156XY", "[postcode]"),
    ("19/07/1931", "(not a username)"), ("handler.typo", "handler.typo"),
    ("Tr0ub4dor&3xyzzy!", "(not a username)"),  # a password typed into the username box
    ("j_o'neil", "j_o'neil"), ("jane.smith@nhs.net", "jane.smith@nhs.net"), ("Hándler-2", "Hándler-2"),
])
def test_a_patients_details_typed_as_a_username_are_never_kept(client, users, svc, typed, recorded):
    token = csrf_token(client, "/login")
    client.post("/login", data={"username": typed, "password": "whatever-it-is", "csrf_token": token})
    assert logged(svc, "sign_in_failed")[-1].actor == recorded


def test_sign_in_fails_closed_when_it_cannot_be_recorded(client, users, svc, broken_log):
    resp = sign_in(client, "handler")
    assert resp.status_code == 503 and "You have not been signed in" in text(resp)
    assert signed_out(client.get("/queue"))
    # A wrong password gets the same answer, so the error page does not tell a guesser they were right.
    wrong = sign_in(client, "handler", "not-the-password")
    assert wrong.status_code == 503 and text(wrong) == text(resp)
    assert logged(svc) == []


def test_sign_out_is_never_blocked_by_the_log(client, users, svc, monkeypatch):
    assert sign_in(client, "handler").status_code == 302
    token = csrf_token(client, "/no-access")

    def broken(session, events):
        raise RuntimeError("the security log is unwritable")

    monkeypatch.setattr(audit_store, "append", broken)
    assert signed_out(client.post("/logout", data={"csrf_token": token}))
    assert signed_out(client.get("/queue"))
    assert [e.kind for e in logged(svc)] == ["sign_in"]


# -- deactivation and revocation -------------------------------------------------------------------

def test_deactivating_a_user_ends_their_session_and_their_api_tokens(client, users, svc, tokens, app):
    assert sign_in(client, "handler").status_code == 302
    assert client.get("/queue").status_code == 200
    headers = {"Authorization": f"Bearer {tokens['handler']}"}
    assert app.test_client().get("/api/v1/queues", headers=headers).status_code == 200
    user_service.set_active(svc, CLI, "handler", False)
    assert signed_out(client.get("/queue"))
    assert app.test_client().get("/api/v1/queues", headers=headers).status_code == 401
    assert sign_in(client, "handler").status_code == 401
    user_service.set_active(svc, CLI, "handler", True)
    assert sign_in(app.test_client(), "handler").status_code == 302
    assert [e.kind for e in logged(svc)] == [
        "sign_in", "user_deactivated", "sign_in_failed", "user_reactivated", "sign_in"]


def test_a_revoked_token_gets_401(users, svc, app):
    token_id, token = user_service.issue_token(svc, CLI, "supervisor")
    headers = {"Authorization": f"Bearer {token}"}
    api = app.test_client()
    assert api.get("/api/v1/queues", headers=headers).status_code == 200
    user_service.revoke_token(svc, CLI, token_id)
    resp = api.get("/api/v1/queues", headers=headers)
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "unauthorised"


# -- the administrators' page ----------------------------------------------------------------------

@pytest.mark.parametrize("role", ["handler", "supervisor", "professional"])
def test_the_security_log_is_for_administrators_only(client, users, role):
    assert sign_in(client, role).status_code == 302
    assert client.get("/admin/security").status_code == 403
    assert "Security log" not in text(client.get("/no-access"))  # and no link to it


def test_signed_out_the_security_log_asks_for_sign_in(client, users):
    assert signed_out(client.get("/admin/security"))


def test_an_administrator_sees_the_events_newest_first_and_filters_them(client, users, svc):
    user_service.issue_token(svc, CLI, "handler")
    sign_in(client, "handler", "a-wrong-password")
    assert sign_in(client, "admin").status_code == 302
    resp = client.get("/admin/security")
    page = text(resp)
    assert resp.status_code == 200 and 'href="/admin/security"' in page  # the nav link
    assert "<caption" in page and page.count('scope="col"') == 7
    assert 'for="security-kind">' in page and 'for="security-user">' in page
    rows = page.split("<tbody")[1].split("</tbody>")[0]
    kinds = [k for k in ("sign in failed", "token issued") if k in rows]
    assert kinds == ["sign in failed", "token issued"]
    assert rows.index("sign in") < rows.index("token issued")  # newest first
    assert "token id: " in rows and "bad_credentials" in rows and "127.0.0.1" in rows

    only = text(client.get("/admin/security?kind=token_issued"))
    assert "token issued" in only.split("<tbody")[1] and "sign in failed" not in only.split("<tbody")[1]
    by_user = text(client.get("/admin/security?user=admin")).split("<tbody")[1]
    assert "sign in" in by_user and "token issued" not in by_user
    none = text(client.get("/admin/security?kind=sms_opt_out"))
    assert "No security events match." in none
    bad = client.get("/admin/security?kind=nonsense")
    assert bad.status_code == 400 and "Choose a kind of event from the list." in text(bad)
    nul = client.get("/admin/security?user=ad%00min")  # PostgreSQL would refuse it in a query
    assert nul.status_code == 400 and "without control characters" in text(nul)


def test_the_security_log_names_people_in_words_with_the_username_the_filter_takes(client, users, svc):
    with svc.uow() as uow:
        uow.users.find("handler").display_name = "Hana Hughes"
        uow.commit()
    user_service.issue_token(svc, CLI, "handler")  # by the command line, about a user
    sign_in(client, "no.such.person", "a-wrong-password")  # what was typed: no user to name
    assert sign_in(client, "admin").status_code == 302
    page = text(client.get("/admin/security"))
    header, *rows = tables(page)[0]
    by_kind = {row[2]: dict(zip(header, row)) for row in rows}
    issued, failed, signed = by_kind["token issued"], by_kind["sign in failed"], by_kind["sign in"]
    assert (issued["By"], issued["About"]) == ("IPOA (command line)", "Hana Hughes (handler, CNH) username handler")
    assert (failed["By"], failed["About"]) == ("no.such.person", "–")
    assert signed["By"] == "Admin (admin) username admin"
    assert "cli:ops" not in page.split("<tbody")[1]  # no internal actor names


def test_the_security_log_pages_back_fifty_at_a_time(client, users, svc):
    for _ in range(60):
        user_service.issue_token(svc, CLI, "handler")
    assert sign_in(client, "admin").status_code == 302
    first = text(client.get("/admin/security?kind=token_issued"))
    assert "50 events of kind token issued" in first and "Older events" in first
    assert 'href="/admin/security?kind=token_issued&amp;before=11"' in client.get(
        "/admin/security?kind=token_issued").get_data(as_text=True)
    older = text(client.get("/admin/security?kind=token_issued&before=11"))
    assert "10 events of kind token issued, before event 11" in older
    assert "Older events" not in older and "Newest events" in older
