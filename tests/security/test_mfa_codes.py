"""What the code box of the second step takes (web/auth.py, CodeForm): digits other than 0 to 9 that a
regular expression's \\d still matches ("١٢٣٤٥٦", full-width "１２３４５６") raised TypeError in the
code's constant-time comparison: sign-in answered 503 "unavailable", and setting up an app or renewing
recovery codes while signed in 500. Each is now 422 naming the code box, and nothing is counted or
recorded (docs/security.md, "Hostile input")."""
from __future__ import annotations

import pyotp
import pytest

from tests.conftest import csrf_token, sign_in
from tests.security.test_mfa import app, enrol, kinds, path, post_code, secret_on, sign_out, text  # noqa: F401

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
