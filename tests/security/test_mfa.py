"""Multi-factor sign-in (issue item 3): required for supervisors and admins (MFA_REQUIRED_ROLES), set up at
the first sign-in (QR code as inline SVG, the key as text, a code to confirm), asked at every sign-in
after; recovery codes shown once, each usable once; wrong codes lock the account like wrong passwords;
other roles may set it up themselves, and are then always asked. Codes are computed here with pyotp at
the shared test clock's time, as the app computes them."""
from __future__ import annotations

import html
import re
from datetime import timedelta
from urllib.parse import urlsplit

import pyotp
import pytest
from sqlalchemy import func, select

from ipoa import create_app
from ipoa.adapters.orm import mfa_recovery_codes, security_events, user_sessions
from ipoa.service import mfa
from ipoa.users import User
from tests.conftest import csrf_token, sign_in


def make_app(svc, **config):
    # Every client here is 127.0.0.1: the throttle per address is test_signin.py's subject, not this file's.
    return create_app({"TESTING": True, "SERVICES": svc, "SECRET_KEY": "test-secret", "BENCH_ENDPOINTS": False,
                       "SIGNIN_ADDRESS_LIMIT": "1000 per minute", **config})


@pytest.fixture
def app(svc):
    return make_app(svc)  # MFA_REQUIRED_ROLES as deployed: supervisor,admin


def text(resp) -> str:
    return html.unescape(resp.get_data(as_text=True))


def path(resp) -> str:
    assert resp.status_code == 302, (resp.status_code, text(resp)[:500])
    return urlsplit(resp.headers["Location"]).path


def signed_in(client, url="/queue") -> bool:
    return client.get(url).status_code == 200


def kinds(svc) -> list:
    with svc.uow() as uow:
        return [(r.kind, r.detail) for r in uow.session.execute(
            select(security_events).order_by(security_events.c.seq))]


def user_row(svc, username):
    with svc.uow() as uow:
        return uow.session.scalars(select(User).where(User.username == username)).one()


def secret_on(resp) -> str:
    found = re.search(r'id="mfa-secret">([A-Z2-7 ]+)<', text(resp))
    assert found, "no key on the set-up page"
    return found.group(1).replace(" ", "")


def post_code(client, url, code):
    return client.post(url, data={"code": code, "csrf_token": csrf_token(client, url)})


def enrol(client, clock, username="supervisor"):
    """Password, then the set-up page, then a code: the recovery codes shown."""
    assert path(sign_in(client, username)) == "/login/set-up"
    secret = secret_on(client.get("/login/set-up"))
    resp = post_code(client, "/login/set-up", pyotp.TOTP(secret).at(clock.now()))
    assert path(resp) == "/account/recovery-codes"
    codes = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", text(client.get("/account/recovery-codes")))
    return secret, codes


def sign_out(client):
    return client.post("/logout", data={"csrf_token": csrf_token(client, "/account/security")})


# -- enrolment -------------------------------------------------------------------------------------------

def test_a_supervisor_sets_up_an_app_at_first_sign_in(client, users, svc, clock):
    assert path(sign_in(client, "supervisor")) == "/login/set-up"
    # Nothing else until it is done: every page sends them back to the second step.
    assert path(client.get("/supervisor")) == "/login/code"
    assert path(client.get("/login/code")) == "/login/set-up"
    page = client.get("/login/set-up")
    body = text(page)
    assert page.status_code == 200 and "<svg" in body and 'role="img"' in body
    assert "<img" not in body and "http" not in body.split("<svg", 1)[1].split("</svg>", 1)[0]  # inline, no requests
    secret = secret_on(page)
    assert len(secret) == 32 and user_row(svc, "supervisor").mfa_secret is None  # kept only once confirmed
    assert secret_on(client.get("/login/set-up")) == secret  # the same key on a reload

    wrong = post_code(client, "/login/set-up", "000000")
    assert wrong.status_code == 401 and "That code is not right" in text(wrong)
    resp = post_code(client, "/login/set-up", pyotp.TOTP(secret).at(clock.now()))
    assert path(resp) == "/account/recovery-codes"
    shown = client.get("/account/recovery-codes")
    codes = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", text(shown))
    assert len(codes) == 10 and len(set(codes)) == 10 and all(len(c) == 19 for c in codes)
    assert "the only time they are shown" in text(shown)
    assert path(client.get("/account/recovery-codes")) == "/account/security"  # shown once
    assert signed_in(client)

    row = user_row(svc, "supervisor")
    assert row.mfa_secret == secret and row.mfa_enrolled_at == clock.now()
    with svc.uow() as uow:
        stored = [r.code_hash for r in uow.session.execute(select(mfa_recovery_codes))]
    assert len(stored) == 10 and not set(stored) & set(codes)  # hashes only
    assert kinds(svc) == [("mfa_challenged", {"step": "enrol"}), ("mfa_failed", {"step": "enrol"}),
                          ("mfa_enrolled", {"recovery_codes": 10}), ("sign_in", {"mfa": "totp"})]


def test_the_secret_and_codes_never_reach_the_cookie(client, users, svc, clock):
    sign_in(client, "supervisor")
    secret = secret_on(client.get("/login/set-up"))
    cookie = client.get_cookie("session").value
    assert secret not in cookie and len(cookie) < 60


# -- verification ----------------------------------------------------------------------------------------

def test_once_set_up_the_code_is_asked_at_every_sign_in(app, users, svc, clock):
    secret, _ = enrol(app.test_client(), clock)
    clock.advance(minutes=1)
    client = app.test_client()
    assert path(sign_in(client, "supervisor")) == "/login/code"
    assert not signed_in(client)
    with svc.uow() as uow:  # the half-made session: the password was right, the code is still to come
        pending = uow.session.execute(select(user_sessions).where(user_sessions.c.user_id == users["supervisor"].id,
                                                                  user_sessions.c.ended_at.is_(None))).all()
    assert sorted(str(r.mfa_verified_at) for r in pending) == [str(clock.now() - timedelta(minutes=1)), "None"]
    before = client.get_cookie("session").value
    code = pyotp.TOTP(secret).at(clock.now())
    assert path(post_code(client, "/login/code?next=/supervisor", code)) == "/supervisor"
    assert client.get_cookie("session").value != before  # a new id once the second factor is given
    assert signed_in(client)

    # The same code again (read over a shoulder, say): refused.
    sign_out(client)
    again = app.test_client()
    assert path(sign_in(again, "supervisor")) == "/login/code"
    assert post_code(again, "/login/code", code).status_code == 401 and not signed_in(again)
    clock.advance(seconds=30)  # the next code works
    assert path(post_code(again, "/login/code", pyotp.TOTP(secret).at(clock.now()))) == "/queue"


def test_codes_drift_by_thirty_seconds_either_way(app, users, svc, clock):
    secret, _ = enrol(app.test_client(), clock)
    for offset in (-30, 30):
        clock.advance(minutes=2)
        client = app.test_client()
        sign_in(client, "supervisor")
        code = pyotp.TOTP(secret).at(clock.now() + timedelta(seconds=offset))
        assert path(post_code(client, "/login/code", code)) == "/queue"
    clock.advance(minutes=2)
    client = app.test_client()
    sign_in(client, "supervisor")
    stale = pyotp.TOTP(secret).at(clock.now() - timedelta(seconds=90))
    assert post_code(client, "/login/code", stale).status_code == 401


def test_a_recovery_code_works_once(app, users, svc, clock):
    secret, codes = enrol(app.test_client(), clock)
    client = app.test_client()
    sign_in(client, "supervisor")
    resp = post_code(client, "/login/code", codes[3].upper().replace("-", " "))  # as someone might type it
    assert path(resp) == "/queue"
    assert "You used a recovery code. You have 9 left." in text(client.get("/queue"))
    assert kinds(svc)[-2:] == [("mfa_recovery_used", {"left": 9}), ("sign_in", {"mfa": "recovery_code"})]
    other = app.test_client()
    sign_in(other, "supervisor")
    assert post_code(other, "/login/code", codes[3]).status_code == 401 and not signed_in(other)
    assert path(post_code(other, "/login/code", codes[4])) == "/queue"


def test_wrong_codes_lock_the_account_like_wrong_passwords(app, users, svc, clock):
    secret, _ = enrol(app.test_client(), clock)
    client = app.test_client()
    sign_in(client, "supervisor")
    for i in range(4):
        clock.advance(seconds=1)
        resp = post_code(client, "/login/code", f"{i:06d}")
        assert resp.status_code == 401 and "That code is not right" in text(resp)
    clock.advance(seconds=1)
    locked = post_code(client, "/login/code", "999999")
    assert locked.status_code == 401 and "it is locked until" in text(locked)
    assert path(client.get("/login/code")) == "/login"  # the half-made session has ended
    # The right password and the right code: still locked.
    fresh = app.test_client()
    resp = sign_in(fresh, "supervisor")
    assert resp.status_code == 401 and "it is locked until" in text(resp)
    assert [k for k, _ in kinds(svc)].count("mfa_failed") == 5 and ("account_locked", {"failures": 5, "minutes": 15}) \
        in kinds(svc)
    # Wrong passwords and wrong codes count together.
    from ipoa.service import signin

    signin.unlock(svc, "admin", "supervisor")
    clock.advance(seconds=1)
    for _ in range(2):
        clock.advance(seconds=1)
        c = app.test_client()
        sign_in(c, "supervisor", "wrong password")
    for _ in range(3):
        clock.advance(seconds=1)
        c = app.test_client()
        sign_in(c, "supervisor")
        last = post_code(c, "/login/code", "123456")
    assert "it is locked until" in text(last)


def test_a_right_password_does_not_reset_the_count_before_the_code(app, users, svc, clock):
    """Otherwise someone with the password could try codes for ever, 4 at a time."""
    enrol(app.test_client(), clock)
    for _ in range(5):
        clock.advance(seconds=1)
        c = app.test_client()
        assert path(sign_in(c, "supervisor")) == "/login/code"
        last = post_code(c, "/login/code", "111111")
    assert "it is locked until" in text(last)


def test_the_second_step_times_out(app, users, svc, clock):
    enrol(app.test_client(), clock)
    client = app.test_client()
    sign_in(client, "supervisor")
    clock.advance(minutes=11)
    resp = client.get("/login/code")
    assert path(resp) == "/login"
    assert "Your sign-in took too long" in text(client.get("/login"))


# -- roles ---------------------------------------------------------------------------------------------------

def test_other_roles_sign_in_with_a_password_and_may_set_up_an_app(app, users, svc, clock):
    client = app.test_client()
    assert path(sign_in(client, "handler")) == "/queue"
    page = text(client.get("/account/security"))
    assert "You can add a second step to your sign-in" in page
    secret = secret_on(client.get("/account/security/set-up"))
    wrong = post_code(client, "/account/security/set-up", "000000")
    assert wrong.status_code == 422 and "That code is not right" in text(wrong)
    resp = post_code(client, "/account/security/set-up", pyotp.TOTP(secret).at(clock.now()))
    assert path(resp) == "/account/recovery-codes"
    assert len(re.findall(r"<li><code>", text(client.get("/account/recovery-codes")))) == 10
    assert "You have 10 recovery codes left." in text(client.get("/account/security"))
    # Once set up, always asked.
    clock.advance(minutes=1)
    again = app.test_client()
    assert path(sign_in(again, "handler")) == "/login/code"
    assert path(post_code(again, "/login/code", pyotp.TOTP(secret).at(clock.now()))) == "/queue"


def test_mfa_required_roles_is_a_setting(svc, users, clock):
    everyone = make_app(svc, MFA_REQUIRED_ROLES="handler,supervisor,professional,admin").test_client()
    assert path(sign_in(everyone, "handler")) == "/login/set-up"
    nobody = make_app(svc, MFA_REQUIRED_ROLES="").test_client()
    assert path(sign_in(nobody, "admin")) in ("/workflows", "/workflows/")
    off = make_app(svc, MFA_REQUIRED_ROLES="", MFA_VOLUNTARY=False).test_client()
    sign_in(off, "handler")
    assert "not used for your role" in text(off.get("/account/security"))
    assert off.get("/account/security/set-up").status_code == 403


def test_new_recovery_codes_replace_the_old(app, users, svc, clock):
    secret, codes = enrol(app.test_client(), clock)
    client = app.test_client()
    sign_in(client, "supervisor")
    clock.advance(seconds=30)
    post_code(client, "/login/code", pyotp.TOTP(secret).at(clock.now()))
    wrong = post_code(client, "/account/security/recovery-codes", "000000")
    assert path(wrong) == "/account/security"
    assert "Your recovery codes have not changed" in text(client.get("/account/security"))
    clock.advance(seconds=30)
    resp = post_code(client, "/account/security/recovery-codes", pyotp.TOTP(secret).at(clock.now()))
    assert path(resp) == "/account/recovery-codes"
    new = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", text(client.get("/account/recovery-codes")))
    assert len(new) == 10 and not set(new) & set(codes)
    other = app.test_client()
    sign_in(other, "supervisor")
    assert post_code(other, "/login/code", codes[0]).status_code == 401
    assert path(post_code(other, "/login/code", new[0])) == "/queue"
    assert ("mfa_codes_renewed", {"recovery_codes": 10}) in kinds(svc)


def test_an_administrator_resets_a_lost_phone(app, users, svc, clock):
    enrol(app.test_client(), clock)
    assert mfa.reset(svc, "cli:ops", "supervisor") is True
    row = user_row(svc, "supervisor")
    assert row.mfa_secret is None and row.mfa_enrolled_at is None
    with svc.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(mfa_recovery_codes)) == 0
    clock.advance(minutes=1)
    assert path(sign_in(app.test_client(), "supervisor")) == "/login/set-up"  # set up again
    assert kinds(svc)[-2][0] == "mfa_reset"


def test_the_cli_resets_a_lost_phone(app, users, svc, clock):
    enrol(app.test_client(), clock)
    runner = app.test_cli_runner()
    out = runner.invoke(args=["users", "reset-mfa", "supervisor"])
    assert out.exit_code == 0 and "removed for supervisor" in out.output, out.output
    assert user_row(svc, "supervisor").mfa_secret is None
    (event,) = [k for k in kinds(svc) if k[0] == "mfa_reset"]
    again = runner.invoke(args=["users", "reset-mfa", "supervisor"])
    assert again.exit_code == 0 and "had no authenticator app" in again.output
    nobody = runner.invoke(args=["users", "reset-mfa", "nobody"])
    assert nobody.exit_code == 1 and "nobody" in nobody.output


# -- what one person's sign-in leaves in the browser -------------------------------------------------------

def test_a_secret_shown_at_set_up_is_not_shown_to_the_next_person_on_that_browser(app, users, svc, clock):
    """A shared computer: A reaches the set-up page and walks away; B signs in with a password. B is
    given a new secret, never the one A saw (docs/security.md, "Sessions": nothing known before sign-in
    is of use after)."""
    from tests.conftest import make_user

    make_user(svc, "supervisor2", "supervisor", "CNH")
    client = app.test_client()
    assert path(sign_in(client, "supervisor")) == "/login/set-up"
    seen_by_a = secret_on(client.get("/login/set-up"))
    assert path(sign_in(client, "supervisor2")) == "/login/set-up"
    shown_to_b = secret_on(client.get("/login/set-up"))
    assert shown_to_b != seen_by_a
    assert path(post_code(client, "/login/set-up", pyotp.TOTP(shown_to_b).at(clock.now()))) == "/account/recovery-codes"
    assert user_row(svc, "supervisor2").mfa_secret not in (None, seen_by_a)


def test_a_planted_cookie_does_not_bring_its_secret_into_the_victims_sign_in(app, users, svc, clock):
    from tests.conftest import make_user

    make_user(svc, "supervisor2", "supervisor", "CNH")
    attacker = app.test_client()
    assert path(sign_in(attacker, "supervisor2")) == "/login/set-up"
    known = secret_on(attacker.get("/login/set-up"))
    victim = app.test_client()
    victim.set_cookie("session", attacker.get_cookie("session").value)
    assert path(sign_in(victim, "supervisor")) == "/login/set-up"
    assert secret_on(victim.get("/login/set-up")) != known


def test_a_pending_secret_is_shown_only_to_the_user_it_was_made_for(app, users, svc, clock):
    """Even if a session somehow carries another user's new secret, it is not used for this user."""
    from tests.conftest import make_user

    make_user(svc, "supervisor2", "supervisor", "CNH")
    first = app.test_client()
    assert path(sign_in(first, "supervisor2")) == "/login/set-up"
    made_for_b = secret_on(first.get("/login/set-up"))
    with first.session_transaction() as carried:
        kept = {key: carried[key] for key in carried if key.startswith("mfa_")}
    client = app.test_client()
    assert path(sign_in(client, "supervisor")) == "/login/set-up"
    with client.session_transaction() as planted:
        planted.update(kept)
    assert secret_on(client.get("/login/set-up")) != made_for_b


def test_recovery_codes_are_shown_only_to_the_user_they_were_made_for(app, users, svc, clock):
    other = app.test_client()
    assert path(sign_in(other, "supervisor")) == "/login/set-up"
    secret = secret_on(other.get("/login/set-up"))
    assert path(post_code(other, "/login/set-up", pyotp.TOTP(secret).at(clock.now()))) == "/account/recovery-codes"
    with other.session_transaction() as carried:
        kept = {key: carried[key] for key in carried if key.startswith("mfa_")}
    client = app.test_client()
    assert sign_in(client, "handler").status_code == 302 and signed_in(client)
    with client.session_transaction() as planted:
        planted.update(kept)
    resp = client.get("/account/recovery-codes")
    assert resp.status_code == 302 and "<code>" not in text(resp)


def test_the_second_step_ends_10_minutes_after_the_password_however_often_the_page_is_reloaded(
        app, users, svc, clock):
    """docs/security.md: "The half-made session lasts 10 minutes", from the password."""
    secret, _ = enrol(app.test_client(), clock)
    clock.advance(minutes=2)
    client = app.test_client()
    assert path(sign_in(client, "supervisor")) == "/login/code"
    for _ in range(3):  # reloaded every 3 minutes: 9 minutes after the password
        clock.advance(minutes=3)
        assert client.get("/login/code").status_code == 200
    token = csrf_token(client, "/login/code")  # the page as last shown, 9 minutes after the password
    clock.advance(minutes=1, seconds=1)
    resp = client.post("/login/code", data={"code": pyotp.TOTP(secret).at(clock.now()), "csrf_token": token})
    assert path(resp) == "/login"
    assert not signed_in(client)


# -- the code box: digits other than 0 to 9 ----------------------------------------------------------------
# What the code box of the second step takes (web/auth.py, CodeForm): digits other than 0 to 9 that a
# regular expression's \\d still matches ("١٢٣٤٥٦", full-width "１２３４５６") raised TypeError in the
# code's constant-time comparison: sign-in answered 503 "unavailable", and setting up an app or renewing
# recovery codes while signed in 500. Each is now 422 naming the code box, and nothing is counted or
# recorded (docs/security.md, "Hostile input").

NOT_ASCII_DIGITS = ["١٢٣٤٥٦", "１２３４５６", "۱۲۳۴۵۶", "१२३४५६"]


def _refused_beside_the_box(resp) -> None:
    assert resp.status_code == 422, (resp.status_code, text(resp)[:300])
    body = text(resp)
    assert "the digits 0 to 9" in body and 'href="#code"' in body  # the error summary links to the box


@pytest.mark.parametrize("code", NOT_ASCII_DIGITS)
def test_setting_up_at_sign_in_with_other_digits_is_422_not_503(client, users, svc, clock, code):
    assert path(sign_in(client, "supervisor")) == "/login/set-up"
    before = kinds(svc)
    _refused_beside_the_box(post_code(client, "/login/set-up", code))
    assert kinds(svc) == before
    # The right code, in ASCII, still works afterwards.
    secret = secret_on(client.get("/login/set-up"))
    assert path(post_code(client, "/login/set-up", pyotp.TOTP(secret).at(clock.now()))) == "/account/recovery-codes"


@pytest.mark.parametrize("code", NOT_ASCII_DIGITS)
def test_the_code_at_sign_in_with_other_digits_is_422_not_503(client, users, svc, clock, code):
    secret, _ = enrol(client, clock)
    sign_out(client)
    clock.advance(seconds=60)
    assert path(sign_in(client, "supervisor")) == "/login/code"
    before = kinds(svc)
    _refused_beside_the_box(post_code(client, "/login/code", code))
    assert kinds(svc) == before
    # The same code in full-width digits was not right either: only 0 to 9 are.
    right = pyotp.TOTP(secret).at(clock.now())
    _refused_beside_the_box(post_code(client, "/login/code", "".join(chr(ord(c) + 0xFEE0) for c in right)))
    assert path(post_code(client, "/login/code", right)) == "/queue"  # signed in: a supervisor's home


def test_setting_up_an_app_while_signed_in_with_other_digits_is_422_not_500(client, users, svc, clock):
    assert path(sign_in(client, "handler")) == "/queue"  # handlers may set one up (MFA_VOLUNTARY)
    _refused_beside_the_box(post_code(client, "/account/security/set-up", "１２３４５６"))


def test_renewing_recovery_codes_with_other_digits_changes_nothing_and_is_not_500(client, users, svc, clock):
    enrol(client, clock)
    before = kinds(svc)
    resp = client.post("/account/security/recovery-codes",
                       data={"code": "١٢٣٤٥٦", "csrf_token": csrf_token(client, "/account/security")})
    assert path(resp) == "/account/security"
    assert kinds(svc) == before
