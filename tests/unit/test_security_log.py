"""The security log's pure helpers: what a typed username becomes, who the CLI is, how detail reads."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ipoa.domain.model import SecurityEvent
from ipoa.service import security

AT = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def test_kinds_are_the_issues_list_break_glass_reviews_and_rota_changes():
    assert set(security.KINDS) - set(security.SIGN_IN_KINDS) == {
        "sign_in", "sign_in_failed", "sign_out", "user_created", "user_changed", "user_deactivated",
        "user_reactivated", "role_changed", "password_changed", "token_issued", "token_revoked", "sms_opt_out",
        "sms_opt_in", "workflow_deployed", "config_deployed", "break_glass_reviewed", "rota_changed",
        "professional_changed", "availability_changed"}
    # Sign-in, sessions and multi-factor (docs/security.md).
    assert set(security.SIGN_IN_KINDS) == {
        "sign_in_refused", "account_locked", "account_unlocked", "session_ended", "mfa_challenged", "mfa_failed",
        "mfa_enrolled", "mfa_recovery_used", "mfa_codes_renewed", "mfa_reset"}


@pytest.mark.parametrize("typed, stored", [
    ("handler", "handler"),
    ("  handler  ", "handler"),
    ("evil\nforged line", "evilforged line"),  # a newline could forge a log line
    ("a\x1b[31mred", "a[31mred"),              # a terminal escape
    ("admin\u202etxt.exe", "admintxt.exe"),    # a right-to-left override disguises a name
    ("x" * 100, "x" * 64),
    ("\x00\x07", ""),
])
def test_printable_strips_control_and_format_characters_and_cuts_to_64(typed, stored):
    assert security.printable(typed) == stored


def test_the_cli_actor_is_the_operating_system_user(monkeypatch):
    monkeypatch.setattr(security.getpass, "getuser", lambda: "ops.jo")
    assert security.cli_actor() == "cli:ops.jo"


def test_the_cli_actor_without_an_operating_system_user_is_cli(monkeypatch):
    def no_user():
        raise OSError("no user name")

    monkeypatch.setattr(security.getpass, "getuser", no_user)
    assert security.cli_actor() == "cli"


def test_record_refuses_an_unknown_kind_and_fits_the_columns():
    class Uow:
        def __init__(self):
            self.events = []

        def add_event(self, event):
            self.events.append(event)

    uow = Uow()
    with pytest.raises(ValueError):
        security.record(uow, AT, "sign_in_maybe", "handler")
    event = security.record(uow, AT, security.SIGN_IN, "a" * 200, subject="b" * 200, client="c" * 200)
    assert (len(event.actor), len(event.subject), len(event.client)) == (80, 80, 64)
    assert uow.events == [event] and event.detail == {}


@pytest.mark.parametrize("kind, detail, text", [
    ("role_changed", {"from": "handler", "to": "supervisor"}, "role handler to supervisor"),
    ("user_changed", {"fields": ["display_name", "mobile"]}, "fields: display_name, mobile"),
    ("token_issued", {"token_id": 7}, "token id: 7"),
    ("sign_in", {}, ""),
])
def test_describe_reads_the_detail_as_one_line(kind, detail, text):
    assert security.describe(SecurityEvent(at=AT, kind=kind, actor="cli:ops", detail=detail)) == text
