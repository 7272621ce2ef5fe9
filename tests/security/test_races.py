"""Races (issue item 7), on PostgreSQL, where writers really run at once (SQLite serialises every
writing transaction: BEGIN IMMEDIATE, so these interleavings cannot happen there).

"10 simultaneous intakes for one new NHS number, without allow_duplicate, created 7 calls; over 7 rounds,
22 calls where at most 7 should exist": now exactly one per round, the rest 409 possible_duplicate.
Concurrent retries under one Idempotency-Key create one call (or make one transition)."""
from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor

import nhs_number
import pytest
from sqlalchemy import func, select, text

from ipoa.adapters import orm, repository
from ipoa.service import calls as call_service
from tests.conftest import call_payload

pytestmark = pytest.mark.postgres_only

ROUNDS, AT_ONCE = 7, 10


@pytest.fixture(autouse=True)
def postgres(svc):
    if svc.db.dialect.name != "postgresql":
        pytest.skip("SQLite serialises whole transactions (BEGIN IMMEDIATE); the race cannot happen")


def new_nhs_numbers(count: int, start: int = 9990001000) -> list[str]:
    """Valid (Modulus 11) NHS numbers from the never-issued 999 range."""
    out, n = [], start
    while len(out) < count:
        n += 1
        if nhs_number.is_valid(str(n)):
            out.append(str(n))
    return out


def at_once(app, n: int, send) -> list:
    """n requests released together (a barrier), each from its own thread and test client."""
    barrier = threading.Barrier(n)

    def one(i):
        client = app.test_client()
        barrier.wait(10)
        return send(client, i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def calls_for(svc, nhs: str) -> int:
    with svc.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(orm.calls).where(orm.calls.c.nhs_number == nhs))


def test_simultaneous_intakes_for_one_new_nhs_number_create_exactly_one_call(app, tokens, svc):
    headers = {"Authorization": f"Bearer {tokens['handler']}"}
    numbers = new_nhs_numbers(ROUNDS)
    for nhs in numbers:
        body = call_payload(subject={"nhs_number": nhs})
        answers = at_once(app, AT_ONCE, lambda client, i, body=body: client.post("/api/v1/calls", json=body,
                                                                                  headers=headers))
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [201] + [409] * (AT_ONCE - 1), [a.get_json() for a in answers]
        created = next(a.get_json()["ref"] for a in answers if a.status_code == 201)
        for a in answers:
            if a.status_code == 409:
                err = a.get_json()["error"]
                assert err["code"] == "possible_duplicate" and [c["ref"] for c in err["open_calls"]] == [created]
        assert calls_for(svc, nhs) == 1
    with svc.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(orm.calls)) == ROUNDS


def _hold_intake_lock(svc, nhs: str):
    """Another transaction holding the duplicate check's lock for this NHS number."""
    conn = svc.db.connect()
    trans = conn.begin()
    key = int.from_bytes(hashlib.sha256(nhs.encode()).digest()[:4], "big", signed=True)
    conn.execute(text("SELECT pg_advisory_xact_lock(CAST(:s AS integer), CAST(:k AS integer))"),
                 {"s": repository._INTAKE_LOCK_SPACE, "k": key})
    return conn, trans


def test_the_lock_is_taken_only_when_the_check_runs(svc, handler_actor):
    """An intake with allow_duplicate skips the check, so it neither takes nor waits for the lock; one
    without waits until the holder ends."""
    (nhs,) = new_nhs_numbers(1, start=9990002000)
    conn, trans = _hold_intake_lock(svc, nhs)
    try:
        with ThreadPoolExecutor(2) as pool:
            allowed = pool.submit(call_service.log_call, svc, handler_actor,
                                  call_payload(subject={"nhs_number": nhs}), allow_duplicate=True)
            assert allowed.result(timeout=10).ref  # not held up by the lock
            checked = pool.submit(call_service.log_call, svc, handler_actor, call_payload(subject={"nhs_number": nhs}))
            with pytest.raises(TimeoutError):
                checked.result(timeout=1)  # waiting for the lock
            trans.rollback()
            with pytest.raises(call_service.DuplicateSuspected):  # then checks, and sees the first call
                checked.result(timeout=10)
    finally:
        conn.close()
    assert calls_for(svc, nhs) == 1


def test_concurrent_retries_with_one_key_create_one_call(app, tokens, svc):
    headers = {"Authorization": f"Bearer {tokens['handler']}", "Idempotency-Key": "retry-storm-1"}
    body = call_payload(subject={"nhs_number": new_nhs_numbers(1, start=9990003000)[0]})
    answers = at_once(app, AT_ONCE, lambda client, i: client.post("/api/v1/calls", json=body, headers=headers))
    created = [a for a in answers if a.status_code == 201]
    busy = [a for a in answers if a.status_code == 409]
    assert len(created) + len(busy) == AT_ONCE and created, [a.get_json() for a in answers]
    assert all(b.get_json()["error"]["code"] == "idempotency_in_progress" for b in busy)
    assert len({a.get_data() for a in created}) == 1  # the first answer, and its replays
    assert sum("Idempotent-Replayed" not in a.headers for a in created) == 1
    with svc.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(orm.calls)) == 1
    # Once it is done, every retry gets the first answer.
    again = app.test_client().post("/api/v1/calls", json=body, headers=headers)
    assert again.status_code == 201 and again.get_data() == created[0].get_data()


def test_concurrent_retries_of_an_event_with_one_key_move_the_call_once(app, tokens, svc):
    auth = {"Authorization": f"Bearer {tokens['handler']}"}
    client = app.test_client()
    ref = client.post("/api/v1/calls", json=call_payload(), headers=auth).get_json()["ref"]
    headers = {**auth, "Idempotency-Key": "start-1"}
    start = {"trigger": "start_triage", "expected_version": 1}
    answers = at_once(app, AT_ONCE, lambda c, i: c.post(f"/api/v1/calls/{ref}/events", json=start, headers=headers))
    ok = [a for a in answers if a.status_code == 200]
    assert ok and all(a.status_code in (200, 409) for a in answers)
    assert all(a.get_json()["error"]["code"] == "idempotency_in_progress" for a in answers if a.status_code == 409)
    assert len({a.get_data() for a in ok}) == 1
    with svc.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(orm.audit_events)
                                  .where(orm.audit_events.c.call_ref == ref)) == 2  # logged, then started


def test_two_of_one_callers_phone_calls_abandoned_at_once_make_one_callback(svc, clock):
    """One number queued twice (rang on two lines, or again before the first call ended); both callers' hang-ups
    arrive together: one call awaiting a callback, the other leg matched to it (service/abandoned_calls.py)."""
    from ipoa.service import phone_calls
    from tests.helpers.voice import CNH_LINE

    for r in range(ROUNDS):
        caller = f"+4477009005{r:02d}"
        sids = [f"CA{r:02x}{side:x}" + "0" * 29 for side in (10, 11)]
        for sid in sids:
            phone_calls.incoming(svc, sid, CNH_LINE, caller)
            phone_calls.menu(svc, sid, "2", 1)
        clock.advance(seconds=30)
        barrier = threading.Barrier(len(sids))

        def hang_up(sid, barrier=barrier):
            barrier.wait(10)
            return phone_calls.left_queue(svc, sid, "hangup")

        with ThreadPoolExecutor(len(sids)) as pool:
            list(pool.map(hang_up, sids))
        with svc.uow() as uow:
            made = uow.session.scalars(select(orm.calls.c.ref).where(orm.calls.c.caller_phone == caller)).all()
            refs = uow.session.scalars(select(orm.phone_legs.c.call_ref).where(
                orm.phone_legs.c.call_sid.in_(sids))).all()
        assert len(made) == 1 and refs == [made[0]] * 2, (made, refs)


def test_the_log_a_call_form_sent_twice_at_once_logs_one_call(app, svc, users):
    """A double click that reaches two workers at the same moment: one POST logs the call, the other is told
    it is being logged (web/submissions.py); never two calls."""
    import re

    from tests.conftest import csrf_token, sign_in
    from tests.helpers.web import log_form

    clients = [app.test_client() for _ in range(2)]
    for c in clients:
        assert sign_in(c, "handler").status_code == 302
    page = clients[0].get("/calls/new").get_data(as_text=True)
    submission = re.search(r'name="submission" value="([0-9a-f]{32})"', page).group(1)
    forms = [log_form(csrf_token(c, "/calls/new"), nhs_number="", submission=submission) for c in clients]
    for r in range(ROUNDS):
        before = calls_for_nobody(svc)
        barrier = threading.Barrier(2)

        def send(i, barrier=barrier):
            barrier.wait(10)
            return clients[i].post("/calls/new", data=forms[i])

        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(send, range(2)))
        assert all(a.status_code == 302 for a in answers), [a.status_code for a in answers]
        assert calls_for_nobody(svc) == before + (1 if r == 0 else 0)


def calls_for_nobody(svc) -> int:
    """Calls logged without an NHS number."""
    with svc.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(orm.calls).where(orm.calls.c.nhs_number.is_(None)))
