"""Issue 12, item 4: the professional's referral page as a nurse reads it on a phone. The address for the
visit (a new optional intake field: the Log a call form, the API), numbers to tap (tel: links), the NHS
number as 3 3 4, who referred (a name, a centre, the centre's call-back number), the acceptance deadline
and, once it has passed, a red "Acceptance overdue" tag."""
from __future__ import annotations

import re
from datetime import timedelta

from ipoa.domain.calendar import LONDON
from ipoa.service import calls as call_service
from ipoa.service.calls import Actor
from ipoa.service.professionals import link_user
from tests.conftest import call_payload, sign_in
from tests.helpers import make_user
from tests.helpers.clocks import breach, due_at, timer_id
from tests.helpers.rota import add_on_duty
from tests.helpers.web import block, error_text, load, log_form, ref_from_redirect, signed_in, text

ADDRESS = {"address_line_1": "12 Station Road", "town": "Loughborough"}


def nurse(svc, users):
    add_on_duty(svc, name="Nia", service="DN", mobile="07700 900201")
    link_user(svc, "07700 900201", users["professional"].id)


def referred_by_hana(svc, **subject):
    """A DN referral sent by Hana Hughes, a handler of the Clinical Navigation Hub."""
    hana = make_user(svc, "hana", "handler", "CNH")
    with svc.uow() as uow:
        uow.session.get(type(hana), hana.id).display_name = "Hana Hughes"
        uow.commit()
    actor = Actor(username="hana", role="handler", centre="CNH")
    body = call_payload(need="community_nursing", urgency="urgent",
                        subject={"nhs_number": "9990000026", **ADDRESS, **subject},
                        caller={"name": "Jo Carer", "phone": "07911 123456"})
    call = call_service.log_call(svc, actor, body, allow_duplicate=True)
    call_service.fire_call_trigger(svc, actor, call.ref, {"trigger": "start_triage", "expected_version": 1})
    call = call_service.fire_call_trigger(svc, actor, call.ref, {"trigger": "refer", "expected_version": 2,
                                                                 "data": {"service": "DN"}})
    return call, call.referrals[0].id


def row(page: str, row_id: str) -> str:
    """The text of a summary list value (id `row_id`), tags and links flattened."""
    chunk = block(page, f'id="{row_id}"', "<dd")
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", chunk[chunk.index(">") + 1:chunk.index("</dd>")])).strip()


# -- intake: the web form and the API store the address -----------------------------------------------------

def test_the_log_a_call_form_stores_the_address(client, users, svc):
    token = signed_in(client)
    page = text(client.get("/calls/new"))
    for name, label in (("address_line_1", "Address line 1 (optional)"), ("town", "Town or city (optional)")):
        field = re.search(rf'<input[^>]*name="{name}"[^>]*>', page)
        assert field and 'autocomplete="off"' in field.group(0) and "required" not in field.group(0)
        assert f'<label class="nhsuk-label" for="{name}">' in page and label in page
    # In page order: the postcode (which decides the locality) comes first, then the date of birth, then
    # the address for the visit.
    assert page.index('name="postcode"') < page.index('name="date_of_birth-day"') \
        < page.index('name="address_line_1"') < page.index('name="town"')

    ref = ref_from_redirect(client.post("/calls/new", data=log_form(token, address_line_1=" 12 Station Road ",
                                                                    town="Loughborough")))
    call = load(svc, ref)
    assert (call.address_line_1, call.town, call.postcode) == ("12 Station Road", "Loughborough", "LE11 3AB")
    ref = ref_from_redirect(client.post("/calls/new", data=log_form(token, nhs_number="")))
    assert (load(svc, ref).address_line_1, load(svc, ref).town) == (None, None)  # optional


def test_a_wrong_address_is_shown_beside_its_field_in_page_order(client, users, svc):
    token = signed_in(client)
    resp = client.post("/calls/new", data=log_form(token, address_line_1="x" * 101, town="y" * 61,
                                                   postcode="nonsense"))
    page = text(resp)
    assert resp.status_code == 422
    assert error_text(page, "address_line_1") == "Enter address line 1 in 100 characters or fewer"
    assert error_text(page, "town") == "Enter a town or city of 60 characters or fewer"
    summary = page[page.index("nhsuk-error-summary"):]
    assert summary.index('href="#postcode"') < summary.index('href="#address_line_1"') < summary.index('href="#town"')
    assert 'value="' + "x" * 101 + '"' in page  # what was typed is kept to correct


def test_the_api_takes_and_gives_the_address(client, users, svc, tokens):
    auth = {"Authorization": f"Bearer {tokens['handler']}"}
    resp = client.post("/api/v1/calls?allow_duplicate=true", headers=auth,
                       json=call_payload(subject=ADDRESS))
    assert resp.status_code == 201, resp.get_json()
    ref = resp.get_json()["ref"]
    subject = client.get(f"/api/v1/calls/{ref}", headers=auth).get_json()["subject"]
    assert (subject["address_line_1"], subject["town"]) == ("12 Station Road", "Loughborough")
    bad = client.post("/api/v1/calls?allow_duplicate=true", headers=auth,
                      json=call_payload(subject={"town": 7}))
    assert bad.status_code == 422
    assert bad.get_json()["error"]["fields"] == {"subject.town": "Enter the town or city as text, like Loughborough"}
    schema = client.get("/api/v1/openapi.json", headers=auth).get_json()["components"]["schemas"]
    assert {"address_line_1", "town"} <= set(schema["Subject"]["properties"])
    assert {"address_line_1", "town"} <= set(schema["Call"]["properties"]["subject"]["properties"])


# -- the professional's page --------------------------------------------------------------------------------

def test_the_referral_page_has_what_a_nurse_needs_at_the_door(client, svc, users):
    nurse(svc, users)
    call, rid = referred_by_hana(svc)
    sign_in(client, "professional")
    page = text(client.get(f"/my/referrals/{rid}"))

    assert row(page, "address").startswith("12 Station Road Loughborough LE11 3AB")
    assert row(page, "nhs-number") == "999 000 0026"
    # Every number is a link a phone dials.
    assert '<a class="nhsuk-u-nowrap" href="tel:+447911123456">07911 123456</a>' in page
    assert row(page, "referrer").startswith("Hana Hughes, Clinical Navigation Hub Call back on 01632 960101")
    assert 'href="tel:+441632960101"' in page
    assert "hana" not in row(page, "referrer")  # a name to ask for, not a username
    # The deadline, from the referral's running acceptance clock, in UK time.
    due = due_at(svc, timer_id(svc, call.ref, "acceptance", rid))
    assert row(page, "accept-by") == f"Accept by {due.astimezone(LONDON):%H:%M} today"
    assert "Acceptance overdue" not in page


def test_an_overdue_referral_says_so_in_red(client, svc, users, clock):
    nurse(svc, users)
    call, rid = referred_by_hana(svc)
    breach(svc, clock, call.ref, "acceptance", rid)
    sign_in(client, "professional")
    page = text(client.get(f"/my/referrals/{rid}"))
    assert re.fullmatch(r"Accept by \d\d:\d\d today Acceptance overdue", row(page, "accept-by")), row(page, "accept-by")
    assert re.search(r'<strong class="nhsuk-tag nhsuk-tag--red" id="acceptance-overdue">Acceptance overdue</strong>',
                     page)


def test_once_accepted_there_is_no_deadline_and_no_address_says_so(client, svc, users, clock):
    nurse(svc, users)
    call, rid = referred_by_hana(svc, address_line_1=None, town=None, postcode=None)
    call_service.fire_referral_trigger(svc, Actor(username="nia", role="professional", centre=None, service="DN"),
                                       call.ref, rid, {"trigger": "accept", "expected_version": 1}, as_service="DN")
    sign_in(client, "professional")
    page = text(client.get(f"/my/referrals/{rid}"))
    assert 'id="accept-by"' not in page and "Acceptance overdue" not in page
    assert row(page, "address") == "Address not given postcode not known"


def test_a_time_on_another_day_names_the_day():
    from datetime import UTC, datetime

    from ipoa.web.referral_view import local_deadline, phone_display, tel_href

    now = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)
    assert local_deadline(now + timedelta(minutes=15), now) == "23:45 today"
    assert local_deadline(now + timedelta(hours=1), now) == "00:30 tomorrow"
    assert local_deadline(now - timedelta(days=1), now) == "23:30 yesterday"
    assert local_deadline(now + timedelta(days=2), now) == "23:30 on Wed 25 Nov"
    summer = datetime(2026, 7, 1, 13, 30, tzinfo=UTC)
    assert local_deadline(summer, summer) == "14:30 today"  # UK time, not UTC
    assert phone_display("+447911123456") == "07911 123456" and tel_href("+44 7911 123456") == "tel:+447911123456"
