"""OFF / ON by SMS (issue 13): read like the opt-out keywords, alone, forgiving case, spaces and stray
punctuation; never confused with STOP / START, which Twilio handles itself."""
from __future__ import annotations

import pytest

from ipoa.domain.sms.replies import COMMANDS, parse_reply
from ipoa.service.availability import sms_name


@pytest.mark.parametrize("body", ["OFF", "off", " Off ", "OFF.", "off!", "'off'", "\tOFF\n", "#OFF"])
def test_off_alone_is_read_forgivingly(body):
    reply = parse_reply(body)
    assert (reply.command, reply.ref, reply.problem) == ("OFF", None, None)


@pytest.mark.parametrize("body", ["ON", "on", "  On. ", "ON!", "(on)"])
def test_on_alone_is_read_forgivingly(body):
    reply = parse_reply(body)
    assert (reply.command, reply.ref, reply.problem) == ("ON", None, None)


@pytest.mark.parametrize("body", ["Off to a visit", "On my way", "OFF K7M4-QX9Z", "ON now", "OF", "ONN",
                                  "OFFF", "O N", "offline", "online"])
def test_anything_more_or_else_is_not_off_or_on(body):
    reply = parse_reply(body)
    assert reply.command == "UNKNOWN" and reply.problem == "unknown_command"


@pytest.mark.parametrize("body,command", [("STOP", "STOP"), ("START", "START"), ("stop", "STOP"),
                                          ("UNSTOP", "START"), ("CANCEL", "STOP"), ("YES", "START")])
def test_the_opt_out_keywords_are_unchanged(body, command):
    assert parse_reply(body).command == command


def test_off_and_on_are_commands():
    assert {"OFF", "ON"} <= set(COMMANDS)


@pytest.mark.parametrize("name,expected", [
    ("Nia Nurse", "Nia Nurse"),
    ("Zoë O'Brien-Smith", "Zo O'Brien-Smith"),
    ("Anna-Maria Featherstonehaugh Wolstenholme", "Anna-Maria Featherstonehaugh"),
    ("Abcdefghijklmnopqrstuvwxyzabcdefgh", "Abcdefghijklmnopqrstuvwxyzabcd"),
    ("李小龙", "Professional 7"),
    ("  - .Sam  Lead ", "Sam Lead"),
])
def test_names_in_texts_are_plain_and_short(name, expected):
    assert sms_name(name, 7) == expected
