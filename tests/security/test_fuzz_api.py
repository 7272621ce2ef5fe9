"""The JSON API fuzzed against its own OpenAPI document with schemathesis, in process (WSGI), on the suite's
database (SQLite, or PostgreSQL in CI's second pass): every operation, valid and invalid inputs, and no
answer may be a 5xx or differ from the document (status code, content type, body schema).

Valid inputs can succeed: the document's enums carry the real centres, needs, services and triggers, and
a path's call reference is swapped for a real call's most of the time (a handler's calls, and one
referred so that its referral id is real too), so the fuzzing reaches past 404 into the use cases.
Bounded: FUZZ_EXAMPLES generated cases per operation and phase, each within a deadline; the whole test
takes well under three minutes on CI's two cores (docs/security.md, "Fuzzing")."""
from __future__ import annotations

import json
import os
from datetime import timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ipoa.api import openapi
from ipoa.domain.catalogue import load_catalogue
from ipoa.service import calls as call_service
from ipoa.service.calls import Actor
from tests.conftest import WORKFLOWS, call_payload

# Generated cases per operation in the fuzzing phase (the coverage phase adds its own boundary cases).
# IPOA_FUZZ_EXAMPLES=300 IPOA_FUZZ_RANDOM=1 for a longer, differently seeded hunt by hand.
FUZZ_EXAMPLES = int(os.environ.get("IPOA_FUZZ_EXAMPLES") or 100)
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]
# Supervisors' operations are fuzzed with a supervisor's token (a handler would only ever get 403).
SUPERVISOR_PATHS = ("/reroute", "/escalate", "/access-log")


@pytest.fixture
def fuzz_world(svc, users, tokens):
    """Calls for the fuzzing to act on: one logged, one in triage, one referred to district nursing."""
    handler = Actor("handler", "handler", "CNH")
    refs, referrals = [], {}
    for steps in (0, 1, 2):
        ref = call_service.log_call(svc, handler, call_payload(), allow_duplicate=True).ref
        if steps >= 1:
            call_service.fire_call_trigger(svc, handler, ref, {"trigger": "start_triage", "expected_version": 1})
        if steps >= 2:
            call = call_service.fire_call_trigger(svc, handler, ref, {
                "trigger": "refer", "expected_version": 2, "data": {"service": "DN"}, "reason": "fuzz"})
            referrals[ref] = call.referrals[0].id
        refs.append(ref)
    return {"refs": refs, "referrals": referrals, "tokens": tokens}


def _document() -> dict:
    """The document the API serves, built from the workflows folder (no database needed at import)."""
    return openapi.document_for(load_catalogue(WORKFLOWS))


schema = schemathesis.openapi.from_dict(_document())
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                                max_examples=FUZZ_EXAMPLES, deterministic=not os.environ.get("IPOA_FUZZ_RANDOM"),
                                database="none")
schema.config.phases.update(phases=["examples", "coverage", "fuzzing"])


def test_the_fuzzed_document_is_the_one_served(client, tokens):
    served = client.get("/api/v1/openapi.json", headers={"Authorization": f"Bearer {tokens['handler']}"})
    assert served.get_json() == json.loads(json.dumps(_document()))


def _real_path(case, world) -> None:
    """Most of the time, a real call (and its real referral) instead of the generated reference: valid
    references reach the use cases; the rest still probe the 404 path with whatever was generated."""
    params = case.path_parameters or {}
    ref = params.get("ref")
    if not isinstance(ref, str) or len(ref) % 4 == 3:
        return
    real = world["refs"][len(ref) % len(world["refs"])]
    if "referral_id" in params:
        real = next(iter(world["referrals"]))
        params["referral_id"] = world["referrals"][real]
    params["ref"] = real


# What the hostile tester sent: NUL, another control character, a bidirectional override, a lone surrogate.
HOSTILE = ("\x00", "\x1b", "\u202e", "\u2066", "\ud800", "\x85")


def _spike(body) -> None:
    """One time in four, a hostile character in one of the body's strings (hypothesis rarely generates
    them by itself, and they are what reached PostgreSQL as 500s)."""
    if len(repr(body)) % 4 != 1:
        return
    stack, leaves = [body], []
    while stack:
        item = stack.pop()
        children = item.items() if isinstance(item, dict) else enumerate(item) if isinstance(item, list) else ()
        for key, value in children:
            if isinstance(value, str):
                leaves.append((item, key))
            elif isinstance(value, (dict, list)):
                stack.append(value)
    if leaves:
        parent, key = leaves[len(repr(body)) % len(leaves)]
        parent[key] = parent[key] + HOSTILE[len(parent[key]) % len(HOSTILE)]


def _steer(case, client, world) -> None:
    """Two times in three, nudge a generated body towards one that succeeds, keeping its free text (where
    NUL and other hostile characters hide): the handler's own centre and no identifiers to get wrong on
    intake; the record's current version on triggers. So generated text reaches the database."""
    body = case.body
    if not isinstance(body, dict) or len(repr(body)) % 3 == 0:
        return
    _spike(body)
    path = case.operation.path
    auth = {"Authorization": f"Bearer {world['tokens']['handler']}"}
    if path == "/calls":
        body["centre"] = "CNH"
        if isinstance(body.get("subject"), dict):
            for key in ("nhs_number", "postcode", "date_of_birth"):
                body["subject"].pop(key, None)
        if isinstance(body.get("caller"), dict):
            body["caller"].pop("phone", None)
            body["caller"]["wants_updates"] = False
        return
    ref = (case.path_parameters or {}).get("ref")
    if "expected_version" not in body or ref not in world["refs"]:
        return
    current = client.get(f"/api/v1/calls/{ref}", headers=auth).get_json() or {}
    if "referral_id" in case.path_parameters:
        versions = [r["version"] for r in current.get("referrals", [])
                    if r["id"] == case.path_parameters["referral_id"]]
        body["expected_version"] = versions[0] if versions else body["expected_version"]
    elif "version" in current:
        body["expected_version"] = current["version"]


@pytest.mark.timeout(300)
@schema.parametrize()
@settings(deadline=timedelta(seconds=5), suppress_health_check=list(HealthCheck), print_blob=True)
def test_api_fuzzing_finds_no_server_errors_and_no_schema_violations(case, app, fuzz_world):
    _real_path(case, fuzz_world)
    _steer(case, app.test_client(), fuzz_world)
    role = "supervisor" if any(p in case.operation.path for p in SUPERVISOR_PATHS) else "handler"
    headers = {"Authorization": f"Bearer {fuzz_world['tokens'][role]}"}
    resp = case.call_and_validate(app=app, headers=headers, checks=CHECKS)
    if os.environ.get("IPOA_FUZZ_DEBUG"):  # -s: one line per request, for the figures in docs/security.md
        print("FUZZ", case.operation.label, resp.status_code, flush=True)
