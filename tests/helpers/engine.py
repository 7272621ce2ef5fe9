"""Helpers for the engine on plain Call objects, pure: the shipped definitions in workflows/ loaded once,
routing decisions at a fixed instant, and calls made, started and put in triage with distinctive personal
details (which tests/unit/test_engine.py searches for in every outbox payload)."""
from __future__ import annotations

from datetime import UTC, date, datetime

from ipoa.config import REPO_ROOT
from ipoa.domain.catalogue import load_catalogue, load_workflow_files
from ipoa.domain.engine import Engine
from ipoa.domain.model import Call

WORKFLOWS = REPO_ROOT / "workflows"
CATALOGUE = load_catalogue(WORKFLOWS)
DIRECTORY = CATALOGUE.directory
ROUTING = CATALOGUE.routing
ENGINE = Engine(load_workflow_files(WORKFLOWS), DIRECTORY)

UTC = UTC
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # Monday 10:00 GMT: every weekday service is open

# Distinctive personal details.
GIVEN = "Ozymandias"
FAMILY = "Featherstonehaugh"
CALLER = "Zebedee Quillfeather"
NHS = "9990000026"
DOB = date(1931, 7, 19)
POSTCODE = "LE11 3AB"
PHONE = "+447911123456"
SUMMARY = "Found on kitchen floor beside the marmalade cupboard"


def decide(need: str, urgency: str = "urgent", at: datetime = NOW, postcode: str | None = POSTCODE):
    return ROUTING.decide(need, urgency, at, postcode)


def make_call(need: str = "urgent_community_health", urgency: str = "urgent", centre: str = "CNH",
              version: int = 1, ref: str = "QXZR-7KWM", now: datetime = NOW) -> Call:
    rec = ROUTING.decide(need, urgency, now, POSTCODE)
    return Call(ref=ref, centre=centre, caller_type="carer", caller_name=CALLER, caller_phone=PHONE,
                nhs_number=NHS, given_name=GIVEN, family_name=FAMILY, date_of_birth=DOB, postcode=POSTCODE,
                locality="Charnwood", out_of_area=False, need=need, urgency=urgency, summary=SUMMARY,
                workflow="call", workflow_version=version, logged_at=now, logged_by="handler",
                recommended=rec.to_dict(), consent="given")


def started(need: str = "urgent_community_health", urgency: str = "urgent", **kw) -> Call:
    call = make_call(need, urgency, **kw)
    ENGINE.start_call(call, actor="handler", now=kw.get("now", NOW))
    return call


def in_triage(need: str = "urgent_community_health", urgency: str = "urgent", **kw) -> Call:
    call = started(need, urgency, **kw)
    ENGINE.fire(call, "start_triage", actor="handler", now=NOW)
    return call
