"""The authenticator code's check (ipoa/service/mfa.py, `matching_step`) takes the digits 0 to 9 only: a regular
expression's \\d also matches "١٢٣٤٥٦" and full-width "１２３４５６", on which hmac.compare_digest raised TypeError.
Over HTTP the code box refuses them first (web/auth.py, CodeForm; tests/security/test_mfa.py); any other
caller of the service gets "not right"."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ipoa.service import mfa


@pytest.mark.parametrize("code", ["١٢٣٤٥٦", "１２３４５６"])
def test_a_code_in_other_digits_is_not_right_rather_than_an_error(code):
    assert mfa.matching_step(mfa.new_secret(), code, datetime(2026, 11, 23, 10, 0, tzinfo=UTC)) is None
