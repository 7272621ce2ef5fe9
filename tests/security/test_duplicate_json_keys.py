"""A JSON object with the same key twice (ipoa/entry/json_input.py): RFC 8259 leaves its meaning to the parser,
and Python's keeps the last value, so a proxy, a log or an audit tool that keeps the first would see another
request than the one acted on ({"centre": "ASC", ..., "centre": "CNH"}). The rule (docs/security.md, "Hostile
input"): a 400 naming the key, nothing stored."""
from __future__ import annotations

import json

from tests.helpers import call_payload
from tests.helpers.api import auth, row_counts


def _duplicated(key: str, first: object, body: dict) -> str:
    text = json.dumps(body)
    return "{" + json.dumps(key) + ": " + json.dumps(first) + ", " + text[1:]


def test_a_body_with_a_key_given_twice_is_400_naming_it_and_stores_nothing(client, svc, tokens):
    before = row_counts(svc)
    raw = _duplicated("centre", "ASC", call_payload())  # ..."centre": "CNH" last
    resp = client.post("/api/v1/calls?allow_duplicate=true", data=raw,
                       headers={**auth(tokens["handler"]), "Content-Type": "application/json"})
    assert resp.status_code == 400, (resp.status_code, resp.get_json())
    assert "centre" in resp.get_json()["error"].get("fields", {})
    assert row_counts(svc) == before


def test_a_nested_key_given_twice_is_refused_too(client, svc, tokens):
    body = call_payload()
    text = json.dumps(body).replace('"subject": {', '"subject": {"nhs_number": "9990000018", ', 1)
    before = row_counts(svc)
    resp = client.post("/api/v1/calls?allow_duplicate=true", data=text,
                       headers={**auth(tokens["handler"]), "Content-Type": "application/json"})
    assert resp.status_code == 400, (resp.status_code, resp.get_json())
    assert row_counts(svc) == before
