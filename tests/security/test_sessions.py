"""Sessions held on the server (issue item 2): the cookie is an opaque id; sign-out, a password or role change
and deactivation end a session at once, for every copy of its cookie; idle timeout and maximum lifetime on
the shared test clock; the Secure flag behind https; CSRF tokens, flash messages and the API unaffected."""
from __future__ import annotations

import hashlib
import html
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from ipoa import create_app
from ipoa.adapters.orm import security_events, user_sessions
from ipoa.service import sessions
from ipoa.service import users as user_service
from tests.conftest import PASSWORD, csrf_token, sign_in

COOKIE = "session"


def make_app(svc, **config):
    return create_app({"TESTING": True, "SERVICES": svc, "SECRET_KEY": "test-secret", "BENCH_ENDPOINTS": False,
                       "MFA_REQUIRED_ROLES": "", **config})


@pytest.fixture
def app(svc):
    return make_app(svc)  # the default limits: 30 minutes idle, 12 hours at most


def cookie(client, name=COOKIE) -> str | None:
    found = client.get_cookie(name)
    return found.value if found is not None else None


def signed_in(client) -> bool:
    resp = client.get("/queue")
    return resp.status_code == 200


def sent_to_sign_in(resp) -> bool:
    return resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/login"


def rows(svc) -> list:
    with svc.uow() as uow:
        return uow.session.execute(select(user_sessions).order_by(user_sessions.c.created_at)).all()


def logged(svc, kind) -> list:
    with svc.uow() as uow:
        return uow.session.execute(select(security_events).where(security_events.c.kind == kind)
                                   .order_by(security_events.c.seq)).all()


def sign_out(client):
    return client.post("/logout", data={"csrf_token": csrf_token(client, "/no-access")})


def text(resp) -> str:
    return html.unescape(resp.get_data(as_text=True))


# -- the cookie --------------------------------------------------------------------------------------------

def test_the_cookie_holds_only_an_opaque_id(client, users, svc):
    assert sign_in(client, "handler").status_code == 302
    sid = cookie(client)
    assert sid and "." not in sid and len(sid) >= 40  # not a signed cookie with contents: a random id
    (row,) = [r for r in rows(svc) if r.user_id is not None]
    assert row.id == hashlib.sha256(sid.encode()).hexdigest()  # the table holds its hash, not the id
    assert row.user_id == users["handler"].id and row.mfa_verified_at == svc.clock.now()
    token = csrf_token(client, "/queue")
    with svc.uow() as uow:  # the CSRF token is in the row on the server, and nowhere in the cookie
        data = uow.session.scalar(select(user_sessions.c.data).where(user_sessions.c.id == row.id))
    assert token.split(".")[0] not in sid and "csrf_token" in data


def test_signing_in_moves_the_session_to_a_new_id(client, users, svc):
    csrf_token(client, "/login")
    before = cookie(client)
    assert before  # a visitor's session: the sign-in form's CSRF token
    assert sign_in(client, "handler").status_code == 302
    after = cookie(client)
    assert after and after != before
    # The visitor's row is gone: no row is kept for it.
    assert [r.user_id for r in rows(svc)] == [users["handler"].id]
    assert hashlib.sha256(before.encode()).hexdigest() not in [r.id for r in rows(svc)]
    planted = make_app(svc).test_client()  # someone who knew the id before sign-in
    planted.set_cookie(COOKIE, before)
    assert sent_to_sign_in(planted.get("/queue"))


def test_a_cookie_copied_before_sign_out_no_longer_opens_the_queue(app, users, svc):
    client = app.test_client()
    assert sign_in(client, "handler").status_code == 302
    copied = cookie(client)
    thief = app.test_client()
    thief.set_cookie(COOKIE, copied)
    assert thief.get("/queue").status_code == 200  # the copy works while the session stands
    assert sent_to_sign_in(sign_out(client))
    assert "Signed out." in text(client.get("/login"))  # a flash message, kept on the server
    assert sent_to_sign_in(thief.get("/queue"))
    assert sent_to_sign_in(client.get("/queue"))
    ended = [r for r in rows(svc) if r.user_id is not None]
    assert [(r.end_reason, r.ended_at) for r in ended] == [("signed_out", svc.clock.now())]


def test_a_forged_or_unknown_cookie_is_no_session(app, users, svc):
    client = app.test_client()
    for value in ("x" * 43, "not a token", "a" * 300, sessions.new_id()):
        client.set_cookie(COOKIE, value)
        assert sent_to_sign_in(client.get("/queue"))


def test_secure_when_public_base_url_is_https(svc, users):
    secure = make_app(svc, PUBLIC_BASE_URL="https://ipoa.example.nhs.uk").test_client()
    resp = secure.get("/login", base_url="https://ipoa.example.nhs.uk")
    set_cookie = resp.headers["Set-Cookie"]
    assert set_cookie.startswith("__Host-session=")
    assert "; Secure" in set_cookie and "; HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
    assert "Expires" not in set_cookie and "Domain" not in set_cookie and "Path=/" in set_cookie
    plain = make_app(svc, PUBLIC_BASE_URL="http://127.0.0.1:5000").test_client().get("/login")
    assert "Secure" not in plain.headers["Set-Cookie"] and "HttpOnly" in plain.headers["Set-Cookie"]
    # An explicit SESSION_COOKIE_SECURE=0 (a TLS-terminating test rig) is obeyed.
    off = make_app(svc, PUBLIC_BASE_URL="https://x.example", SESSION_COOKIE_SECURE=False).test_client()
    assert "Secure" not in off.get("/login").headers["Set-Cookie"]


def test_signing_in_over_https_works_with_the_host_cookie(svc, users):
    client = make_app(svc, PUBLIC_BASE_URL="https://ipoa.example.nhs.uk").test_client()
    base = "https://ipoa.example.nhs.uk"
    token = csrf_token_at(client, base)
    resp = client.post("/login", base_url=base, data={"username": "handler", "password": PASSWORD,
                                                       "csrf_token": token})
    assert resp.status_code == 302
    assert client.get("/queue", base_url=base).status_code == 200


def csrf_token_at(client, base):
    import re

    body = client.get("/login", base_url=base).get_data(as_text=True)
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', body).group(1)


# -- timeouts, on the shared clock ----------------------------------------------------------------------------

def test_idle_timeout(app, users, svc, clock):
    client = app.test_client()
    assert sign_in(client, "handler").status_code == 302
    for _ in range(4):  # active every 29 minutes: still signed in two hours on
        clock.advance(minutes=29)
        assert signed_in(client)
    clock.advance(minutes=30, seconds=1)
    resp = client.get("/queue")
    assert sent_to_sign_in(resp)
    assert "because you did nothing for 30 minutes" in text(client.get(resp.headers["Location"]))
    (event,) = logged(svc, "session_ended")
    assert (event.actor, event.detail) == ("handler", {"reason": "idle"})
    assert [r.end_reason for r in rows(svc) if r.user_id is not None] == ["idle"]


def test_the_idle_timeout_is_a_setting(svc, users, clock):
    client = make_app(svc, SESSION_IDLE_MINUTES=5).test_client()
    assert sign_in(client, "handler").status_code == 302
    clock.advance(minutes=4)
    assert signed_in(client)
    clock.advance(minutes=5, seconds=1)
    assert not signed_in(client)


def test_maximum_lifetime_of_a_shift(app, users, svc, clock):
    client = app.test_client()
    assert sign_in(client, "handler").status_code == 302
    started = clock.now()
    while clock.now() < started + timedelta(hours=11, minutes=50):  # busy all day
        clock.advance(minutes=10)
        assert signed_in(client)
    clock.set(started + timedelta(hours=12))
    resp = client.get("/queue")
    assert sent_to_sign_in(resp)
    assert "signed in for 12 hours" in text(client.get(resp.headers["Location"]))
    (event,) = logged(svc, "session_ended")
    assert event.detail == {"reason": "expired"}
    assert sign_in(client, "handler").status_code == 302 and signed_in(client)  # a new shift


def test_the_dashboards_polling_does_not_keep_a_session_alive(app, users, svc, clock):
    client = app.test_client()
    assert sign_in(client, "supervisor").status_code == 302
    assert client.get("/supervisor").status_code == 200
    for _ in range(30):  # the page left open: it polls, nobody is there
        clock.advance(minutes=1)
        assert client.get("/supervisor/dashboard/fragment", headers={"HX-Request": "true"}).status_code == 200
    clock.advance(minutes=1, seconds=1)
    resp = client.get("/supervisor/dashboard/fragment", headers={"HX-Request": "true"})
    assert resp.status_code == 401 and urlsplit(resp.headers["HX-Redirect"]).path == "/login"


def test_last_seen_is_written_at_most_once_a_minute(app, users, svc, clock):
    client = app.test_client()
    assert sign_in(client, "handler").status_code == 302
    signed = clock.now()
    clock.advance(seconds=30)
    assert signed_in(client)
    assert [r.last_seen_at for r in rows(svc)] == [signed]
    clock.advance(seconds=31)
    assert signed_in(client)
    assert [r.last_seen_at for r in rows(svc)] == [clock.now()]


# -- ended from outside: password, role, deactivation ------------------------------------------------------

@pytest.mark.parametrize("change, reason", [
    (lambda svc: user_service.set_password(svc, "cli:ops", "handler", "a-new-long-passphrase-9"), "password_changed"),
    (lambda svc: user_service.update_user(svc, "cli:ops", "handler", role="supervisor"), "role_changed"),
    (lambda svc: user_service.set_active(svc, "cli:ops", "handler", False), "deactivated"),
])
def test_a_password_or_role_change_or_deactivation_ends_the_sessions(app, users, svc, change, reason):
    first, second = app.test_client(), app.test_client()
    assert sign_in(first, "handler").status_code == 302 and sign_in(second, "handler").status_code == 302
    other = app.test_client()
    assert sign_in(other, "supervisor").status_code == 302
    change(svc)
    assert sent_to_sign_in(first.get("/queue")) and sent_to_sign_in(second.get("/queue"))
    assert signed_in(other)  # someone else's session is untouched
    ended = [r.end_reason for r in rows(svc) if r.user_id == users["handler"].id]
    assert ended == [reason, reason]


def test_end_sessions_called_directly(app, users, svc, clock):
    client = app.test_client()
    assert sign_in(client, "handler").status_code == 302
    with svc.uow() as uow:
        assert sessions.end_sessions(uow, users["handler"].id, "password_changed", now=clock.now()) == 1
        uow.commit()
    assert sent_to_sign_in(client.get("/queue"))
    with svc.uow() as uow:
        assert sessions.end_sessions(uow, users["handler"].id, "password_changed", now=clock.now()) == 0
        uow.commit()
    # In the caller's unit of work: nothing ends until it commits.
    assert sign_in(client, "handler").status_code == 302
    with svc.uow() as uow:
        assert sessions.end_sessions(uow, users["handler"].id, "role_changed", now=clock.now()) == 1
    assert signed_in(client)
    with svc.uow() as uow:
        assert sessions.end_sessions(uow, users["handler"].id, "role_changed", now=clock.now()) == 1
        uow.commit()
    assert sent_to_sign_in(client.get("/queue"))
    assert sign_in(client, "handler").status_code == 302
    with svc.uow() as uow:
        assert sessions.end_sessions(uow, users["handler"].id, "deactivated", now=clock.now()) == 1
        uow.commit()
    assert sorted((r.end_reason, r.ended_at) for r in rows(svc)) == [
        ("deactivated", clock.now()), ("password_changed", clock.now()), ("role_changed", clock.now())]


# -- what keeps working ----------------------------------------------------------------------------------

def test_forms_need_their_csrf_token_and_an_expired_sign_in_form_says_so(app, users, svc, clock):
    client = app.test_client()
    token = csrf_token(client, "/login")
    assert sent_to_sign_in(client.post("/login", data={"username": "handler", "password": PASSWORD}))
    assert not signed_in(client)
    clock.advance(minutes=31)  # the sign-in form left open: the visitor's session has gone
    resp = client.post("/login", data={"username": "handler", "password": PASSWORD, "csrf_token": token})
    assert sent_to_sign_in(resp)
    assert "Your session had ended" in text(client.get("/login"))
    assert sign_in(client, "handler").status_code == 302


def test_the_api_neither_reads_nor_writes_sessions(app, users, svc, tokens):
    api = app.test_client()
    resp = api.get("/api/v1/queues", headers={"Authorization": f"Bearer {tokens['handler']}"})
    assert resp.status_code == 200 and "Set-Cookie" not in resp.headers
    # A signed-in browser's cookie is not a credential for the API.
    browser = app.test_client()
    assert sign_in(browser, "handler").status_code == 302
    assert browser.get("/api/v1/queues").status_code == 401
    assert api.get("/healthz").status_code == 200 and "Set-Cookie" not in api.get("/healthz").headers


def test_a_visitor_who_uses_no_session_gets_no_row(app, svc):
    client = app.test_client()
    client.get("/healthz")
    client.get("/static/app.css")
    assert rows(svc) == []
    client.get("/login")  # the form's CSRF token needs one
    (row,) = rows(svc)
    assert row.user_id is None


def test_old_sessions_are_pruned(app, users, svc, clock):
    client = app.test_client()
    csrf_token(client, "/login")  # a visitor's row
    assert sign_in(app.test_client(), "handler").status_code == 302
    sign_out_client = app.test_client()
    assert sign_in(sign_out_client, "supervisor").status_code == 302
    sign_out(sign_out_client)
    assert len(rows(svc)) == 4  # two visitors' (one holding "Signed out."), one open, one ended
    clock.advance(minutes=31)
    assert sessions.prune(svc, clock.now(), sessions.Limits()) == 2  # the visitors' unused for 30 minutes
    clock.advance(days=31)
    assert sessions.prune(svc, clock.now(), sessions.Limits()) == 2  # ended or run out a month ago
    with svc.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(user_sessions)) == 0


@pytest.mark.parametrize("poll", ["/queue/live?centre=CNH", "/calls/{ref}/live"])
def test_the_queues_and_call_pages_polling_does_not_keep_a_session_alive(app, users, svc, clock, poll):
    """Every page that polls by itself (hx-trigger "every …") is not someone at the screen: a handler's
    queue or call page (patient details) left open still times out (docs/security.md, "Sessions")."""
    from ipoa.service import calls as call_service
    from ipoa.service.calls import Actor
    from tests.conftest import call_payload

    ref = call_service.log_call(svc, Actor("handler", "handler", "CNH"), call_payload(), allow_duplicate=True).ref
    client = app.test_client()
    assert sign_in(client, "handler").status_code == 302
    url = poll.format(ref=ref)
    for _ in range(30):  # the page left open: it polls, nobody is there
        clock.advance(minutes=1)
        assert client.get(url, headers={"HX-Request": "true"}).status_code == 200
    clock.advance(minutes=1, seconds=1)
    resp = client.get(url, headers={"HX-Request": "true"})
    assert resp.status_code == 401 and urlsplit(resp.headers["HX-Redirect"]).path == "/login"


def test_a_page_someone_opens_still_counts_as_activity(app, users, svc, clock):
    client = app.test_client()
    assert sign_in(client, "handler").status_code == 302
    for _ in range(4):  # someone at the screen every 20 minutes: 80 minutes signed in
        clock.advance(minutes=20)
        assert signed_in(client)
