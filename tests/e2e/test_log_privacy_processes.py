"""No patient identifier in any log of the real processes, even when the database refuses a write.

The web app (gunicorn serving `ipoa:create_app()`, its access log on), the RQ worker, the outbox relay and
the SLA scheduler run as in production against the suite's database and Redis, logging at DEBUG into
files. Test-only triggers make the database fail a call's intake, an event on a call and an inbound SMS
(twice: from an unknown mobile, and a professional's DECLINE whose reason names the patient); on
PostgreSQL the trigger's error echoes the whole row in its DETAIL, as a constraint violation does. A
normal call goes through the relay and the worker, the scheduler hands an overdue clock to the worker,
a request carries identifiers in its query string (gunicorn's access log) and a job carries them in its
arguments (RQ's own log lines). None of the identifiers, in any way of writing them, may appear in any
process's output; the web app's output must show the errors it logged, so the test cannot pass on an
empty log. Every person, number and postcode here is invented: NHS numbers from the never-issued 999
range, phone numbers from Ofcom's drama range."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time

import pytest
import requests
from rq import Queue
from sqlalchemy import func, select, text
from twilio.request_validator import RequestValidator

from ipoa.adapters.orm import outbox, sms_messages, timers
from ipoa.adapters.rq_queue import QUEUE_NAME
from ipoa.service import calls as call_service
from tests import processes
from tests.conftest import call_payload, make_token, make_user
from tests.helpers.rota import add_on_duty

MARKER = "FORCE-DB-ERROR"
FORCED_SID = "SM" + "f0" * 16  # the inbound SMS whose sms_inbound row the database refuses
AUTH_TOKEN = "test-twilio-auth-token"

SUBJECT = {"nhs_number": "999 000 0034", "given_name": "Zebedee", "family_name": "Quixotically",
           "date_of_birth": "1931-07-19", "postcode": "le15 6xy", "address_line_1": "7 Quincewhistle Lane",
           "town": "Snodbury Parva"}
CALLER = {"type": "carer", "name": "Wilhelmina Snodgrass", "phone": "07700 900123"}
SUMMARY = "Marmalade-kettle incident; Zebedee Quixotically (NHS 999 000 0034, born 19/07/1931) at LE15 6XY"
IDENTIFIERS_TEXT = ("patient Zebedee Quixotically NHS 999-000-0034 born 19 July 1931 (1931-07-19) of LE156XY, "
                    "carer Wilhelmina Snodgrass on +44 7700 900123")
SMS_FROM = "+447700900987"     # an unknown mobile
PROF_MOBILE = "07700 900456"   # the duty nurse's

# Each identifier, in the ways it is written; compared case-insensitively.
FORBIDDEN = (
    "Zebedee", "Quixotically", "Wilhelmina", "Snodgrass", "Marmalade-kettle", "Quincewhistle", "Snodbury",
    "9990000034", "999 000 0034", "999-000-0034",
    "1931-07-19", "19/07/1931", "19 July 1931", "19 Jul 1931", "19310719",
    "LE15 6XY", "LE156XY", "LE15+6XY", "LE15%206XY",
    "07700 900123", "07700900123", "+447700900123", "+44 7700 900123", "7700900123", "7700 900123",
    "07700 900987", "07700900987", "+447700900987", "7700900987",
    "07700 900456", "07700900456", "+447700900456", "7700900456",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _create_triggers(svc) -> None:
    """Refuse inserts carrying the marker (calls, audit_events) and the one forced inbound SMS. SQLite's
    RAISE is a constraint error, which the inbound SMS handler takes for a duplicate delivery and answers
    quietly, so that trigger fails another way (json() of non-JSON)."""
    if svc.db.dialect.name == "postgresql":
        statements = [
            """CREATE OR REPLACE FUNCTION test_force_db_error() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN
                 RAISE EXCEPTION 'forced by test' USING DETAIL = 'Failing row contains ' || NEW::text || '.';
               END $$""",
            f"""CREATE TRIGGER test_force_db_error_calls BEFORE INSERT ON calls FOR EACH ROW
                WHEN (NEW.summary LIKE '%{MARKER}%') EXECUTE FUNCTION test_force_db_error()""",
            f"""CREATE TRIGGER test_force_db_error_audit BEFORE INSERT ON audit_events FOR EACH ROW
                WHEN (NEW.reason LIKE '%{MARKER}%') EXECUTE FUNCTION test_force_db_error()""",
            f"""CREATE TRIGGER test_force_db_error_sms_inbound BEFORE INSERT ON sms_inbound FOR EACH ROW
                WHEN (NEW.provider_sid = '{FORCED_SID}') EXECUTE FUNCTION test_force_db_error()""",
        ]
    else:
        statements = [
            f"""CREATE TRIGGER test_force_db_error_calls BEFORE INSERT ON calls
                WHEN NEW.summary LIKE '%{MARKER}%' BEGIN SELECT RAISE(ABORT, 'forced by test'); END""",
            f"""CREATE TRIGGER test_force_db_error_audit BEFORE INSERT ON audit_events
                WHEN NEW.reason LIKE '%{MARKER}%' BEGIN SELECT RAISE(ABORT, 'forced by test'); END""",
            f"""CREATE TRIGGER test_force_db_error_sms_inbound BEFORE INSERT ON sms_inbound
                WHEN NEW.provider_sid = '{FORCED_SID}' BEGIN SELECT json('forced by test'); END""",
        ]
    with svc.db.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


def _drop_triggers(svc) -> None:
    postgres = svc.db.dialect.name == "postgresql"
    with svc.db.begin() as conn:
        for name, table in (("calls", "calls"), ("audit", "audit_events"), ("sms_inbound", "sms_inbound")):
            on = f" ON {table}" if postgres else ""
            conn.execute(text(f"DROP TRIGGER IF EXISTS test_force_db_error_{name}{on}"))
        if postgres:
            conn.execute(text("DROP FUNCTION IF EXISTS test_force_db_error()"))


def _stop(procs) -> None:
    """SIGTERM (each stops cleanly and logs it), then SIGKILL whatever is left of each process group."""
    procs = [p for p in procs if p is not None]
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 15
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    processes.kill(*procs)


def _count(svc, table, *where) -> int:
    with svc.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(table).where(*where))


def _tail(path, n: int = 4000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else "(no output)"


@pytest.mark.timeout(240)
def test_forced_database_errors_write_no_identifier_to_any_process_log(svc, tmp_path, handler_actor):
    token = make_token(svc, make_user(svc, "handler", "handler", "CNH"))
    add_on_duty(svc, name="Nia Nurse", service="DN", mobile=PROF_MOBILE)
    # Logged on the test clock, days ago in real time: its clocks are overdue, so the scheduler hands them
    # to the worker, whose breach goes through the relay.
    call_service.log_call(svc, handler_actor, call_payload(subject=SUBJECT, caller=CALLER, summary=SUMMARY),
                          allow_duplicate=True)

    base = f"http://127.0.0.1:{_free_port()}"
    env = {"TWILIO_AUTH_TOKEN": AUTH_TOKEN, "PUBLIC_BASE_URL": base, "LOG_LEVEL": "DEBUG",
           "PYTHONUNBUFFERED": "1"}
    logs = {name: tmp_path / f"{name}.log" for name in ("web", "worker", "relay", "scheduler")}
    procs: dict[str, subprocess.Popen] = {}
    auth = {"Authorization": f"Bearer {token}"}
    calls_url = f"{base}/api/v1/calls?allow_duplicate=true"
    inbound_url = f"{base}/webhooks/twilio/sms/inbound"
    postgres = svc.db.dialect.name == "postgresql"

    def sms(sid: str, sender: str, body: str) -> requests.Response:
        form = {"MessageSid": sid, "AccountSid": "AC" + "0" * 32, "From": sender, "To": "+447700900000",
                "Body": body}
        signature = RequestValidator(AUTH_TOKEN).compute_signature(inbound_url, form)
        return requests.post(inbound_url, data=form, headers={"X-Twilio-Signature": signature}, timeout=30)

    _drop_triggers(svc)  # left behind by a run that was killed
    _create_triggers(svc)
    try:
        procs["web"] = processes.start(
            "gunicorn", svc, args=["--bind", base.removeprefix("http://"), "--workers", "1", "--threads", "2",
                                   "--access-logfile", "-", "--error-logfile", "-", "--log-level", "debug",
                                   "--no-control-socket",
                                   "ipoa:create_app()"],
            log_path=logs["web"], **env)
        for name in ("worker", "relay", "scheduler"):
            procs[name] = processes.start(f"workers.{name}", svc, log_path=logs[name], **env)

        def web_up() -> bool:
            assert procs["web"].poll() is None, f"gunicorn exited:\n{_tail(logs['web'])}"
            try:
                return requests.get(f"{base}/healthz", timeout=5).status_code == 200
            except requests.RequestException:  # not listening yet, or still loading the app
                return False
        processes.wait_until(web_up, 60, "gunicorn to answer")

        # (a) Intake refused by the database.
        body = call_payload(need="community_nursing", subject=SUBJECT, caller=CALLER,
                            summary=f"{MARKER} {SUMMARY}")
        assert requests.post(calls_url, json=body, headers=auth, timeout=30).status_code == 500
        # A NUL byte in a text, which PostgreSQL refuses, no longer reaches the database: refused as
        # invalid (docs/security.md, "Headers and hostile input"), nothing logged about it.
        nul = requests.post(calls_url, json={**body, "summary": f"{SUMMARY} \x00"}, headers=auth, timeout=30)
        assert nul.status_code == 422

        # (b) A call logged, then an event on it whose audit row the database refuses.
        body = call_payload(need="community_nursing", subject=SUBJECT, caller=CALLER, summary=SUMMARY)
        created = requests.post(calls_url, json=body, headers=auth, timeout=30)
        assert created.status_code == 201, created.text
        ref = created.json()["ref"]
        events = f"{base}/api/v1/calls/{ref}/events"
        cancel = {"trigger": "cancel", "expected_version": 1, "reason": f"{MARKER} {IDENTIFIERS_TEXT}"}
        assert requests.post(events, json=cancel, headers=auth, timeout=30).status_code == 500
        for step in ({"trigger": "start_triage", "expected_version": 1},
                     {"trigger": "refer", "expected_version": 2, "data": {"service": "DN"},
                      "reason": "Out of area; the duty lead agreed to take it."}):
            resp = requests.post(events, json=step, headers=auth, timeout=30)
            assert resp.status_code == 200, resp.text

        # (c) Inbound texts: the unknown mobile's row refused; the nurse's DECLINE naming the patient refused
        # when its audit row is written.
        assert sms(FORCED_SID, SMS_FROM, f"DECLINE {ref} {IDENTIFIERS_TEXT}").status_code == 500
        assert sms("SM" + "a1" * 16, "+447700900456",
                   f"DECLINE {ref} {MARKER} {IDENTIFIERS_TEXT}").status_code == 500

        # Identifiers in a query string (gunicorn's access log) and in a job's arguments (RQ's log lines).
        assert requests.get(f"{base}/healthz", timeout=10, params={
            "nhs": "9990000034", "dob": "1931-07-19", "postcode": "LE15 6XY", "phone": "07700900123"}).ok
        job = Queue(QUEUE_NAME, connection=svc.redis()).enqueue(
            "workers.jobs.send_sms", "9990000034 1931-07-19 LE15 6XY +447700900123")

        # The relay and the worker text the nurse about the referral; the scheduler hands the overdue clocks
        # to the worker; the worker runs the job.
        processes.wait_until(lambda: _count(svc, sms_messages, sms_messages.c.call_ref == ref,
                                            sms_messages.c.status == "sent") >= 1, 60, "the referral text")
        processes.wait_until(lambda: _count(svc, timers, timers.c.outcome == "breached") >= 1, 60,
                             "an overdue clock to fire")
        processes.wait_until(lambda: job.get_status(refresh=True) == "finished", 60, "the job with identifiers")
        processes.wait_until(lambda: _count(svc, outbox, outbox.c.processed_at.is_(None)) == 0, 60,
                             "the relay to catch up")
    finally:
        try:
            _stop(procs.values())
        finally:
            _drop_triggers(svc)

    output = {name: path.read_text(errors="replace") for name, path in logs.items()}
    for name, out in output.items():
        assert out.strip(), f"{name} wrote nothing"
        lowered = out.lower()
        for secret in FORBIDDEN:
            assert secret.lower() not in lowered, f"{secret!r} in the {name} log:\n{out}"
        assert MARKER.lower() not in lowered, f"the summary or reason text leaked into the {name} log"

    web = output["web"]
    # The errors were logged, with their tracebacks, by the web app ...
    assert web.count("Traceback (most recent call last)") >= 4, web
    for where in ("Exception on /api/v1/calls [POST]", f"Exception on /api/v1/calls/{ref}/events [POST]",
                  "Exception on /webhooks/twilio/sms/inbound [POST]"):
        assert where in web, where
    errors = re.findall(r"^sqlalchemy\.exc\.\w+: .*$", web, re.MULTILINE)  # each traceback's last line
    forced = ("forced by test", "malformed JSON")  # the triggers' errors
    assert len(errors) >= 4 and all(any(f in e for f in forced) for e in errors), errors
    if postgres:  # the DETAIL was there and lost its values, and only them
        assert web.count("DETAIL:  Failing row contains [row].\nCONTEXT:  PL/pgSQL function") >= 4, web
    # ... and the identifiers in the query string were redacted, not missing.
    assert "GET /healthz?nhs=[nhs-number]&dob=[date]&postcode=[postcode]&phone=[phone]" in web, web
    worker = output["worker"]
    assert "workers.jobs.send_sms(" in worker and "[nhs-number] [date] [postcode] [phone]" in worker, worker
    assert "outbox relay started" in output["relay"]
    assert "timer scheduler started" in output["scheduler"]
