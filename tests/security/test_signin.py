"""Sign-in attacks (issue item 1): a password guessed many times over, an address bursting, usernames probed,
parallel guesses; and unlocking, on the page and through `signin.unlock`. docs/security.md, "Sign-in,
sessions and multi-factor"."""
from __future__ import annotations

import html
import re
import threading
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from ipoa import create_app
from ipoa.adapters.orm import security_events
from ipoa.service import signin
from ipoa.users import User
from tests.conftest import PASSWORD, csrf_token, make_user

ADDRESS = "203.0.113.7"  # documentation addresses (RFC 5737): the test client sends nothing anywhere
WRONG = "Unknown username or wrong password."
LOCKED = "too many failed sign-ins for this account, so it is locked until"


@pytest.fixture
def app(svc):
    # The real rules (the suite's own `app` has none), but multi-factor off: see test_mfa.py.
    return create_app({"TESTING": True, "SERVICES": svc, "SECRET_KEY": "test-secret", "BENCH_ENDPOINTS": False,
                       "MFA_REQUIRED_ROLES": ""})


def logged(svc, kind=None) -> list:
    stmt = select(security_events).order_by(security_events.c.seq)
    if kind:
        stmt = stmt.where(security_events.c.kind == kind)
    with svc.uow() as uow:
        return uow.session.execute(stmt).all()


def attempt(client, username, password, address=ADDRESS):
    token = csrf_token(client, "/login")
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                       environ_base={"REMOTE_ADDR": address})


def page(resp) -> str:
    """The answer's text without the CSRF token, which differs on every page."""
    body = html.unescape(resp.get_data(as_text=True))
    return re.sub(r'name="csrf_token" type="hidden" value="[^"]+"', "", body)


def signed_in(client) -> bool:
    resp = client.get("/queue")
    return resp.status_code == 200


def user_row(svc, username):
    with svc.uow() as uow:
        return uow.session.scalars(select(User).where(User.username == username)).one()


@pytest.fixture
def checks(monkeypatch):
    """How many password hashes were checked (a real one or the dummy for unknown usernames)."""
    calls = []
    real = signin.check_password_hash
    real_method = User.check_password

    def counted(hash_, password):
        calls.append("dummy")
        return real(hash_, password)

    def counted_method(self, password):
        calls.append(self.username)
        return real_method(self, password)

    monkeypatch.setattr(signin, "check_password_hash", counted)
    monkeypatch.setattr(User, "check_password", counted_method)
    return calls


# -- one account, many guesses ----------------------------------------------------------------------------

def test_180_wrong_passwords_in_20_seconds_lock_the_account_after_5(client, users, svc, clock, checks):
    """From 180 addresses (so that only the account's lockout stands in the way): the first 4 are wrong
    passwords, the 5th locks the account, and the other 175 are refused without anything being checked."""
    answers = []
    for i in range(180):
        clock.advance(seconds=20 / 180)
        resp = attempt(client, "handler", f"guess-{i}", address=f"203.0.113.{i + 1}")
        answers.append((resp.status_code, LOCKED in page(resp), WRONG in page(resp)))
    assert answers[:4] == [(401, False, True)] * 4
    assert answers[4:] == [(401, True, False)] * 176
    assert checks == ["handler"] * 5  # 175 attempts refused without checking
    assert [e.kind for e in logged(svc)] == (["sign_in_failed"] * 5 + ["account_locked"]
                                             + ["sign_in_refused"] * 175)
    (lock,) = logged(svc, "account_locked")
    assert (lock.actor, lock.subject, lock.detail) == ("handler", "handler", {"failures": 5, "minutes": 15})
    assert {e.detail["reason"] for e in logged(svc, "sign_in_refused")} == {"locked"}
    assert user_row(svc, "handler").locked_until == lock.at + timedelta(minutes=15)

    # The right password during the lock: the same answer, not signed in, and still not checked.
    right = attempt(client, "handler", PASSWORD, address="203.0.113.250")
    assert right.status_code == 401 and page(right) == page(attempt(client, "handler", "wrong", "203.0.113.251"))
    assert not signed_in(client) and len(checks) == 5

    # Fifteen minutes after the lock, the right password signs in, and the count starts afresh.
    clock.set(lock.at + timedelta(minutes=15))
    assert attempt(client, "handler", PASSWORD).status_code == 302 and signed_in(client)


def test_failures_spread_beyond_15_minutes_do_not_lock(client, users, svc, clock):
    for _ in range(8):
        assert WRONG in page(attempt(client, "handler", "wrong"))
        clock.advance(minutes=4)  # never 5 within 15 minutes
    assert logged(svc, "account_locked") == []
    assert attempt(client, "handler", PASSWORD).status_code == 302


def test_a_sign_in_resets_the_count(client, users, svc, clock):
    for _ in range(4):
        attempt(client, "handler", "wrong")
        clock.advance(seconds=1)
    assert attempt(client, "handler", PASSWORD).status_code == 302
    other = client.application.test_client()
    for _ in range(4):
        clock.advance(seconds=1)
        assert WRONG in page(attempt(other, "handler", "wrong"))
    assert logged(svc, "account_locked") == []


# -- usernames that do not exist ----------------------------------------------------------------------------

def test_an_unknown_username_is_answered_exactly_like_a_known_one(app, users, svc, clock, checks):
    known, unknown = app.test_client(), app.test_client()
    for i in range(7):  # wrong passwords, then the lock, then refusals
        clock.advance(seconds=1)
        a = attempt(known, "handler", f"wrong-{i}", address=f"203.0.113.{i + 1}")
        b = attempt(unknown, "no.such.person", f"wrong-{i}", address=f"203.0.113.{i + 101}")
        # The form keeps what was typed in the username box; the rest is the same to the byte.
        same = (page(a).replace('value="handler"', 'value="?"'), page(b).replace('value="no.such.person"', 'value="?"'))
        assert a.status_code == b.status_code and same[0] == same[1], i
    # One hash checked per attempt either way (the unknown username's against a dummy: the same time).
    assert checks == ["handler", "dummy"] * 5
    kinds = [(e.kind, e.actor) for e in logged(svc)]
    assert kinds.count(("account_locked", "handler")) == kinds.count(("account_locked", "no.such.person")) == 1
    assert [e.detail for e in logged(svc, "sign_in_failed")] == [{"reason": "bad_credentials"}] * 10


def test_unknown_usernames_take_as_long_to_refuse_as_known_ones(app, users, svc, clock):
    """As far as a test can say: no faster by more than a little (the dummy check is a real scrypt)."""
    import time

    def timed(username, i):
        client = app.test_client()
        token = csrf_token(client, "/login")
        start = time.perf_counter()
        client.post("/login", data={"username": username, "password": "wrong", "csrf_token": token},
                    environ_base={"REMOTE_ADDR": f"203.0.113.{i}"})
        return time.perf_counter() - start

    known = sorted(timed("handler", i) for i in range(1, 4))[1]
    clock.advance(minutes=20)
    unknown = sorted(timed("nobody.here", i) for i in range(11, 14))[1]
    assert unknown > known * 0.5, (known, unknown)


# -- one address, many accounts -------------------------------------------------------------------------------

def test_an_address_bursting_gets_429_with_retry_after(app, users, svc, clock, checks):
    client = app.test_client()
    for i in range(10):  # ten accounts, two guesses each at most: no lockout involved
        assert attempt(client, f"user{i}", "wrong").status_code == 401
    burst = attempt(client, "user10", "wrong")
    assert burst.status_code == 429
    assert 1 <= int(burst.headers["Retry-After"]) <= 60
    assert "too many failed sign-ins from your network" in page(burst)
    # Refused without checking, even the right password of a real account.
    assert len(checks) == 10
    assert attempt(client, "handler", PASSWORD).status_code == 429 and not signed_in(client)
    assert [e.detail for e in logged(svc, "sign_in_refused")] == [{"reason": "throttled"}] * 2
    # Another address is not held back.
    assert attempt(app.test_client(), "handler", PASSWORD, address="198.51.100.9").status_code == 302


def test_a_shift_signing_in_from_one_address_is_not_throttled(app, svc, clock):
    """A call centre's staff share one public address: only failures count."""
    for i in range(30):
        make_user(svc, f"shift.{i}", "handler", "CNH")
    for i in range(30):
        assert attempt(app.test_client(), f"shift.{i}", PASSWORD).status_code == 302


def test_ipv6_clients_are_counted_by_their_64():
    from ipoa.web.throttle import client_key

    assert client_key("2001:db8:1:2:3:4:5:6") == client_key("2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64"
    assert client_key("::ffff:203.0.113.7") == "203.0.113.7" and client_key(None) == "unknown"


# -- parallel guesses --------------------------------------------------------------------------------------

def test_parallel_guesses_get_no_more_than_five_checks(svc, users, clock):
    app = create_app({"TESTING": True, "SERVICES": svc, "SECRET_KEY": "test-secret", "BENCH_ENDPOINTS": False,
                      "MFA_REQUIRED_ROLES": "", "WTF_CSRF_ENABLED": False})
    statuses, start = [], threading.Barrier(12)

    def guess(i):
        client = app.test_client()
        start.wait()
        resp = client.post("/login", data={"username": "handler", "password": f"guess-{i}"},
                           environ_base={"REMOTE_ADDR": f"203.0.113.{i + 1}"})
        statuses.append((resp.status_code, LOCKED in page(resp)))

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(statuses) == 12
    assert len(logged(svc, "sign_in_failed")) == 5 and len(logged(svc, "account_locked")) == 1
    assert len(logged(svc, "sign_in_refused")) == 7
    assert sum(1 for _, locked in statuses if locked) == 8  # the 5th and the 7 after it


def test_a_parallel_burst_from_one_address_gets_no_more_checks_than_its_limit(svc, users, checks):
    """The limit per address is checked and the attempt counted in one step: 40 sign-ins at once from one
    address whose limit is 10 a minute get 10 password checks, and 429 for the rest."""
    app = create_app({"TESTING": True, "SERVICES": svc, "SECRET_KEY": "test-secret", "BENCH_ENDPOINTS": False,
                      "MFA_REQUIRED_ROLES": "", "WTF_CSRF_ENABLED": False,
                      "SIGNIN_ADDRESS_LIMIT": "10 per minute;100 per hour"})
    statuses, start = [], threading.Barrier(40)

    def guess(i):
        client = app.test_client()
        start.wait()
        resp = client.post("/login", data={"username": f"spray.{i}", "password": "Winter2024!!"},
                           environ_base={"REMOTE_ADDR": ADDRESS})
        statuses.append(resp.status_code)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(statuses) == 40
    assert len(checks) <= 10 and statuses.count(401) == len(checks)
    assert statuses.count(429) == 40 - len(checks)
    # Every attempt, let through or refused, is over: none is left counted as under way.
    assert app.extensions["ipoa_throttle"].in_flight(ADDRESS) == 0


# -- unlocking ---------------------------------------------------------------------------------------------

def lock(client, username, clock):
    for i in range(5):
        clock.advance(seconds=1)
        attempt(client, username, f"wrong-{i}", address=f"203.0.113.{i + 1}")


def test_unlock_is_the_clis_contract(users, svc, clock, client):
    lock(client, "handler", clock)
    clock.advance(minutes=1)
    assert signin.unlock(svc, "cli:ops", "handler") is True
    row = user_row(svc, "handler")
    assert row.locked_until is None and row.failures_since == clock.now()
    (event,) = logged(svc, "account_unlocked")
    assert (event.actor, event.subject, event.detail) == ("cli:ops", "handler", {"was_locked": True})
    assert signin.unlock(svc, "cli:ops", "handler") is False
    with pytest.raises(LookupError, match="There is no user called nobody"):
        signin.unlock(svc, "cli:ops", "nobody")
    # Unlocked: the right password signs in; and the failures before the unlock no longer count.
    assert attempt(client, "handler", PASSWORD).status_code == 302


def test_a_supervisor_unlocks_their_centres_users_on_the_page(app, users, svc, clock):
    make_user(svc, "other.centre", "handler", "ASC")
    attacker = app.test_client()
    lock(attacker, "handler", clock)
    lock(attacker, "other.centre", clock)
    clock.advance(minutes=1)

    sup = app.test_client()
    assert attempt(sup, "supervisor", PASSWORD, address="198.51.100.1").status_code == 302
    listing = page(sup.get("/accounts/locked"))
    assert "handler" in listing and "other.centre" not in listing  # CNH's users only
    token = csrf_token(sup, "/accounts/locked")
    # Another centre's user cannot be unlocked by CNH's supervisor, even by posting the name.
    resp = sup.post("/accounts/unlock", data={"username": "other.centre", "csrf_token": token})
    assert resp.status_code == 302
    assert "that you can unlock" in page(sup.get("/accounts/locked"))
    assert user_row(svc, "other.centre").locked_until is not None
    # Without the form's CSRF token: refused.
    assert sup.post("/accounts/unlock", data={"username": "handler"}).status_code == 400
    assert user_row(svc, "handler").locked_until is not None
    resp = sup.post("/accounts/unlock", data={"username": "handler", "csrf_token": token})
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/accounts/locked"
    after = page(sup.get("/accounts/locked"))
    assert "handler is unlocked and can sign in again." in after and "No accounts at CNH are locked." in after
    assert user_row(svc, "handler").locked_until is None
    (event,) = logged(svc, "account_unlocked")
    assert (event.actor, event.subject, event.client) == ("supervisor", "handler", "127.0.0.1")
    assert attempt(app.test_client(), "handler", PASSWORD, address="198.51.100.2").status_code == 302

    # An administrator sees and unlocks anyone's.
    admin = app.test_client()
    assert attempt(admin, "admin", PASSWORD, address="198.51.100.3").status_code == 302
    assert "other.centre" in page(admin.get("/accounts/locked"))
    token = csrf_token(admin, "/accounts/locked")
    assert admin.post("/accounts/unlock", data={"username": "other.centre", "csrf_token": token}).status_code == 302
    assert user_row(svc, "other.centre").locked_until is None


@pytest.mark.parametrize("role", ["handler", "professional"])
def test_other_roles_cannot_unlock(app, users, svc, clock, role):
    lock(app.test_client(), "handler.asc" if role == "handler" else "handler", clock)
    client = app.test_client()
    assert attempt(client, role, PASSWORD, address="198.51.100.4").status_code == 302
    assert client.get("/accounts/locked").status_code == 403
    token = csrf_token(client, "/account/security")
    assert client.post("/accounts/unlock", data={"username": "handler", "csrf_token": token}).status_code == 403
    assert "Locked accounts" not in page(client.get("/account/security"))


# -- one spelling of a username ----------------------------------------------------------------------------

@pytest.fixture
def unthrottled(svc):
    # The lockout is the subject here, not the limit per address (which counts in real time, not the clock).
    return create_app({"TESTING": True, "SERVICES": svc, "SECRET_KEY": "test-secret", "BENCH_ENDPOINTS": False,
                       "MFA_REQUIRED_ROLES": "", "SIGNIN_ADDRESS_LIMIT": "1000 per minute"})


@pytest.mark.parametrize("variant", ["{} ", " {}", "{}\u200b", "{}\u00ad", "\u200e{}"])
def test_a_variant_spelling_is_the_same_username_known_or_not(unthrottled, users, svc, clock, checks, variant):
    """Spaces around a username and invisible characters in it are not part of it: a variant spelling is
    counted, locked and answered as the username itself, so a lock made through one answers a known and
    an unknown username alike, in words and in work (docs/security.md, "Signing in")."""
    client = unthrottled.test_client()
    for i in range(5):
        clock.advance(seconds=1)
        attempt(client, variant.format("handler"), f"wrong-{i}")
        attempt(client, variant.format("ghost.user"), f"wrong-{i}")
    clock.advance(minutes=3)
    del checks[:]
    known, unknown = attempt(client, "handler", "wrong"), attempt(client, "ghost.user", "wrong")
    assert checks == []  # both locked: nothing checked for either
    assert known.status_code == unknown.status_code == 401
    # The same page but for the username typed, which the form shows again.
    assert page(known).replace("handler", "NAME") == page(unknown).replace("ghost.user", "NAME")
    assert LOCKED in page(known)
    # The log is true: the account it names as locked is locked, and its right password is refused.
    assert [e.actor for e in logged(svc, "account_locked")] == ["handler", "ghost.user"]
    assert user_row(svc, "handler").locked_until is not None
    assert attempt(client, "handler", PASSWORD).status_code == 401 and not signed_in(client)


def test_a_variant_spelling_of_a_known_username_checks_its_password(app, users, svc, clock, checks):
    assert attempt(app.test_client(), " handler\u200b ", PASSWORD).status_code == 302
    assert checks == ["handler"]
