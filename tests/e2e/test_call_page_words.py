"""The call page says what happened and who did it, in words: confirmations written for each action (issue
12, item 8), people by name, role and centre and ipoa's own actors in words (item 11), one user look-up a
page."""
from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import update

from ipoa.adapters import orm
from ipoa.domain.engine import Result
from ipoa.domain.model import AuditEvent
from ipoa.service import professionals
from ipoa.service import users as user_service
from tests.helpers.rota import on_duty
from tests.helpers.web import (
    fire_as_service,
    in_triage,
    load,
    logged,
    post_event,
    post_referral_event,
    referred,
    signed_in,
    tables,
    text,
)


def confirmation(client, resp) -> str:
    assert resp.status_code == 302, resp.status_code
    page = text(client.get(resp.headers["Location"]))
    start = page.index('class="nhsuk-notification-banner nhsuk-notification-banner--success')
    return page[start:page.index("</main>", start)]


def test_a_referral_says_where_to_and_how_many_texts(client, users, svc):
    on_duty(svc, "CRT", professionals.add_professional(svc, name="Cal One", service="CRT", mobile="07700 900201"),
            professionals.add_professional(svc, name="Cal Two", service="CRT", mobile="07700 900202"))
    professionals.add_professional(svc, name="Off Duty", service="CRT", mobile="07700 900203")  # on no rota
    ref = in_triage(svc)
    token = signed_in(client)
    resp = post_event(client, token, ref, 2, trigger="refer", service="CRT")
    assert "Referred to Clinical Response Team: 2 texts sent." in confirmation(client, resp)


def test_a_referral_to_a_service_with_nobody_on_duty_says_the_duty_lead_is_texted(client, users, svc):
    ref = in_triage(svc)
    token = signed_in(client)
    resp = post_event(client, token, ref, 2, route_choice="refer:DN", reason="Known to the district nurses")
    said = confirmation(client, resp)
    assert "Referred to Community (district) nursing: " in said
    assert "Done." not in said


def test_with_no_duty_lead_the_confirmation_says_the_supervisor_is_texted_or_nobody(client, users, svc,
                                                                                    monkeypatch):
    """The confirmation follows the rota's fall-back chain (service/rotas.referral_recipients)."""
    monkeypatch.setitem(svc.directory.services, "CRT", replace(svc.directory.services["CRT"], duty_lead=None))
    token = signed_in(client)
    resp = post_event(client, token, in_triage(svc), 2, trigger="refer", service="CRT")
    assert "Referred to Clinical Response Team: nobody can be texted: phone the service." in confirmation(client, resp)
    with svc.uow() as uow:
        uow.session.execute(update(orm.users).where(orm.users.c.username == "supervisor")
                            .values(mobile="+447700900301"))
        uow.commit()
    resp = post_event(client, token, in_triage(svc), 2, trigger="refer", service="CRT")
    assert ("Referred to Clinical Response Team: nobody is on duty and there is no duty lead, so the referring "
            "centre's supervisor is texted.") in confirmation(client, resp)


def test_transfer_callback_cancel_and_triage_say_what_happened(client, users, svc, clock):
    clock.set(datetime(2026, 12, 3, 9, 0, tzinfo=UTC))  # Thu 03 Dec, 09:00 UK time
    token = signed_in(client)
    ref = logged(svc)
    assert "Triage started." in confirmation(client, post_event(client, token, ref, 1, trigger="start_triage"))
    resp = post_event(client, token, ref, 2, trigger="promise_callback", callback_at="2026-12-03T14:30")
    assert "Callback promised for Thu 03 Dec 14:30." in confirmation(client, resp)
    resp = post_event(client, token, ref, 3, trigger="cancel", reason="Caller rang off")
    assert "Call cancelled." in confirmation(client, resp)
    other = logged(svc)
    resp = post_event(client, token, other, 1, trigger="transfer", centre="ASC", reason="Social care need")
    assert "Transferred to Adult Social Care Customer Service Centre." in confirmation(client, resp)


def test_a_callback_in_the_repeated_hour_is_the_next_one_and_says_which(client, users, svc, clock):
    """25 Oct 2026: 01:00-01:59 happens twice. At the second 01:40 (GMT), a callback at 01:50 is the GMT one, ten
    minutes ahead, not the BST one already past; the confirmation says which (docs/domain.md, "SLA clocks")."""
    clock.set(datetime(2026, 10, 25, 1, 40, tzinfo=UTC))  # 01:40 GMT
    token = signed_in(client)
    ref = logged(svc)
    resp = post_event(client, token, ref, 1, trigger="promise_callback", callback_at="2026-10-25T01:50")
    assert "Callback promised for Sun 25 Oct 01:50 GMT." in confirmation(client, resp)
    assert load(svc, ref).callback_due == datetime(2026, 10, 25, 1, 50, tzinfo=UTC)
    clock.set(datetime(2026, 10, 25, 0, 40, tzinfo=UTC))  # 01:40 BST: the first 01:50 is still ahead
    other = logged(svc)
    resp = post_event(client, token, other, 1, trigger="promise_callback", callback_at="2026-10-25T01:50")
    assert "Callback promised for Sun 25 Oct 01:50 BST." in confirmation(client, resp)
    assert load(svc, other).callback_due == datetime(2026, 10, 25, 0, 50, tzinfo=UTC)
    clock.set(datetime(2026, 10, 25, 1, 55, tzinfo=UTC))  # 01:55 GMT: both 01:50s are past
    late = logged(svc)
    resp = post_event(client, token, late, 1, trigger="promise_callback", callback_at="2026-10-25T01:50")
    assert resp.status_code == 422 and "must be in the future" in text(resp)


def test_reroute_says_what_was_withdrawn_and_where_it_went(client, users, svc):
    ref, rid = referred(svc)
    token = signed_in(client, "supervisor")
    resp = client.post(f"/calls/{ref}/referrals/{rid}/reroute",
                       data={"csrf_token": token, "expected_version": "1", "service": "DN", "reason": "Known to DN"})
    said = confirmation(client, resp)
    assert "Referral to Clinical Response Team withdrawn. Referred to Community (district) nursing: " in said


def test_history_names_people_and_ipoa_in_words(client, users, svc):
    ref, rid = referred(svc)  # by "setup", who is no user: shown as recorded
    token = signed_in(client)
    fire_as_service(svc, ref, rid, "accept", username="sms:Nia Nurse")  # an SMS reply ACCEPT
    call = load(svc, ref)
    with svc.uow() as uow:
        uow.record(Result(audit=[AuditEvent(
            call_ref=ref, entity="referral", entity_id=rid, actor="system:sla", at=svc.clock.now(),
            from_state="accepted", to_state="accepted", trigger="breach", data={"clock": "response"})]))
        uow.commit()
    assert post_referral_event(client, token, ref, rid, call.referrals[0].version, trigger="withdraw",
                               reason="Family will drive").status_code == 302
    page = text(client.get(f"/calls/{ref}"))
    who = [row[1] for row in tables(page)[-1]]
    assert "SMS reply from Nia Nurse (CRT)" in who
    assert "SLA clock" in who
    assert "Handler (handler, CNH)" in who
    assert not [w for w in who if w.startswith(("system:", "sms:"))]


def test_one_user_look_up_a_page(client, users, svc, monkeypatch):
    ref, rid = referred(svc)
    token = signed_in(client)
    assert post_referral_event(client, token, ref, rid, 1, trigger="withdraw", reason="x").status_code == 302
    asked: list[set[str]] = []
    real = user_service.people

    def counting(svc_, usernames):
        asked.append(set(usernames))
        return real(svc_, usernames)

    monkeypatch.setattr(user_service, "people", counting)
    page = text(client.get(f"/calls/{ref}"))
    assert "Handler (handler, CNH)" in page
    assert len(asked) == 1 and {"handler", "setup"} <= asked[0]


def detail(page: str, key: str) -> str:
    """A row of the call's Details summary list: its value, each line break as " / "."""
    value = re.search(rf'<dt class="nhsuk-summary-list__key">{key}</dt><dd[^>]*>(.*?)</dd>', page, re.S)
    assert value is not None, key
    return " ".join(value[1].replace("<br>", " / ").split())


def test_the_details_show_the_address_or_say_it_is_not_known(client, users, svc):
    full = logged(svc, subject={"address_line_1": "12 Station Road", "town": "Loughborough"})
    street_only = logged(svc, subject={"address_line_1": "Flat 2, 1 Mill Lane"})
    town_only = logged(svc, subject={"town": "Loughborough"})
    neither = logged(svc)
    signed_in(client)
    page = text(client.get(f"/calls/{full}"))
    assert detail(page, "Address") == "12 Station Road / Loughborough"
    assert page.index(">Person</dt>") < page.index(">Address</dt>") < page.index(">Postcode</dt>")
    assert detail(page, "Postcode").startswith("LE11 3AB")
    assert detail(text(client.get(f"/calls/{street_only}")), "Address") == "Flat 2, 1 Mill Lane"
    assert detail(text(client.get(f"/calls/{town_only}")), "Address") == "Loughborough"
    assert detail(text(client.get(f"/calls/{neither}")), "Address") == "not known"
