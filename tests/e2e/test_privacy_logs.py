"""No patient identifier in any log line: a whole journey through the API and the worker, logged at
DEBUG, must not write the person's name, NHS number, date of birth, postcode, phone or summary."""
from __future__ import annotations

import logging

from rq import SimpleWorker

from ipoa.adapters.rq_queue import QUEUE_NAME
from ipoa.service import outbox
from tests.conftest import call_payload
from workers import jobs

SECRETS = ("Zebedee", "Quixotically", "9990000026", "1931-07-19", "LE15 6XY", "Wilhelmina",
           "7911123456", "7911 123456", "Distinctive-summary")


def test_a_journey_writes_no_identifier_to_the_logs(app, svc, tokens, caplog):
    caplog.set_level(logging.DEBUG)
    client = app.test_client()
    auth = {"Authorization": f"Bearer {tokens['handler']}"}
    body = call_payload(subject={"given_name": "Zebedee", "family_name": "Quixotically",
                                 "nhs_number": "9990000026", "date_of_birth": "1931-07-19",
                                 "postcode": "LE15 6XY"},
                        caller={"name": "Wilhelmina Caller", "phone": "07911 123456"},
                        summary="Distinctive-summary of the problem")
    created = client.post("/api/v1/calls", json=body, headers=auth)
    assert created.status_code == 201
    ref = created.get_json()["ref"]
    # Refused attempts log too: a bad body and a duplicate.
    assert client.post("/api/v1/calls", json={**body, "subject": {**body["subject"], "postcode": "LE15 6XYZ"}},
                       headers=auth).status_code == 422
    assert client.post("/api/v1/calls", json=body, headers=auth).status_code == 409
    for trigger, extra in (("start_triage", {}), ("refer", {"data": {"service": "CRT"}})):
        version = client.get(f"/api/v1/calls/{ref}", headers=auth).get_json()["version"]
        resp = client.post(f"/api/v1/calls/{ref}/events", headers=auth,
                           json={"trigger": trigger, "expected_version": version, **extra})
        assert resp.status_code == 200, resp.get_json()
    outbox.relay_once(svc, outbox.rq_send_queue(svc), block_seconds=0)
    jobs.use(svc)  # the jobs run with the test's services, as the worker's run with its own
    SimpleWorker([QUEUE_NAME], connection=svc.redis()).work(burst=True)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert ref in text  # the relay and the worker did log their work, by reference
    for secret in SECRETS:
        assert secret not in text, secret
