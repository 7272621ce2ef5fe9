"""Idempotency-Key (issue item 7): "A client whose connection dropped after the commit cannot retry
safely: a retry makes a second call." A retry with the same key returns the first answer (status and
body) and creates nothing; the same key with another request is a 422; a retry while the first runs is a
409; a change whose claim was taken over rolls back; keys are per user and purged after 24 hours. On
SQLite and PostgreSQL alike; the concurrent versions are in test_races.py (PostgreSQL)."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from ipoa.adapters import orm
from ipoa.api import idempotency as hooks
from ipoa.service import calls as call_service
from ipoa.service import idempotency as records
from tests.conftest import call_payload

KEY = "3f2b8a1e-5d4c-4b7a-9e61-0c8d2f7a1b55"


def post(client, token, url, body, key=KEY, **headers):
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post(url, json=body, headers={"Authorization": f"Bearer {token}", **headers})


def counts(svc) -> dict[str, int]:
    with svc.uow() as uow:
        return {t.name: uow.session.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (orm.calls, orm.referrals, orm.audit_events, orm.outbox, orm.timers)}


def key_rows(svc) -> list:
    with svc.uow() as uow:
        return uow.session.execute(select(orm.idempotency_keys).order_by(orm.idempotency_keys.c.id)).all()


def same_answer(first, again) -> None:
    assert again.status_code == first.status_code
    assert again.get_data() == first.get_data()  # byte for byte
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers


@pytest.fixture
def intake(client, tokens):
    def send(body=None, key=KEY, token="handler", query=""):
        return post(client, tokens[token], f"/api/v1/calls{query}", body or call_payload(), key=key)
    return send


# -- POST /calls ----------------------------------------------------------------------------------------

def test_a_retry_returns_the_first_answer_and_creates_nothing(intake, svc):
    first = intake()
    assert first.status_code == 201
    before = counts(svc)
    for _ in range(3):
        again = intake()
        same_answer(first, again)
        assert again.headers["Location"] == first.headers["Location"]
    assert counts(svc) == before and before["calls"] == 1
    (row,) = key_rows(svc)
    assert (row.key, row.method, row.path, row.status_code) == (KEY, "POST", "/api/v1/calls", 201)


def test_without_a_key_a_retry_is_a_new_request(intake, svc):
    assert intake(key=None).status_code == 201
    assert intake(key=None).status_code == 409  # the duplicate check, as before
    assert key_rows(svc) == []


def test_the_same_key_with_another_request_is_refused(intake, svc):
    assert intake().status_code == 201
    before = counts(svc)
    for other in (dict(body=call_payload(summary="Another fall.")), dict(query="?allow_duplicate=true")):
        resp = intake(**other)
        assert resp.status_code == 422, resp.get_json()
        err = resp.get_json()["error"]
        assert err["code"] == "idempotency_key_reused" and "different request" in err["message"]
    assert counts(svc) == before


def test_the_same_body_re_encoded_is_the_same_request(client, tokens, svc):
    import json

    body = call_payload()
    headers = {"Authorization": f"Bearer {tokens['handler']}", "Idempotency-Key": KEY,
               "Content-Type": "application/json"}
    first = client.post("/api/v1/calls", data=json.dumps(body), headers=headers)
    again = client.post("/api/v1/calls", data=json.dumps(body, indent=2, sort_keys=True), headers=headers)
    same_answer(first, again)
    assert counts(svc)["calls"] == 1


def test_keys_are_per_user(intake, svc):
    assert intake(token="handler").status_code == 201
    other = intake(token="supervisor", body=call_payload(subject={"nhs_number": "9990000034"}))
    assert other.status_code == 201 and "Idempotent-Replayed" not in other.headers
    assert counts(svc)["calls"] == 2 and len(key_rows(svc)) == 2


def test_an_error_answer_is_the_first_answer_too(intake, svc):
    intake(key=None)
    dup = intake()  # a possible duplicate: 409, nothing created
    assert dup.status_code == 409 and dup.get_json()["error"]["code"] == "possible_duplicate"
    same_answer(dup, intake())
    # Repeating it with ?allow_duplicate=true is another request: a new key.
    assert intake(query="?allow_duplicate=true").status_code == 422
    assert intake(key="another-key", query="?allow_duplicate=true").status_code == 201


def test_an_invalid_key_is_refused(intake, svc):
    for bad in ("", "x" * 201, "tab\there", "caf\u00e9"):
        resp = intake(key=bad)
        assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "invalid_idempotency_key"
    assert counts(svc)["calls"] == 0


# -- the connection dropped after the commit ----------------------------------------------------------------

def test_a_crash_after_the_commit_still_replays_the_answer(app, intake, svc, monkeypatch):
    """The intake commits, then the process fails before it can answer (here: an exception after
    log_call returns). The answer was written by the intake's own transaction, rebuilt from the call as
    that transaction left it, so the retry gets it and no second call is made: whether the failure was
    answered with a 500 (the app's error handler, after_request) or escaped the app (teardown only)."""
    real, committed = call_service.log_call, []

    def commit_then_crash(*args, **kwargs):
        committed.append(real(*args, **kwargs).ref)
        raise RuntimeError("connection to the client lost")

    monkeypatch.setattr(call_service, "log_call", commit_then_crash)
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    assert intake().status_code == 500
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", True)
    other = call_payload(subject={"nhs_number": "9990000042"})
    with pytest.raises(RuntimeError):
        intake(key="second-crash", body=other)
    monkeypatch.undo()
    assert counts(svc)["calls"] == 2

    for key, body, ref in ((KEY, None, committed[0]), ("second-crash", other, committed[1])):
        again = intake(key=key, body=body)
        assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
        answer = again.get_json()
        assert answer["ref"] == ref and (answer["state"], answer["version"]) == ("logged", 1)
        assert again.headers["Location"] == f"/api/v1/calls/{ref}"
    assert counts(svc)["calls"] == 2
    # The answer a normal intake gives, field for field: the same request for another person.
    normal = intake(key="control", body=call_payload(subject={"nhs_number": "9990000034"})).get_json()
    replayed = intake().get_json()
    assert set(normal) == set(replayed) and normal["recommended_route"] == replayed["recommended_route"]


def test_the_answer_written_with_the_change_is_the_views_answer(client, tokens, svc, monkeypatch):
    """For each keyed route the answer the change's transaction stores is byte for byte the view's: the
    hook after the view finds nothing to store (so a crash between the two loses nothing)."""
    stored = []
    monkeypatch.setattr(records, "store", lambda svc, claim_id, status, body: stored.append((status, body)))
    token = tokens["handler"]
    created = post(client, token, "/api/v1/calls", call_payload(), key="k1")
    ref = created.get_json()["ref"]
    post(client, token, f"/api/v1/calls/{ref}/events", {"trigger": "start_triage", "expected_version": 1}, key="k2")
    referred = post(client, token, f"/api/v1/calls/{ref}/events",
                    {"trigger": "refer", "expected_version": 2, "data": {"service": "CRT"}}, key="k3")
    rid = referred.get_json()["referrals"][0]["id"]
    accepted = post(client, token, f"/api/v1/calls/{ref}/referrals/{rid}/events",
                    {"trigger": "withdraw", "expected_version": 1, "reason": "Family now caring"}, key="k4")
    assert [created.status_code, referred.status_code, accepted.status_code] == [201, 200, 200]
    assert stored == []
    rows = {r.key: r for r in key_rows(svc)}
    assert rows["k1"].response_body == created.get_data(as_text=True)
    assert rows["k3"].response_body == referred.get_data(as_text=True)
    assert rows["k4"].response_body == accepted.get_data(as_text=True)


# -- events ---------------------------------------------------------------------------------------------------

def test_an_event_retry_returns_the_first_answer_not_a_version_conflict(app, client, tokens, svc, monkeypatch):
    token = tokens["handler"]
    ref = post(client, token, "/api/v1/calls", call_payload(), key=None).get_json()["ref"]
    url = f"/api/v1/calls/{ref}/events"
    start = {"trigger": "start_triage", "expected_version": 1}
    first = post(client, token, url, start)
    assert first.status_code == 200 and first.get_json()["version"] == 2
    same_answer(first, post(client, token, url, start))
    # Without the key the same request is a conflict: the key is what lets a client retry blindly.
    assert post(client, token, url, start, key=None).status_code == 409

    # The referral commits, then the answer is lost: the retry still gets it.
    real = call_service.fire_call_trigger

    def commit_then_crash(*args, **kwargs):
        real(*args, **kwargs)
        raise RuntimeError("lost")

    monkeypatch.setattr(call_service, "fire_call_trigger", commit_then_crash)
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    refer = {"trigger": "refer", "expected_version": 2, "data": {"service": "CRT"}}
    assert post(client, token, url, refer, key="refer-1").status_code == 500
    monkeypatch.undo()
    again = post(client, token, url, refer, key="refer-1")
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    body = again.get_json()
    assert (body["state"], body["version"], len(body["referrals"])) == ("referred", 3, 1)
    assert counts(svc)["referrals"] == 1

    rid = body["referrals"][0]["id"]
    rurl = f"/api/v1/calls/{ref}/referrals/{rid}/events"
    withdraw = {"trigger": "withdraw", "expected_version": 1, "reason": "Family now caring"}
    first = post(client, token, rurl, withdraw, key="withdraw-1")
    assert first.status_code == 200 and first.get_json()["referral"]["state"] == "withdrawn"
    before = counts(svc)
    same_answer(first, post(client, token, rurl, withdraw, key="withdraw-1"))
    assert counts(svc) == before


# -- in progress, abandoned, superseded, failed ------------------------------------------------------------

def test_a_retry_while_the_first_is_in_progress_gets_409_and_creates_nothing(app, tokens, svc, monkeypatch):
    entered, release = threading.Event(), threading.Event()
    real = call_service.log_call

    def slow(*args, **kwargs):
        entered.set()
        assert release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(call_service, "log_call", slow)
    answers = {}

    def first():
        answers["first"] = post(app.test_client(), tokens["handler"], "/api/v1/calls", call_payload())

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert entered.wait(30)
        retry = post(app.test_client(), tokens["handler"], "/api/v1/calls", call_payload())
        assert retry.status_code == 409, retry.get_json()
        assert retry.get_json()["error"]["code"] == "idempotency_in_progress" and retry.headers["Retry-After"] == "1"
        assert counts(svc)["calls"] == 0
    finally:
        release.set()
        thread.join(30)
    assert answers["first"].status_code == 201
    same_answer(answers["first"], post(app.test_client(), tokens["handler"], "/api/v1/calls", call_payload()))
    assert counts(svc)["calls"] == 1


def test_an_abandoned_claim_is_taken_over_after_the_lease(intake, svc, clock, users):
    """An attempt that died before committing anything left its claim behind (status NULL)."""
    records.claim(svc, user_id=users["handler"].id, key=KEY, method="POST", path="/api/v1/calls",
                  request_hash=_hash_of(intake))
    assert intake().status_code == 409  # still within the lease: it might be running
    clock.advance(seconds=records.IN_PROGRESS_LEASE.total_seconds() + 1)
    taken = intake()
    assert taken.status_code == 201 and counts(svc)["calls"] == 1
    same_answer(taken, intake())
    assert len(key_rows(svc)) == 1


def _hash_of(intake) -> str:
    """The request hash of intake()'s request, as the hook computes it."""
    seen = []
    real = records.claim

    def spy(svc, **kw):
        seen.append(kw["request_hash"])
        return records.Outcome("in_progress")

    records.claim = spy
    try:
        intake(key="spy")
    finally:
        records.claim = real
    return seen[0]


def test_a_change_whose_claim_was_taken_over_rolls_back(intake, svc, monkeypatch):
    """If a retry took the claim over (the row this attempt holds is gone), the change's own commit
    finds that out and rolls back: two attempts never both commit."""
    real_begin = records.begin

    def lose_the_claim(claim):
        with svc.uow() as uow:  # what a retry's takeover does: the row this attempt holds is replaced
            uow.session.execute(orm.idempotency_keys.delete().where(orm.idempotency_keys.c.id == claim.id))
            uow.commit()
        return real_begin(claim)

    monkeypatch.setattr(records, "begin", lose_the_claim)
    resp = intake()
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "idempotency_superseded"
    assert counts(svc) == {"calls": 0, "referrals": 0, "audit_events": 0, "outbox": 0, "timers": 0}


def test_a_failure_before_the_commit_releases_the_key(app, intake, svc, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(call_service, "log_call", broken)
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    assert intake().status_code == 500
    assert key_rows(svc) == []  # released: nothing was saved, so the retry runs afresh
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", True)
    with pytest.raises(RuntimeError):
        intake()
    assert key_rows(svc) == []  # the same when the error escapes (teardown)
    monkeypatch.undo()
    assert intake().status_code == 201 and counts(svc)["calls"] == 1


def test_records_are_kept_24_hours_then_purged(intake, svc, clock):
    intake()
    clock.advance(hours=23, minutes=59)
    assert records.purge(svc) == 0
    assert intake().headers.get("Idempotent-Replayed") == "true"
    clock.advance(minutes=2)
    assert records.purge(svc) == 1 and key_rows(svc) == []


def test_the_purge_runs_from_keyed_requests_now_and_then(intake, svc, clock, monkeypatch):
    intake()
    clock.advance(hours=25)
    monkeypatch.setattr(hooks, "_purged_at", 0.0)
    intake(key="later", body=call_payload(subject={"nhs_number": "9990000034"}))
    assert [r.key for r in key_rows(svc)] == ["later"]
    clock.advance(hours=25)
    intake(key="sooner", body=call_payload(subject={"nhs_number": "9990000042"}))  # within 10 minutes: no purge
    assert len(key_rows(svc)) == 2


def test_other_routes_ignore_the_key(client, tokens, svc):
    assert post(client, tokens["handler"], "/api/v1/routing/decide",
                {"need": "urgent_community_health", "urgency": "urgent", "at": "2026-11-23T10:00:00+00:00"}
                ).status_code == 200
    assert key_rows(svc) == []


def test_the_lease_outlasts_any_request():
    assert timedelta(seconds=60) <= records.IN_PROGRESS_LEASE and timedelta(hours=24) <= records.KEEP
