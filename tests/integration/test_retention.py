"""Records management (`flask --app ipoa retention run`, service/retention.py): closed calls whose last
contact is more than the retention period ago (default 8 years) are pseudonymised: identifiers removed,
codes and timings kept (reports still count them), each call audited, the run recorded as a security
event; nothing deleted, and a second run changes nothing. And `flask --app ipoa access report REF`, who
has viewed a call (a subject access request)."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from ipoa.adapters import orm
from ipoa.domain.errors import VersionConflict
from ipoa.domain.reporting.period import Period, Scope
from ipoa.service import audit as audit_service
from ipoa.service import calls as call_service
from ipoa.service import records, retention
from ipoa.service.calls import Actor
from ipoa.service.reports import build_report
from tests.conftest import DEFAULT_NOW, call_payload
from tests.helpers.web import service_fires, signed_in, text

HANDLER = Actor(username="handler", role="handler", centre="CNH")
SUPERVISOR = Actor(username="supervisor", role="supervisor", centre="CNH")
NINE_YEARS_AGO = datetime(2017, 11, 23, 10, 0, tzinfo=UTC)  # a Thursday
SEVEN_YEARS_AGO = datetime(2019, 11, 25, 10, 0, tzinfo=UTC)  # a Monday

IDENTIFIERS = ("nhs_number", "given_name", "family_name", "date_of_birth", "postcode", "address_line_1", "town",
               "caller_name", "caller_phone", "updates_to", "summary")
KEPT = ("ref", "centre", "origin_centre", "centre_path", "caller_type", "need", "urgency", "state", "workflow",
        "workflow_version", "recommended", "locality", "out_of_area", "consent", "consent_recorded_by",
        "logged_at", "logged_by", "queued_at", "updated_at", "closed_at", "breach", "breached_at")


def fire(svc, ref: str, trigger: str, **payload) -> None:
    call, _ = call_service.get_call(svc, ref)
    call_service.fire_call_trigger(svc, HANDLER, ref, {"trigger": trigger, "expected_version": call.version,
                                                        **payload})


def log(svc, **overrides) -> str:
    payload = call_payload(caller={"type": "professional", "name": "Dr Jo GP", "phone": "07700 900123",
                                   "wants_updates": True},
                           subject={"address_line_1": "12 Station Road", "town": "Loughborough"}, **overrides)
    return call_service.log_call(svc, HANDLER, payload, allow_duplicate=True).ref


def cancelled(svc, clock, at: datetime) -> str:
    clock.set(at)
    ref = log(svc)
    clock.advance(minutes=5)
    fire(svc, ref, "cancel", reason="Caller rang back: no longer needed")
    return ref


def declined_then_resolved(svc, clock, at: datetime) -> str:
    """Referred to CRT, declined with a reason (the referral's outcome_reason), then resolved and closed."""
    clock.set(at)
    ref = log(svc)
    fire(svc, ref, "start_triage")
    fire(svc, ref, "refer", data={"service": "CRT"}, reason="Known to this service")
    clock.advance(minutes=10)
    call, _ = call_service.get_call(svc, ref)
    service_fires(svc, ref, call.referrals[0].id,
                                       {"trigger": "decline", "expected_version": call.referrals[0].version,
                                        "reason": "Already on our caseload"})
    clock.advance(minutes=10)
    fire(svc, ref, "resolve", reason="Advice given")
    fire(svc, ref, "close")
    return ref


@pytest.fixture
def calls(svc, users, clock):
    """Closed 9 years ago: `old` (cancelled) and `referred` (a declined referral, then resolved). Closed
    7 years ago: `recent`. Logged 9 years ago and still open: `open`. Closed 9 years ago but its referral
    updated 7 years ago: `late_contact`. The clock is then back to today."""
    out = {"old": cancelled(svc, clock, NINE_YEARS_AGO),
           "referred": declined_then_resolved(svc, clock, NINE_YEARS_AGO + timedelta(hours=1)),
           "recent": cancelled(svc, clock, SEVEN_YEARS_AGO)}
    clock.set(NINE_YEARS_AGO + timedelta(hours=2))
    out["open"] = log(svc)
    out["late_contact"] = declined_then_resolved(svc, clock, NINE_YEARS_AGO + timedelta(hours=3))
    with svc.uow() as uow:
        call_id = uow.session.scalar(select(orm.calls.c.id).where(orm.calls.c.ref == out["late_contact"]))
        uow.session.execute(update(orm.referrals).where(orm.referrals.c.call_id == call_id)
                            .values(updated_at=SEVEN_YEARS_AGO))
        uow.commit()
    clock.set(DEFAULT_NOW)
    return out


def snapshot(svc, ref: str) -> dict:
    call, history = call_service.get_call(svc, ref)
    return {"call": {c.name: getattr(call, c.name) for c in orm.calls.columns},
            "referrals": [{c.name: getattr(r, c.name) for c in orm.referrals.columns} for r in call.referrals],
            "history": len(history)}


def cli(app, *args):
    return app.test_cli_runner().invoke(args=list(args), catch_exceptions=False)


def security_events(svc, kind: str) -> list:
    with svc.uow() as uow:
        return uow.session.execute(select(orm.security_events).where(orm.security_events.c.kind == kind)
                                   .order_by(orm.security_events.c.seq)).all()


def test_calls_closed_nine_years_ago_are_pseudonymised(app, svc, calls):
    before = {name: snapshot(svc, ref) for name, ref in calls.items()}
    out = cli(app, "retention", "run")
    assert out.exit_code == 0, out.output
    assert "pseudonymised 2 closed call(s) last in contact before 2018-11-23 (retention 8 years)" in out.output

    for name in ("old", "referred"):
        was, now = before[name], snapshot(svc, calls[name])
        call = now["call"]
        assert (call["nhs_number"], call["date_of_birth"], call["postcode"]) == (None, None, None)
        assert was["call"]["address_line_1"] == "12 Station Road" and was["call"]["town"] == "Loughborough"
        assert (call["address_line_1"], call["town"]) == (None, None)
        assert (call["given_name"], call["family_name"]) == ("[removed]", "[removed]")
        assert (call["caller_name"], call["caller_phone"], call["updates_to"]) == (None, None, None)
        assert call["summary"] == "[removed under retention]"
        assert call["pseudonymised_at"] == DEFAULT_NOW
        assert call["version"] == was["call"]["version"] + 1  # an open page's stale write now conflicts
        assert {k: call[k] for k in KEPT} == {k: was["call"][k] for k in KEPT}
        route, route_was = call["route"] or {}, was["call"]["route"] or {}
        assert {k: v for k, v in route.items() if k != "override_reason"} == \
            {k: v for k, v in route_was.items() if k != "override_reason"}
        if route_was.get("override_reason"):  # free text: removed; the codes stay
            assert route["override_reason"] == "[removed under retention]" and route["overridden"] is True
        assert call["locality"] is not None and call["consent"] == "given"
        assert now["history"] == was["history"] + 1  # audited, nothing removed from the history
    assert before["referred"]["call"]["route"]["override_reason"] == "Advice given"  # the case above is tested
    (referral,) = snapshot(svc, calls["referred"])["referrals"]
    (referral_was,) = before["referred"]["referrals"]
    assert referral_was["outcome_reason"] == "Already on our caseload"
    assert referral["outcome_reason"] is None and referral["version"] == referral_was["version"] + 1
    assert {k: v for k, v in referral.items() if k not in ("outcome_reason", "version")} == \
        {k: v for k, v in referral_was.items() if k not in ("outcome_reason", "version")}

    for name in ("recent", "open", "late_contact"):
        assert snapshot(svc, calls[name]) == before[name], name

    _, history = call_service.get_call(svc, calls["referred"])
    event = history[-1]
    assert (event.entity, event.entity_id, event.trigger, event.actor) == ("call", calls["referred"], "pseudonymise",
                                                                           "retention")
    assert event.from_state == event.to_state == "closed" and event.data == {"years": 8}
    (run,) = security_events(svc, "retention_run")
    assert run.actor.startswith("cli:")
    assert run.detail == {"years": 8, "pseudonymised": 2, "due": 2, "dry_run": False,
                          "phone_numbers_forgotten": 0, "referrer_numbers_forgotten": 0,
                          "text_notes_forgotten": 0}


def test_texts_to_the_referrer_lose_the_referrers_number(app, svc, calls):
    """A referrer's mobile is the caller's phone by another name (the updates they asked for): removed from
    their texts with the call, as calls.caller_phone is; a text to staff keeps its recipient's number."""
    import uuid

    def text(ref: str, kind: str, to: str) -> str:
        sid = uuid.uuid4().hex
        with svc.uow() as uow:
            uow.session.execute(orm.sms_messages.insert().values(
                id=sid, call_ref=ref, referral_id=None, recipient_kind=kind, professional_id=None, to=to,
                template="referral_declined" if kind == "referrer" else "referral_sent", body=f"{ref} x",
                status="delivered", attempts=1, created_at=NINE_YEARS_AGO, updated_at=NINE_YEARS_AGO))
            uow.commit()
        return sid

    old_referrer = text(calls["referred"], "referrer", "+447700900123")
    old_staff = text(calls["referred"], "on_duty", "+447700900201")
    recent_referrer = text(calls["recent"], "referrer", "+447700900124")
    assert cli(app, "retention", "run", "--dry-run").exit_code == 0

    def numbers() -> dict[str, str]:
        with svc.uow() as uow:
            return dict(uow.session.execute(select(orm.sms_messages.c.id, orm.sms_messages.c.to)).all())

    assert numbers()[old_referrer] == "+447700900123"  # a dry run changes nothing
    out = cli(app, "retention", "run")
    assert out.exit_code == 0, out.output
    assert numbers() == {old_referrer: retention.REMOVED, old_staff: "+447700900201",
                         recent_referrer: "+447700900124"}
    (last,) = security_events(svc, "retention_run")[-1:]
    assert last.detail["referrer_numbers_forgotten"] == 1
    # A call pseudonymised before texts were cleared is caught up by the next run; nothing else changes.
    with svc.uow() as uow:
        uow.session.execute(update(orm.sms_messages).where(orm.sms_messages.c.id == old_referrer)
                            .values(to="+447700900123"))
        uow.commit()
    assert cli(app, "retention", "run").exit_code == 0
    assert numbers()[old_referrer] == retention.REMOVED
    assert security_events(svc, "retention_run")[-1].detail["referrer_numbers_forgotten"] == 1


def test_texts_lose_their_follow_up_notes_and_a_referrers_error_message(app, svc, calls):
    """What was written about a pseudonymised call's texts goes with its identifiers: a supervisor's follow-up
    note is free text that may name the person, and Twilio's error for a text to the referrer names the number
    it refused. Codes stay; another call's texts are untouched."""
    import uuid

    def text(ref: str, kind: str, to: str, note: str | None, error: str | None) -> str:
        sid = uuid.uuid4().hex
        with svc.uow() as uow:
            uow.session.execute(orm.sms_messages.insert().values(
                id=sid, call_ref=ref, referral_id=None, recipient_kind=kind, professional_id=None, to=to,
                template="referral_declined" if kind == "referrer" else "referral_sent", body=f"{ref} x",
                status="failed", error_code=21211, error_message=error, attempts=1, created_at=NINE_YEARS_AGO,
                updated_at=NINE_YEARS_AGO, followed_up_at=NINE_YEARS_AGO if note else None,
                followed_up_by="supervisor" if note else None, follow_up_note=note))
            uow.commit()
        return sid

    referrer = text(calls["referred"], "referrer", "+447700900123", "Rang Dr Jo about Edith Testperson",
                    "Invalid 'To' Phone Number: +447700900123")
    staff = text(calls["referred"], "on_duty", "+447700900201", "Rang the nurse about Edith",
                 "Unreachable destination handset")
    recent = text(calls["recent"], "referrer", "+447700900124", "Rang Dr Jo about Edith",
                  "Invalid 'To' Phone Number: +447700900124")

    def rows() -> dict[str, tuple]:
        with svc.uow() as uow:
            return {r.id: (r.follow_up_note, r.error_code, r.error_message) for r in uow.session.execute(
                select(orm.sms_messages.c.id, orm.sms_messages.c.follow_up_note, orm.sms_messages.c.error_code,
                       orm.sms_messages.c.error_message))}

    before = rows()
    assert cli(app, "retention", "run", "--dry-run").exit_code == 0
    assert rows() == before  # a dry run changes nothing
    assert cli(app, "retention", "run").exit_code == 0
    after = rows()
    assert after[referrer] == ("[removed under retention]", 21211, None)
    assert after[staff] == ("[removed under retention]", 21211, "Unreachable destination handset")
    assert after[recent] == before[recent]  # not past retention
    assert security_events(svc, "retention_run")[-1].detail["text_notes_forgotten"] == 3  # 2 notes, 1 error
    assert cli(app, "retention", "run").exit_code == 0  # a second run changes nothing
    assert rows() == after and security_events(svc, "retention_run")[-1].detail["text_notes_forgotten"] == 0


def test_nothing_is_deleted_and_the_chain_still_verifies(svc, calls):
    def counts():
        with svc.uow() as uow:
            return {t.name: uow.session.execute(select(func.count()).select_from(t)).scalar_one()
                    for t in (orm.calls, orm.referrals, orm.audit_events, orm.timers, orm.outbox)}

    before = counts()
    assert retention.run(svc, 8).count == 2
    after = counts()
    assert after == {**before, "audit_events": before["audit_events"] + 2}
    assert audit_service.verify_all(svc, "test").ok


def test_reports_still_count_pseudonymised_calls(svc, calls):
    period = Period(date(2017, 11, 1), date(2017, 11, 30))
    before = build_report(svc, period, Scope())
    retention.run(svc, 8)
    after = build_report(svc, period, Scope())
    assert after.calls_logged == before.calls_logged == 4
    assert (after.referrals_sent, after.declined) == (before.referrals_sent, before.declined) == (2, 2)
    assert after.resolved == before.resolved
    assert [d.calls_logged for d in after.days] == [d.calls_logged for d in before.days]


def test_a_second_run_changes_nothing(app, svc, calls):
    assert retention.run(svc, 8).count == 2
    before = {name: snapshot(svc, ref) for name, ref in calls.items()}
    out = cli(app, "retention", "run")
    assert "pseudonymised 0 closed call(s)" in out.output
    assert {name: snapshot(svc, ref) for name, ref in calls.items()} == before
    assert [e.detail["pseudonymised"] for e in security_events(svc, "retention_run")] == [2, 0]


def test_a_dry_run_lists_the_calls_and_changes_nothing(app, svc, calls):
    before = {name: snapshot(svc, ref) for name, ref in calls.items()}
    out = cli(app, "retention", "run", "--dry-run")
    assert out.exit_code == 0
    assert "dry run: 2 closed call(s) last in contact before 2018-11-23 (retention 8 years) would be " \
           "pseudonymised; nothing was changed" in out.output
    listed = out.output.strip().splitlines()[1:]
    assert listed == [calls["old"], calls["referred"]]
    assert {name: snapshot(svc, ref) for name, ref in calls.items()} == before
    (run,) = security_events(svc, "retention_run")
    assert run.detail == {"years": 8, "pseudonymised": 0, "due": 2, "dry_run": True,
                          "phone_numbers_forgotten": 0, "referrer_numbers_forgotten": 0,
                          "text_notes_forgotten": 0}


def test_the_period_comes_from_years_or_the_setting(app, svc, calls):
    out = cli(app, "retention", "run", "--years", "10", "--dry-run")
    assert "dry run: 0 closed call(s)" in out.output
    out = cli(app, "retention", "run", "--years", "6", "--dry-run")
    assert "dry run: 4 closed call(s)" in out.output  # the 7-year-old contacts too
    assert calls["recent"] in out.output and calls["late_contact"] in out.output and calls["open"] not in out.output
    app.config["RETENTION_YEARS"] = 10
    assert "pseudonymised 0 closed call(s)" in cli(app, "retention", "run").output
    assert app.test_cli_runner().invoke(args=["retention", "run", "--years", "0"]).exit_code == 2


def test_batches_of_one_give_the_same_result(svc, calls):
    done = []
    result = retention.run(svc, 8, batch=1, progress=done.append)
    assert result.refs == [calls["old"], calls["referred"]] and done == [1, 2]
    assert retention.run(svc, 8, batch=1).count == 0


def test_a_call_changed_during_a_batch_is_not_overwritten(svc, calls, monkeypatch):
    """The version check: a batch that meets a concurrent change writes nothing and is tried again."""
    real, tries = retention._batch, []

    def racing(*args, **kwargs):
        tries.append(1)
        if len(tries) == 1:
            raise VersionConflict(None, None)
        return real(*args, **kwargs)

    monkeypatch.setattr(retention, "_batch", racing)
    assert retention.run(svc, 8).count == 2 and len(tries) == 3


def test_the_page_and_the_api_show_the_markers(app, svc, calls, tokens):
    retention.run(svc, 8)
    ref = calls["referred"]
    body = app.test_client().get(f"/api/v1/calls/{ref}",
                                 headers={"Authorization": f"Bearer {tokens['handler']}"}).get_json()
    assert body["subject"] == {"nhs_number": None, "given_name": "[removed]", "family_name": "[removed]",
                               "date_of_birth": None, "postcode": None, "address_line_1": None, "town": None}
    assert body["caller"]["name"] is None and body["caller"]["phone"] is None
    assert body["summary"] == "[removed under retention]"
    assert body["referrals"][0]["outcome_reason"] is None
    assert (body["need"], body["urgency"], body["state"]) == ("urgent_community_health", "urgent", "closed")
    client = app.test_client()
    signed_in(client, "handler")
    page = text(client.get(f"/calls/{ref}"))
    assert "[removed] [removed]" in page and "[removed under retention]" in page
    assert "Testperson" not in page and "9990000026" not in page and "LE11 3AB" not in page
    assert "Jo GP" not in page and "07700" not in page
    # The history's free-text reasons stay as written in the append-only audit trail (the chain covers
    # them), but are no longer shown: what staff typed may name the person (docs/audit-and-retention.md).
    assert "Already on our caseload" not in page and "Advice given" not in page
    assert all(e["reason"] in (None, "[removed under retention]") for e in body["history"])
    _, stored = call_service.get_call(svc, ref)
    assert "Already on our caseload" in [e.reason for e in stored]


def test_a_pseudonymised_calls_break_glass_notes_are_not_shown(app, svc, calls, clock):
    """A break-glass note (and its review's comment) is what someone typed about the call, which may name the
    person: kept in the grant row, like the chain's reasons, but no longer shown on the call's page."""
    ref = calls["referred"]
    clock.set(NINE_YEARS_AGO + timedelta(hours=5))
    grant = records.break_glass(svc, Actor("outsider", "handler", "ASC"), ref,
                                {"reason": "other", "note": "Edith Testperson's neighbour rang ASC"}, route="test")
    records.review_break_glass(svc, SUPERVISOR, grant.id, "Checked with Edith Testperson's GP")
    clock.set(DEFAULT_NOW)
    retention.run(svc, 8)
    client = app.test_client()
    signed_in(client, "supervisor")
    page = text(client.get(f"/calls/{ref}"))
    assert "Opened by break-glass" in page and "Other (say why in the note)" in page  # the opening is shown
    assert "Testperson" not in page and "neighbour" not in page
    with svc.uow() as uow:  # stored as it was
        assert [g.note for g in uow.break_glass.for_call(ref)] == ["Edith Testperson's neighbour rang ASC"]


# -- access report --------------------------------------------------------------------------------

def test_access_report_lists_who_viewed_a_call(app, svc, users, clock):
    ref = log(svc)
    records.view_call(svc, HANDLER, ref, "GET /calls/<ref>")
    clock.advance(minutes=3)
    records.view_call(svc, SUPERVISOR, ref, "GET /api/v1/calls/<ref>")
    clock.advance(minutes=3)
    records.break_glass(svc, Actor(username="handler.asc", role="handler", centre="ASC"), ref,
                        {"reason": "safeguarding_concern"}, "POST /calls/<ref>/break-glass")
    out = cli(app, "access", "report", ref.lower())
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0] == f"Call {ref}: viewed 3 time(s), oldest first (times Europe/London)."
    assert lines[1].split() == ["When", "Who", "Role", "Centre", "Route", "Why"]
    assert lines[2].split() == ["2026-11-23", "10:00:00", "Handler", "(handler)", "handler", "CNH", "GET",
                                "/calls/<ref>", "own", "centre"]
    assert lines[3].split() == ["2026-11-23", "10:03:00", "Supervisor", "(supervisor)", "supervisor", "CNH",
                                "GET", "/api/v1/calls/<ref>", "own", "centre"]
    assert lines[4].split() == ["2026-11-23", "10:06:00", "Handler.Asc", "(handler.asc)", "handler", "ASC",
                                "POST", "/calls/<ref>/break-glass", "break-glass"]
    (event,) = security_events(svc, "access_report")
    assert event.subject == ref and event.actor.startswith("cli:") and event.detail == {"rows": 3}


def test_access_report_for_a_call_nobody_viewed(app, svc, users):
    ref = log(svc)
    out = cli(app, "access", "report", ref)
    assert out.exit_code == 0 and out.output.strip() == f"Call {ref}: nobody has viewed its record."


def test_access_report_for_an_unknown_call_exits_1(app, svc):
    out = app.test_cli_runner().invoke(args=["access", "report", "ZZZZ-ZZZZ"])
    assert out.exit_code == 1
    assert "No call ZZZZ-ZZZZ: check the reference" in out.output
    assert security_events(svc, "access_report") == []


def test_pseudonymise_removes_the_free_text_and_keeps_the_codes():
    """On the objects alone: a referral's sharing reason (the lawful basis stays) and outcome reason go."""
    from ipoa.domain.model import Call, Referral

    call = Call(ref="AAAA-BBBB", centre="CNH", caller_type="carer", caller_name="Jo Carer",
                caller_phone="07911123456", nhs_number="9990000026", given_name="Edith", family_name="Testperson",
                date_of_birth=date(1938, 4, 2), postcode="LE11 3AB", locality="charnwood", out_of_area=False,
                need="safeguarding_concern", urgency="urgent", summary="Edith said...", workflow="call",
                workflow_version=1, logged_at=NINE_YEARS_AGO, logged_by="handler", consent="refused")
    call.version, call.route = 4, {"kind": "refer", "service": "SCA", "overridden": False, "override_reason": None}
    referral = Referral(service="SCA", workflow="referral", workflow_version=1, sent_at=NINE_YEARS_AGO,
                        sent_by="handler")
    referral.version, referral.sharing_basis, referral.sharing_reason = 2, "safeguarding", "Edith at risk at home"
    untouched = Referral(service="DN", workflow="referral", workflow_version=1, sent_at=NINE_YEARS_AGO,
                         sent_by="handler")
    untouched.version = 3
    call.referrals = [referral, untouched]
    retention.pseudonymise(call)
    assert (referral.sharing_basis, referral.sharing_reason, referral.version) == ("safeguarding", None, 3)
    assert untouched.version == 3  # unchanged rows keep their version
    assert call.route == {"kind": "refer", "service": "SCA", "overridden": False, "override_reason": None}
    assert (call.version, call.consent, call.locality, call.need) == (5, "refused", "charnwood", "safeguarding_concern")


def test_a_number_retention_removed_is_shown_as_removed_not_masked_as_a_number(app):
    masked = app.jinja_env.filters["masked"]
    assert masked(retention.REMOVED) == "(number removed)"  # not "[re******"
    assert masked("+447700900123") == "+447700******" and masked(None) == ""
