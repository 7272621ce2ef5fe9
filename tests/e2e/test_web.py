"""The server-rendered pages, through the Flask test client: sign-in, CSRF, roles, the log-a-call form,
the queue, the call page's actions and the supervisor's figures."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from tests.conftest import PASSWORD, csrf_token, sign_in
from tests.helpers.web import (
    REF_LINK,
    advance,
    block,
    buttons,
    count_calls,
    fire_as_service,
    form_for,
    history_len,
    ids,
    in_triage,
    load,
    log_form,
    logged,
    post_event,
    post_referral_event,
    ref_from_redirect,
    referred,
    signed_in,
    table_by_first_cell,
    tables,
    text,
)

SATURDAY_10 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


# -- sign-in --------------------------------------------------------------------------------------

def test_every_page_requires_sign_in(client, users, svc):
    ref = logged(svc)
    for url in ("/", "/queue", "/calls/new", f"/calls/{ref}", "/supervisor", "/no-access"):
        resp = client.get(url)
        assert resp.status_code == 302, url
        location = urlsplit(resp.headers["Location"])
        assert location.path == "/login", url
        assert "next=" in location.query, url


def test_sign_in_with_wrong_password_is_401(client, users):
    token = csrf_token(client, "/login")
    for username, password in (("handler", "wrong"), ("nobody", PASSWORD)):
        resp = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
        assert resp.status_code == 401
        assert "Unknown username or wrong password." in text(resp)
    assert client.get("/queue").status_code == 302


def test_sign_in_goes_to_next_but_never_off_site(client, users):
    token = csrf_token(client, "/login")
    resp = client.post("/login?next=/supervisor", data={"username": "supervisor", "password": PASSWORD,
                                                         "csrf_token": token})
    assert resp.headers["Location"].endswith("/supervisor")
    client.post("/logout", data={"csrf_token": csrf_token(client, "/no-access")})
    token = csrf_token(client, "/login")
    for target in ("https://evil.example/", "//evil.example/x"):
        resp = client.post(f"/login?next={target}", data={"username": "handler", "password": PASSWORD,
                                                          "csrf_token": token})
        assert urlsplit(resp.headers["Location"]).netloc in ("", "localhost"), target
        assert urlsplit(resp.headers["Location"]).path == "/queue"
        client.post("/logout", data={"csrf_token": csrf_token(client, "/no-access")})
        token = csrf_token(client, "/login")


def test_sign_out(client, users):
    token = signed_in(client)
    assert client.get("/queue").status_code == 200
    resp = client.post("/logout", data={"csrf_token": token})
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/login"
    resp = client.get("/queue")
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/login"


def test_sign_out_needs_csrf(client, users):
    signed_in(client)
    assert client.post("/logout").status_code == 400
    assert client.get("/queue").status_code == 200


# -- CSRF -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("token", [None, "forged-token"], ids=["missing", "forged"])
def test_log_call_without_csrf_is_refused(client, users, svc, token):
    signed_in(client)
    form = log_form("x")
    if token is None:
        del form["csrf_token"]
    else:
        form["csrf_token"] = token
    assert client.post("/calls/new", data=form).status_code == 400
    assert count_calls(svc) == 0


def test_call_event_without_csrf_is_refused(client, users, svc):
    signed_in(client)
    ref = logged(svc)
    resp = client.post(f"/calls/{ref}/events", data={"trigger": "start_triage", "expected_version": "1"})
    assert resp.status_code == 400
    call = load(svc, ref)
    assert (call.state, call.version) == ("logged", 1)
    assert history_len(svc, ref) == 1


def test_referral_event_without_csrf_is_refused(client, users, svc):
    signed_in(client)
    ref, rid = referred(svc)
    resp = client.post(f"/calls/{ref}/referrals/{rid}/events",
                       data={"trigger": "accept", "expected_version": "1"})
    assert resp.status_code == 400
    assert load(svc, ref).referrals[0].state == "sent"


# -- roles ----------------------------------------------------------------------------------------

def test_professional_has_no_call_handling_pages(client, users, svc):
    ref = logged(svc)
    resp = sign_in(client, "professional")
    assert urlsplit(resp.headers["Location"]).path == "/my/referrals"
    assert client.get("/my/referrals").status_code == 403  # signed in, but linked to no professional record
    token = csrf_token(client, "/no-access")
    for url in ("/queue", "/calls/new", f"/calls/{ref}", "/supervisor"):
        assert client.get(url).status_code == 403, url
    assert client.post("/calls/new", data=log_form(token)).status_code == 403
    assert post_event(client, token, ref, 1, trigger="start_triage").status_code == 403
    assert count_calls(svc) == 1 and load(svc, ref).state == "logged"
    page = text(client.get("/no-access"))
    assert "Log a call" not in page and "Supervisor" not in page


def test_handler_cannot_see_the_supervisor_page(client, users):
    signed_in(client)
    resp = client.get("/supervisor")
    assert resp.status_code == 403
    assert "Your role does not allow this page." in text(resp)
    assert 'href="/supervisor"' not in text(client.get("/queue"))


def test_supervisor_sees_the_counts(client, users, svc, clock):
    logged(svc)
    referred(svc)
    logged(svc, centre="MHA", need="mental_health")
    clock.advance(minutes=30)
    signed_in(client, "supervisor")
    resp = client.get("/supervisor")
    assert resp.status_code == 200
    by_centre, _phone, by_service = tables(text(resp))
    centres = table_by_first_cell(by_centre)
    assert set(centres) == {"CNH", "FCP", "ASC", "EDT", "CHS", "MHA", "HFD"}
    cnh = centres["CNH"]
    assert (cnh["Logged"], cnh["Referred"], cnh["In triage"], cnh["Total open"]) == ("1", "1", "0", "2")
    assert cnh["Oldest wait"] == "30m" and cnh["Open now?"] == "Open"
    assert (centres["MHA"]["Logged"], centres["MHA"]["Total open"]) == ("1", "1")
    assert centres["ASC"]["Total open"] == "0" and centres["ASC"]["Oldest wait"] == "–"
    services = table_by_first_cell(by_service)
    assert len(services) == 12
    crt = services["CRT"]
    assert (crt["Sent"], crt["Total open"], crt["Oldest awaiting acceptance"]) == ("1", "1", "30m")
    assert services["DN"]["Total open"] == "0"


def test_supervisor_page_shows_closed_centres_at_the_weekend(client, users, clock):
    clock.set(SATURDAY_10)
    signed_in(client, "supervisor")
    centres = table_by_first_cell(tables(text(client.get("/supervisor")))[0])
    assert centres["FCP"]["Open now?"] == "Closed" and centres["EDT"]["Open now?"] == "Open"


# -- log a call -----------------------------------------------------------------------------------

def test_log_a_call_through_the_form(client, users, svc):
    token = signed_in(client)
    page = text(client.get("/calls/new"))
    assert 'name="centre" value="CNH"' in page  # a handler's own centre, not a choice
    ref = ref_from_redirect(client.post("/calls/new", data=log_form(token)))
    call = load(svc, ref)
    assert (call.centre, call.state, call.nhs_number, call.caller_phone) == ("CNH", "logged", "9990000026",
                                                                             "+447911123456")
    assert call.logged_by == "handler" and call.locality == "Charnwood"
    assert f"Call {ref} logged." in text(client.get(f"/calls/{ref}"))


def _submission(page: str) -> str:
    return re.search(r'name="submission" value="([0-9a-f]{32})"', page).group(1)


def _calls(svc) -> int:
    from sqlalchemy import func, select

    from ipoa.adapters import orm

    with svc.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(orm.calls))


def test_the_log_a_call_form_sent_twice_logs_one_call(client, users, svc):
    """A double click, or the browser sending the form again: the second POST goes to the call the first
    logged (web/submissions.py). No NHS number, so the duplicate check cannot catch it."""
    token = signed_in(client)
    page = text(client.get("/calls/new"))
    assert 'data-prevent-double-click="true"' in page
    form = log_form(token, nhs_number="", submission=_submission(page))
    first = ref_from_redirect(client.post("/calls/new", data=form))
    again = client.post("/calls/new", data=form)
    assert again.status_code == 302 and again.headers["Location"].endswith(f"/calls/{first}")
    assert f"Call {first} was logged when the form was first sent. It was not logged again." in text(
        client.get(f"/calls/{first}"))
    assert _calls(svc) == 1
    fresh = log_form(token, nhs_number="", submission=_submission(text(client.get("/calls/new"))))
    assert ref_from_redirect(client.post("/calls/new", data=fresh)) != first  # a new form is a new call
    assert _calls(svc) == 2


def test_a_refused_log_a_call_form_corrected_and_sent_again_logs_it(client, users, svc):
    token = signed_in(client)
    submission = _submission(text(client.get("/calls/new")))
    refused = client.post("/calls/new", data=log_form(token, nhs_number="", postcode="LE11 ZZZ",
                                                      submission=submission))
    assert refused.status_code == 422 and _submission(text(refused)) == submission  # the same form, kept
    ref = ref_from_redirect(client.post("/calls/new", data=log_form(token, nhs_number="", submission=submission)))
    assert load(svc, ref).postcode == "LE11 3AB" and _calls(svc) == 1



def test_a_refused_form_sent_without_a_submission_id_comes_back_with_one_that_protects_it(client, users, svc):
    """An old page or a script posts no id (or a malformed one): that POST runs unprotected, but the form it
    gets back carries a new id, so the corrected form, sent twice, logs one call."""
    token = signed_in(client)
    for posted in ("", "not-an-id", "A" * 32):
        refused = client.post("/calls/new", data=log_form(token, nhs_number="", postcode="LE11 ZZZ",
                                                          submission=posted))
        assert refused.status_code == 422
        submission = _submission(text(refused))
        assert submission != posted
        form = log_form(token, nhs_number="", submission=submission)
        first = ref_from_redirect(client.post("/calls/new", data=form))
        again = client.post("/calls/new", data=form)
        assert again.status_code == 302 and again.headers["Location"].endswith(f"/calls/{first}")
    assert _calls(svc) == 3

def test_handler_cannot_log_into_another_centre_by_editing_the_form(client, users, svc):
    token = signed_in(client)
    ref = ref_from_redirect(client.post("/calls/new", data=log_form(token, centre="ASC")))
    assert load(svc, ref).centre == "CNH"


def test_supervisor_logs_for_their_own_centre_only(client, users, svc):
    # Need-to-know: a call belongs to the centre that logs it, and a supervisor's is their own.
    token = signed_in(client, "supervisor")
    assert 'name="centre"' in text(client.get("/calls/new")) and 'id="centre"' not in text(client.get("/calls/new"))
    ref = ref_from_redirect(client.post("/calls/new", data=log_form(token, centre="ASC")))
    assert load(svc, ref).centre == "CNH"


def test_log_form_shows_errors_beside_the_fields_and_stores_nothing(client, users, svc):
    token = signed_in(client)
    resp = client.post("/calls/new", data=log_form(token, nhs_number="9990000027", postcode="LE11 ZZZ",
                                                   caller_phone="0123"))
    assert resp.status_code == 422
    page = text(resp)
    # The error summary says it: no generic banner.
    assert "Please correct the fields marked below." not in page
    expected = {"nhs_number": "Enter a valid NHS number", "postcode": "Enter a full UK postcode",
                "caller_phone": "Enter the caller's phone number"}
    for name, words in expected.items():
        field = block(page, f'id="{name}"', '<div class="nhsuk-form-group')
        assert field.startswith('<div class="nhsuk-form-group nhsuk-form-group--error">'), name
        assert f'id="{name}-error"' in field and words in field, (name, field)
        assert 'aria-invalid="true"' in field, name
    # What was typed is kept, so it can be corrected.
    assert 'value="9990000027"' in page and 'value="LE11 ZZZ"' in page
    # Fields that were fine carry no error.
    assert "given_name-error" not in ids(page)
    assert "--error" not in block(page, 'id="given_name"', '<div class="nhsuk-form-group')
    assert count_calls(svc) == 0


@pytest.mark.parametrize("overrides,field", [
    ({"given_name": ""}, "given_name"),
    ({"date_of_birth": "2027-01-01"}, "date_of_birth"),
    ({"need": ""}, "need"),
    ({"urgency": "whenever"}, "urgency"),
    ({"summary": ""}, "summary"),
])
def test_log_form_other_field_errors(client, users, svc, overrides, field):
    token = signed_in(client)
    resp = client.post("/calls/new", data=log_form(token, **overrides))
    assert resp.status_code == 422
    assert f"{field}-error" in ids(text(resp))
    assert count_calls(svc) == 0


def test_duplicate_warning_then_log_anyway(client, users, svc):
    existing = logged(svc)
    token = signed_in(client)
    resp = client.post("/calls/new", data=log_form(token, need="community_nursing", urgency="routine"))
    assert resp.status_code == 409
    page = text(resp)
    assert "This person already has 1 open call" in page
    warning = page[page.index('id="dup-title"'):page.index("</section>")]
    assert REF_LINK.findall(warning) == [existing]
    assert 'name="confirm_duplicate" value="1"' in page
    assert "Log as a new call anyway" in page
    assert 'value="community_nursing" selected' in page  # the form is kept
    assert count_calls(svc) == 1
    form = log_form(token, need="community_nursing", urgency="routine", confirm_duplicate="1")
    new_ref = ref_from_redirect(client.post("/calls/new", data=form))
    assert new_ref != existing and count_calls(svc) == 2
    assert load(svc, new_ref).need == "community_nursing"


def test_cancelled_call_gives_no_duplicate_warning(client, users, svc):
    ref = logged(svc)
    advance(svc, ref, "cancel", reason="wrong number")
    token = signed_in(client)
    ref_from_redirect(client.post("/calls/new", data=log_form(token)))


# -- queue ----------------------------------------------------------------------------------------

def test_queue_orders_by_urgency_then_age(client, users, svc, clock):
    made = {}
    for name, urgency in (("routine", "routine"), ("urgent_old", "urgent"), ("same_day", "same_day"),
                          ("urgent_new", "urgent"), ("emergency", "emergency"), ("cancelled", "urgent")):
        made[name] = logged(svc, urgency=urgency)
        clock.advance(minutes=5)
    advance(svc, made["cancelled"], "cancel", reason="rang off")
    made["elsewhere"] = logged(svc, centre="ASC", urgency="emergency")
    signed_in(client)
    page = text(client.get("/queue"))
    assert REF_LINK.findall(page) == [made[n] for n in ("emergency", "urgent_old", "urgent_new",
                                                         "same_day", "routine")]
    assert "5 open calls" in page
    rows = {row[0]: row for row in tables(page)[0][1:]}
    assert rows[made["routine"]][4] == "30m"  # logged 30 minutes ago
    assert rows[made["emergency"]][4] == "10m"
    # The clock column: each call's most urgent running clock (emergency triage: 5 min, now 10 min ago).
    assert tables(page)[0][0][5] == "Clock"
    assert rows[made["emergency"]][5] == "Triage: overdue by 5 min Overdue"
    assert rows[made["routine"]][5].startswith("Triage: due in ")
    # Another centre's queue is that centre's (need-to-know): refused, saying why.
    other = client.get("/queue?centre=ASC")
    assert other.status_code == 403 and made["elsewhere"] not in text(other)
    assert "your own centre (CNH)" in text(other)
    assert client.get("/queue?centre=NOPE").status_code == 404


# -- the call page --------------------------------------------------------------------------------

def test_call_page_offers_only_the_actions_valid_in_logged(client, users, svc):
    ref = logged(svc)
    signed_in(client)
    page = text(client.get(f"/calls/{ref}"))
    found = ids(page)
    assert {"action-start_triage", "action-transfer", "action-promise_callback", "action-cancel"} <= found
    assert "action-close" not in found and "action-call_back" not in found
    assert ">Close<" not in page
    # Routing in "logged": every route is offered, the recommendation's Accept first and focused; the forms
    # say step_first, so start_triage is taken in the same action (service.calls.route_actions).
    assert "accept-route" in found
    accept = form_for(page, 'id="accept-route"')
    assert 'name="step_first" value="1"' in accept and 'value="refer"' in accept
    assert re.search(r'id="accept-route"[^>]*autofocus', page)
    options = form_for(page, 'id="override-route"')
    assert 'value="divert_999"' in options and 'value="refer:CRT"' in options
    assert 'name="step_first" value="1"' in options
    # Start triage stays, no longer the main action: the recommendation's Accept is.
    assert 'nhsuk-button--secondary" type="submit" id="action-start_triage"' in page
    # The transfer choice never offers the call's own centre.
    transfer = form_for(page, 'id="action-transfer"')
    assert 'value="CNH"' not in transfer and 'value="ASC"' in transfer


def test_call_page_actions_follow_the_state(client, users, svc):
    ref = in_triage(svc, need="information_advice", urgency="routine")
    signed_in(client)
    found = ids(text(client.get(f"/calls/{ref}")))
    assert "action-start_triage" not in found and "action-close" not in found
    assert {"accept-route", "action-transfer", "action-cancel"} <= found
    advance(svc, ref, "resolve")
    page = text(client.get(f"/calls/{ref}"))
    found = ids(page)
    assert "action-close" in found
    assert not found & {"action-start_triage", "action-transfer", "action-cancel", "accept-route"}
    advance(svc, ref, "close")
    page = text(client.get(f"/calls/{ref}"))
    assert not {i for i in ids(page) if i.startswith("action-")}
    assert re.search(r"<p>No actions[^<]*closed", page)


def test_call_page_shows_the_recommended_route_with_its_reason(client, users, svc):
    ref = in_triage(svc)
    signed_in(client)
    page = text(client.get(f"/calls/{ref}"))
    rec = block(page, 'id="recommendation"', "<div")
    assert "Recommended: refer to CRT (Clinical Response Team)" in rec
    assert "Tier 2. Row 5: urgent community health need, urgent, 08:00-19:59 -> Clinical Response Team" in rec
    assert "Accept: refer to CRT" in rec


def test_unknown_call_page_is_404(client, users):
    signed_in(client)
    assert client.get("/calls/ZZZZ-ZZZZ").status_code == 404
    token = csrf_token(client, "/no-access")
    assert post_event(client, token, "ZZZZ-ZZZZ", 1, trigger="start_triage").status_code == 404


def test_start_triage_and_accept_the_route(client, users, svc):
    ref = logged(svc)
    token = signed_in(client)
    resp = post_event(client, token, ref, 1, trigger="start_triage")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/calls/{ref}")
    page = text(client.get(f"/calls/{ref}"))
    accept = form_for(page, 'id="accept-route"')
    assert 'name="service" value="CRT"' in accept and 'name="expected_version" value="2"' in accept
    assert post_event(client, token, ref, 2, trigger="refer", service="CRT").status_code == 302
    call = load(svc, ref)
    assert (call.state, [r.service for r in call.referrals]) == ("referred", ["CRT"])
    assert call.route["overridden"] is False
    page = text(client.get(f"/calls/{ref}"))
    # No professional of CRT is on duty in this scene: its duty lead is texted instead.
    assert "CRT – Clinical Response Team" in page
    assert "Referred to Clinical Response Team: nobody is on duty, so the duty lead is texted." in page


def test_override_without_reason_is_refused_and_changes_nothing(client, users, svc):
    ref = in_triage(svc)
    token = signed_in(client)
    resp = post_event(client, token, ref, 2, route_choice="refer:DN", reason="  ")
    assert resp.status_code == 422
    page = text(resp)
    override = form_for(page, 'id="override-route"')
    assert 'id="reason-error"' in override
    assert ("Enter a reason for choosing another route: the recommended route is to refer to CRT"
            in override)
    assert 'value="refer:DN" selected' in override  # the choice is kept
    assert "<details open" in page
    call = load(svc, ref)
    assert (call.state, call.version, call.referrals, call.route) == ("in_triage", 2, [], None)
    assert history_len(svc, ref) == 2


def test_override_with_reason_is_shown_in_history(client, users, svc):
    ref = in_triage(svc)
    token = signed_in(client)
    resp = post_event(client, token, ref, 2, route_choice="refer:DN",
                      reason="Already known to district nurses")
    assert resp.status_code == 302
    call = load(svc, ref)
    assert call.state == "referred" and call.referrals[0].service == "DN"
    assert call.route["overridden"] is True
    page = text(client.get(f"/calls/{ref}"))
    assert "<strong>overrode</strong> “refer to CRT”: Already known to district nurses" in page
    history = tables(page)[-1]
    refer_row = next(row for row in history if row[2].startswith("call refer"))
    assert refer_row[2] == "call refer (DN) override"
    assert refer_row[1] == "Handler (handler, CNH)" and refer_row[3] == "in triage → referred"
    assert refer_row[4] == "Already known to district nurses"


def test_override_to_a_non_referral_route(client, users, svc):
    ref = in_triage(svc)
    token = signed_in(client)
    resp = post_event(client, token, ref, 2, route_choice="tier3_review", reason="Complex history")
    assert resp.status_code == 302
    call = load(svc, ref)
    assert call.state == "in_tier3_review" and call.route["override_reason"] == "Complex history"


def test_accepting_a_route_the_table_no_longer_recommends_asks_for_a_reason(client, users, svc, clock):
    clock.set(datetime(2026, 11, 23, 19, 55, tzinfo=UTC))
    ref = in_triage(svc)
    token = signed_in(client)
    assert "Accept: refer to CRT" in text(client.get(f"/calls/{ref}"))
    clock.set(datetime(2026, 11, 23, 20, 1, tzinfo=UTC))  # OOHV's hours now
    resp = post_event(client, token, ref, 2, trigger="refer", service="CRT")
    assert resp.status_code == 422
    page = text(resp)
    assert "the recommended route is to refer to OOHV" in form_for(page, 'id="override-route"')
    assert "<details open" in page and "Accept: refer to OOHV" in page
    assert load(svc, ref).state == "in_triage"


def test_transfer_to_another_centre_moves_the_call_to_its_queue(client, users, svc):
    ref = in_triage(svc)
    token = signed_in(client)
    resp = post_event(client, token, ref, 2, trigger="transfer", centre="ASC", reason="Social care need")
    assert resp.status_code == 302
    assert ref not in REF_LINK.findall(text(client.get("/queue")))
    # The centre it came from may still read it (a transfer is part of its relationship), not change it.
    page = text(client.get(f"/calls/{ref}"))
    assert "in ASC (from CNH)" in page
    assert "action-start_triage" not in ids(page) and "you can see this call but not change it" in page.lower()
    assert any(row[2] == "call transfer to ASC" and row[4] == "Social care need" for row in tables(page)[-1])
    # The receiving centre's handler sees it in their own queue and triages it.
    client.post("/logout", data={"csrf_token": token})
    token = signed_in(client, "handler.asc")
    assert ref in REF_LINK.findall(text(client.get("/queue")))
    assert "action-start_triage" in ids(text(client.get(f"/calls/{ref}")))
    assert post_event(client, token, ref, 3, trigger="start_triage").status_code == 302
    assert load(svc, ref).state == "in_triage"


def test_transfer_to_a_closed_centre_shows_the_error_beside_the_centre(client, users, svc, clock):
    clock.set(SATURDAY_10)
    ref = logged(svc)
    token = signed_in(client)
    page = text(client.get(f"/calls/{ref}"))
    assert "FCP – First Contact Plus (closed now)" in page
    resp = post_event(client, token, ref, 1, trigger="transfer", centre="FCP", reason="Wellbeing")
    assert resp.status_code == 422
    transfer = form_for(text(resp), 'id="action-transfer"')
    assert "First Contact Plus is closed now" in transfer
    assert load(svc, ref).centre == "CNH"


def test_cancel_without_reason_shows_the_error_at_cancel_only(client, users, svc):
    ref = in_triage(svc)
    token = signed_in(client)
    resp = post_event(client, token, ref, 2, trigger="cancel")
    assert resp.status_code == 422
    page = text(resp)
    assert "Enter a reason" in form_for(page, 'id="action-cancel"')
    # Not against the override box, which the handler did not use.
    assert "Enter a reason" not in form_for(page, 'id="override-route"')
    assert "<details open" not in page
    assert load(svc, ref).state == "in_triage"
    assert post_event(client, token, ref, 2, trigger="cancel", reason="Rang off").status_code == 302
    assert load(svc, ref).state == "cancelled"


def test_stale_form_is_409_and_saves_nothing(client, users, svc):
    ref = logged(svc)
    token = signed_in(client)
    page = text(client.get(f"/calls/{ref}"))
    assert 'name="expected_version" value="1"' in form_for(page, 'id="action-cancel"')
    advance(svc, ref, "start_triage")  # someone else, meanwhile
    resp = post_event(client, token, ref, 1, trigger="cancel", reason="Duplicate")
    assert resp.status_code == 409
    page = text(resp)
    assert "Someone else changed this call while you were looking at it" in page
    assert "nothing you submitted was saved" in page
    assert 'name="expected_version" value="2"' in form_for(page, 'id="action-cancel"')  # reloaded
    call = load(svc, ref)
    assert (call.state, call.version) == ("in_triage", 2)
    assert history_len(svc, ref) == 2


def test_action_no_longer_possible_is_422(client, users, svc):
    ref = logged(svc)
    token = signed_in(client)
    resp = post_event(client, token, ref, 1, trigger="close")
    assert resp.status_code == 422
    assert "That action is no longer possible" in text(resp)
    assert load(svc, ref).version == 1


def test_promise_callback_in_uk_time(client, users, svc, clock):
    clock.set(datetime(2026, 7, 1, 9, 0, tzinfo=UTC))  # 10:00 BST
    ref = logged(svc)
    token = signed_in(client)
    resp = post_event(client, token, ref, 1, trigger="promise_callback", callback_at="2026-07-01T09:30")
    assert resp.status_code == 422  # 09:30 BST is 08:30 UTC: in the past
    assert "Call back at must be in the future" in form_for(text(resp), 'id="action-promise_callback"')
    resp = post_event(client, token, ref, 1, trigger="promise_callback", callback_at="2026-07-01T12:00")
    assert resp.status_code == 302
    call = load(svc, ref)
    assert call.state == "awaiting_callback"
    assert call.callback_due == datetime(2026, 7, 1, 11, 0, tzinfo=UTC)
    page = text(client.get(f"/calls/{ref}"))
    assert "Wed 01 Jul 2026 12:00" in page
    assert {"action-call_back", "action-cancel"} <= ids(page) and "action-start_triage" not in ids(page)


# -- referral actions -----------------------------------------------------------------------------

def test_referral_actions_on_the_call_page(client, users, svc):
    """The referring handler sees only the referrer's action (Withdraw, a warning), never the receiving
    service's Accept, Decline, Start or Complete; those stay the service's as the referral moves on."""
    ref, rid = referred(svc)
    signed_in(client)
    page = text(client.get(f"/calls/{ref}"))
    referrals = block(page, 'id="referrals-title"', "<section")
    assert f"/calls/{ref}/referrals/{rid}/events" in referrals
    assert buttons(referrals) == {"Withdraw"}
    assert 'class="nhsuk-button nhsuk-button--warning" type="submit">Withdraw<' in referrals
    # The service accepts (its professional, by the service layer): still only Withdraw for the handler.
    fire_as_service(svc, ref, rid, "accept")
    offered = buttons(block(text(client.get(f"/calls/{ref}")), 'id="referrals-title"', "<section"))
    assert offered == {"Withdraw"}


def test_the_call_page_refuses_the_services_triggers(client, users, svc):
    """A handler who posts the service's trigger anyway (an old page, a crafted form) is refused: the POST
    follows the same rule as the buttons."""
    ref, rid = referred(svc)
    token = signed_in(client)
    before = history_len(svc, ref)
    for trigger in ("accept", "decline"):
        resp = post_referral_event(client, token, ref, rid, 1, trigger=trigger, reason="No capacity")
        assert resp.status_code == 403
        assert "is for the receiving service's professionals (CRT)" in text(resp)
    assert load(svc, ref).referrals[0].state == "sent"
    assert history_len(svc, ref) == before


def test_referral_withdraw_with_reason_puts_the_call_back_in_triage(client, users, svc):
    ref, rid = referred(svc)
    token = signed_in(client)
    resp = post_referral_event(client, token, ref, rid, 1, trigger="withdraw")
    assert resp.status_code == 422
    assert load(svc, ref).referrals[0].state == "sent"
    resp = post_referral_event(client, token, ref, rid, 1, trigger="withdraw", reason="Family will drive")
    assert resp.status_code == 302
    call = load(svc, ref)
    assert (call.state, call.referrals[0].state, call.referrals[0].outcome_reason) == (
        "in_triage", "withdrawn", "Family will drive")
    page = text(client.get(f"/calls/{ref}"))
    assert "Referral to Clinical Response Team withdrawn: the call is in triage." in page
    assert 'id="call-state">in triage</strong>' in page
    assert "Family will drive" in block(page, 'id="referrals-title"', "<section")
    assert "accept-route" in ids(page)  # ready to be routed again


def test_stale_referral_form_is_409(client, users, svc):
    ref, rid = referred(svc)
    token = signed_in(client)
    fire_as_service(svc, ref, rid, "accept")
    resp = post_referral_event(client, token, ref, rid, 1, trigger="withdraw", reason="x")
    assert resp.status_code == 409
    assert load(svc, ref).referrals[0].state == "accepted"


def test_an_open_referral_says_whose_it_is_to_move_on(client, users, svc):
    ref, rid = referred(svc)
    signed_in(client)
    referrals = block(text(client.get(f"/calls/{ref}")), 'id="referrals-title"', "<section")
    assert "For CRT to accept and update." in referrals


def test_focus_starts_on_the_main_action_and_on_nothing_after_an_error(client, users, svc, clock):
    """Keyboard first: a call awaiting its callback opens on "Call back now"; one page, one autofocus."""
    ref = logged(svc)
    advance(svc, ref, "promise_callback", data={"callback_at": (clock.now() + timedelta(hours=1)).isoformat()})
    signed_in(client)
    page = text(client.get(f"/calls/{ref}"))
    assert re.findall(r'<[^>]+autofocus[^>]*>', page) == [
        re.search(r'<button[^>]+id="action-call_back"[^>]*>', page).group(0)]
    token = csrf_token(client, f"/calls/{ref}")
    version = load(svc, ref).version
    refused = text(client.post(f"/calls/{ref}/events", data={"csrf_token": token, "trigger": "cancel",
                                                             "expected_version": version}))
    assert 'id="error-summary"' in refused and "autofocus" not in refused
