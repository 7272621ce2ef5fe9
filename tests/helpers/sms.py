"""Helpers for the texts a referral causes: a call with distinctive identifiers (IDENTIFIERS, which no
text may carry) logged, triaged and referred; its events relayed and sent through a real RQ worker, or
handled in-process; and a gateway that answers as scripted."""
from __future__ import annotations

from rq import SimpleWorker
from sqlalchemy import select

from ipoa.adapters.orm import outbox as outbox_table
from ipoa.adapters.rq_queue import QUEUE_NAME
from ipoa.service import calls as call_service
from ipoa.service import outbox
from tests.helpers import call_payload
from workers import jobs

# The date of birth and the postcode whole: "1931" or "LE15" alone turn up in a random hex id now and then
# ("CONSOLE15..."), as the other identifiers cannot.
IDENTIFIERS = ("Zebedee", "Quixotically", "9990000026", "1931-07", "LE15 6XY", "Wilhelmina", "7911123456",
               "Distinctive")


def referred_call(svc, actor, service="DN", **caller):
    body = call_payload(need="community_nursing", urgency="urgent",
                        subject={"given_name": "Zebedee", "family_name": "Quixotically",
                                 "nhs_number": "9990000026", "date_of_birth": "1931-07-19",
                                 "postcode": "LE15 6XY"},
                        caller={"name": "Wilhelmina Caller", "phone": "07911 123456", **caller},
                        summary="Distinctive-summary text")
    call = call_service.log_call(svc, actor, body, allow_duplicate=True)
    call_service.fire_call_trigger(svc, actor, call.ref, {"trigger": "start_triage", "expected_version": 1})
    return call_service.fire_call_trigger(svc, actor, call.ref, {
        "trigger": "refer", "expected_version": 2, "data": {"service": service},
        "reason": None if service == "DN" else "Known to this service"})


def drain(app, svc) -> None:
    """Relay committed events and run the worker until every job is done, the jobs with svc (as
    workers/worker.py runs them with its own)."""
    outbox.relay_once(svc, outbox.rq_send_queue(svc), block_seconds=0)
    jobs.use(svc)
    SimpleWorker([QUEUE_NAME], connection=svc.redis()).work(burst=True)


def handle_events(svc) -> None:
    """Handle every committed event in-process, without queueing the send jobs they cause."""
    with svc.uow() as uow:
        ids = list(uow.session.scalars(select(outbox_table.c.id).order_by(outbox_table.c.created_at)))
    outbox.handle(svc, ids)


class ScriptedGateway:
    """A gateway whose sends answer with the next scripted outcome (raised when it is an exception), and
    which says `already` when asked whether a text was submitted."""

    def __init__(self, outcomes, already=None):
        self.outcomes, self.already, self.sent = list(outcomes), already, []

    def send(self, to, body, status_callback=None):
        self.sent.append((to, body))
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def find_submitted(self, to, body, since):
        return self.already
