"""Helpers for the JSON API (/api/v1) through the Flask test client, with the `api` fixture of
tests/conftest.py: logging a call, firing triggers, reading a call back, checking an error's shape."""
from __future__ import annotations

from sqlalchemy import func, select

from ipoa.adapters import orm
from tests.helpers import call_payload


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def row_counts(svc) -> dict[str, int]:
    with svc.uow() as uow:
        return {t.name: uow.session.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (orm.calls, orm.referrals, orm.audit_events, orm.outbox)}


def log(api, as_: str = "handler", query: str = "", **overrides) -> dict:
    resp = api("POST", f"/api/v1/calls{query}", call_payload(**overrides), as_=as_)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def fire(api, ref: str, trigger: str, version: int, *, data=None, reason=None, as_: str = "handler"):
    body = {"trigger": trigger, "expected_version": version}
    if data is not None:
        body["data"] = data
    if reason is not None:
        body["reason"] = reason
    return api("POST", f"/api/v1/calls/{ref}/events", body, as_=as_)


def fire_ok(api, ref: str, trigger: str, version: int, **kw) -> dict:
    resp = fire(api, ref, trigger, version, **kw)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def fire_referral(api, ref: str, referral_id: str, trigger: str, version: int, reason=None):
    body = {"trigger": trigger, "expected_version": version}
    if reason is not None:
        body["reason"] = reason
    return api("POST", f"/api/v1/calls/{ref}/referrals/{referral_id}/events", body)


def get_call(api, ref: str, as_: str = "handler") -> dict:
    resp = api("GET", f"/api/v1/calls/{ref}", as_=as_)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def in_triage(api, **overrides) -> str:
    """A call logged (urgent community health by day: recommended CRT) and in triage at version 2."""
    ref = log(api, **overrides)["ref"]
    assert fire_ok(api, ref, "start_triage", 1)["state"] == "in_triage"
    return ref


def referred(api, service: str = "CRT") -> tuple[str, str]:
    """A call referred to the recommended CRT; returns (ref, referral id)."""
    ref = in_triage(api)
    body = fire_ok(api, ref, "refer", 2, data={"service": service})
    assert body["state"] == "referred" and len(body["referrals"]) == 1
    return ref, body["referrals"][0]["id"]


def error_of(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True))
    err = resp.get_json()["error"]
    assert err["code"] == code, err
    return err
