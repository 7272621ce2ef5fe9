"""The administrators' professionals pages (/admin/professionals) through the test client: add, edit,
deactivate (off the rota's shifts, no longer on duty) and reactivate, each with its professional_changed
security event and never a mobile number in it; bad or hostile input answered 400 naming the field, with
nothing stored; other roles refused."""
from __future__ import annotations

import html
import json
from datetime import UTC, date, datetime, time

import pytest
from sqlalchemy import func, select

from ipoa.adapters.orm import professionals, rota_shift_members, rota_shifts, security_events, standing_duty_leads
from ipoa.service import rotas
from ipoa.service.professionals import add_professional
from tests.conftest import csrf_token, make_user, sign_in
from tests.helpers.rota import on_duty
from tests.helpers.web import tables

BASE = "/admin/professionals/"
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # DEFAULT_NOW: a Monday, 10:00 in London


def text(resp) -> str:
    return html.unescape(resp.get_data(as_text=True))


def events(svc) -> list:
    with svc.uow() as uow:
        return uow.session.execute(select(security_events).where(security_events.c.kind == "professional_changed")
                                   .order_by(security_events.c.seq)).all()


def stored(svc) -> list[tuple]:
    with svc.uow() as uow:
        return [tuple(r) for r in uow.session.execute(
            select(professionals.c.id, professionals.c.name, professionals.c.mobile, professionals.c.service,
                   professionals.c.user_id, professionals.c.active).order_by(professionals.c.id))]


def admin(client) -> str:
    assert sign_in(client, "admin").status_code == 302
    return csrf_token(client, BASE)


def form(token: str, **fields) -> dict[str, str]:
    return {"csrf_token": token, "name": "Nia Nurse", "mobile": "07700 900201", "service": "DN", "user": "",
            **fields}


def notice(client) -> str:
    return text(client.get(BASE))


def test_an_administrator_adds_a_professional_linked_to_a_user(client, users, svc):
    token = admin(client)
    page = client.get(BASE + "new")
    assert page.status_code == 200 and 'name="mobile"' in text(page)
    resp = client.post(BASE + "new", data=form(token, user="professional"))
    assert resp.status_code == 302 and resp.headers["Location"].endswith(BASE)
    shown = notice(client)
    assert "Nia Nurse added to" in shown
    ((pid, name, mobile, service, user_id, active),) = stored(svc)
    assert (name, mobile, service, user_id, active) == ("Nia Nurse", "+447700900201", "DN",
                                                         users["professional"].id, True)
    row = tables(shown)[0][1]
    assert row[0] == "Nia Nurse" and "07700 900201" in row[2] and "+447700900201" in row[2]
    assert row[3] == "professional" and "Active" in row[4]
    (event,) = events(svc)
    assert (event.actor, event.subject, event.client) == ("admin", str(pid), "127.0.0.1")
    assert event.detail == {"change": "added", "service": "DN", "user": "professional"}
    assert "900201" not in json.dumps(event.detail)


def test_an_administrator_edits_a_professional_and_a_move_of_service_takes_them_off_the_old_rota(
        client, users, svc):
    pid = add_professional(svc, name="Nia Nurse", service="DN", mobile="07700 900201")
    shifts = on_duty(svc, "DN", pid, duty_lead=pid)
    rotas.set_standing_duty_lead(svc, "test", "DN", pid)
    assert [p.id for p in rotas.on_duty_now(svc, "DN", MONDAY_10).professionals] == [pid]
    token = admin(client)
    page = text(client.get(f"{BASE}{pid}"))
    assert 'value="Nia Nurse"' in page and 'value="07700 900201"' in page
    resp = client.post(f"{BASE}{pid}", data=form(token, name="Nia Jones", mobile="+44 7700 900299", service="CRT",
                                                 user="professional"))
    assert resp.status_code == 302
    assert "Nia Jones: name, mobile, service, linked user changed" in notice(client)
    assert stored(svc) == [(pid, "Nia Jones", "+447700900299", "CRT", users["professional"].id, True)]
    with svc.uow() as uow:
        s = uow.session
        assert s.scalar(select(func.count()).select_from(rota_shift_members)
                        .where(rota_shift_members.c.professional_id == pid)) == 0
        assert s.scalar(select(func.count()).select_from(rota_shifts)
                        .where(rota_shifts.c.duty_lead_id == pid)) == 0
        assert s.scalar(select(func.count()).select_from(standing_duty_leads)) == 0
    assert rotas.on_duty_now(svc, "DN", MONDAY_10).professionals == ()
    (_, event) = events(svc)
    assert event.detail == {"change": "edited", "fields": ["mobile", "name", "service", "user"], "service": "CRT",
                            "from_service": "DN", "removed_from_shifts": shifts, "user": "professional"}
    assert "900299" not in json.dumps(event.detail) and "900201" not in json.dumps(event.detail)
    # The same details again change nothing and record nothing; unlinking is one field.
    client.post(f"{BASE}{pid}", data=form(token, name="Nia Jones", mobile="07700 900299", service="CRT",
                                          user="professional"))
    assert len(events(svc)) == 2 and "nothing changed" in notice(client)
    client.post(f"{BASE}{pid}", data=form(token, name="Nia Jones", mobile="07700 900299", service="CRT"))
    assert stored(svc)[0][4] is None
    assert events(svc)[-1].detail == {"change": "edited", "fields": ["user"], "service": "CRT", "user": None}


def test_deactivating_names_the_shifts_takes_them_off_and_they_are_no_longer_on_duty(client, users, svc, clock):
    pid = add_professional(svc, name="Nia Nurse", service="DN", mobile="07700 900201")
    other = add_professional(svc, name="Ned Nurse", service="DN", mobile="07700 900202")
    monday = rotas.add_pattern_shift(svc, "test", service="DN", weekday=0, start=time(8), end=time(20),
                                     members=[pid, other], duty_lead=pid, label="day")
    past = rotas.add_one_off_shift(svc, "test", service="DN", day=date(2026, 11, 20), start=time(8), end=time(20),
                                   members=[pid])
    future = rotas.add_one_off_shift(svc, "test", service="DN", day=date(2026, 11, 28), start=time(8),
                                     end=time(20), members=[pid])
    rotas.set_standing_duty_lead(svc, "test", "DN", pid)
    assert {p.id for p in rotas.on_duty_now(svc, "DN", MONDAY_10).professionals} == {pid, other}
    added = len(events(svc))  # the two professionals added
    token = admin(client)
    confirm = text(client.get(f"{BASE}{pid}/deactivate"))
    assert "Are you sure you want to deactivate Nia Nurse?" in confirm
    assert "DN day, Mondays 08:00 to 20:00, and its duty lead" in confirm
    assert "DN, Saturday 28 November 2026 08:00 to 20:00" in confirm
    assert "20 November" not in confirm  # a past shift is the record of what happened
    assert "standing duty lead of" in confirm
    assert len(events(svc)) == added  # the confirmation changes nothing
    resp = client.post(f"{BASE}{pid}/deactivate", data={"csrf_token": token})
    assert resp.status_code == 302
    listing = notice(client)
    assert "Nia Nurse is deactivated" in listing and "Taken off: DN day, Mondays" in listing
    # Ned still works Mondays, but Saturday's one-off shift had only Nia: the administrator is warned.
    assert ("This leaves Community (district) nursing (DN) with nobody on duty while it is open: "
            "Sat 28 Nov 08:00 to Sat 28 Nov 20:00, 12 hours. Arrange cover on its rota.") in listing
    assert listing.count("This leaves") == 1
    on_duty_now = rotas.on_duty_now(svc, "DN", MONDAY_10)
    assert [p.id for p in on_duty_now.professionals] == [other]
    assert on_duty_now.duty_leads == ()
    assert on_duty_now.standing_duty_lead.id is None  # back to the directory's duty-lead number
    with svc.uow() as uow:
        members = set(uow.session.execute(select(rota_shift_members.c.shift_id, rota_shift_members.c.professional_id)))
    assert members == {(monday, other), (past, pid)}
    assert stored(svc)[0][5] is False  # kept, deactivated
    (event,) = events(svc)[added:]
    assert event.detail == {"change": "deactivated", "service": "DN", "removed_from_shifts": [monday, future],
                            "standing_duty_lead_of": ["DN"]}
    row = {r[0]: r for r in tables(listing)[0][1:]}["Nia Nurse"]
    assert "Deactivated" in row[4] and "Reactivate" in row[5]
    # Again: nothing changes, nothing recorded.
    client.post(f"{BASE}{pid}/deactivate", data={"csrf_token": token})
    again = notice(client)
    assert len(events(svc)) == added + 1 and "already deactivated" in again and "This leaves" not in again
    # Reactivated: active again, not back on the shifts (whoever keeps the rota puts them back).
    assert client.post(f"{BASE}{pid}/reactivate", data={"csrf_token": token}).status_code == 302
    assert "Nia Nurse is active again" in notice(client)
    assert stored(svc)[0][5] is True
    assert events(svc)[-1].detail == {"change": "reactivated", "service": "DN"}
    assert [p.id for p in rotas.on_duty_now(svc, "DN", MONDAY_10).professionals] == [other]
    client.post(f"{BASE}{pid}/reactivate", data={"csrf_token": token})
    assert len(events(svc)) == added + 2 and "already active" in notice(client)


def test_the_list_filters_by_service(client, users, svc):
    add_professional(svc, name="Nia Nurse", service="DN", mobile="07700 900201")
    add_professional(svc, name="Cal Crisis", service="CRT", mobile="07700 900202")
    admin(client)
    everyone = text(client.get(BASE))
    assert "Nia Nurse" in everyone and "Cal Crisis" in everyone
    crt = text(client.get(BASE + "?service=CRT"))
    assert "Cal Crisis" in crt and "Nia Nurse" not in crt
    bad = client.get(BASE + "?service=NOPE")
    assert bad.status_code == 400 and "Choose a service from the list" in text(bad)


LONG = "N" * 5000


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"mobile": "0116 496 0000"}, "mobile", "valid UK mobile"),                 # a landline
    ({"mobile": "07700 900999"}, "mobile", "already registered"),                # another professional's
    ({"mobile": ""}, "mobile", "Enter the professional's UK mobile"),
    ({"mobile": "07700 9002\x0001"}, "mobile", "valid UK mobile"),               # a NUL
    ({"mobile": "0" * 5000}, "mobile", "valid UK mobile"),
    ({"service": "NOPE"}, "service", "Choose a service from the directory"),
    ({"service": ""}, "service", "Choose the professional's service"),
    ({"user": "handler"}, "user", "role professional"),
    ({"user": "nobody.here"}, "user", "no user with that username"),
    ({"user": "taken.nurse"}, "user", "already linked to another professional"),
    ({"user": "gone.nurse"}, "user", "deactivated"),
    ({"user": "u" * 300}, "user", "at most 64 characters"),
    ({"name": ""}, "name", "Enter the professional's name"),
    ({"name": LONG}, "name", "120 characters or fewer"),
    ({"name": "Nia\nadmin sign_in"}, "name", "on one line"),
    ({"name": "Nia \u202eesruN"}, "name", "bidirectional"),
    ({"name": "Nia Nu\u200brse"}, "name", "invisible character"),               # a zero-width space
])
def test_bad_input_is_refused_naming_the_field_and_nothing_is_stored(client, users, svc, fields, field, message):
    from ipoa.service import users as user_service

    add_professional(svc, name="Taken", service="DN", mobile="07700 900999", user=None)
    taken = make_user(svc, "taken.nurse", "professional", None)
    make_user(svc, "gone.nurse", "professional", None)
    user_service.set_active(svc, "test", "gone.nurse", False)
    with svc.uow() as uow:
        uow.professionals.update(stored(svc)[0][0], user_id=taken.id)
        uow.commit()
    pid = add_professional(svc, name="Nia Nurse", service="DN", mobile="07700 900201")
    token = admin(client)
    before, events_before = stored(svc), len(events(svc))
    for url in (BASE + "new", f"{BASE}{pid}"):
        body = form(token, mobile="07700 900202") if url.endswith("new") else form(token)
        body.update(fields)
        resp = client.post(url, data=body)
        page = text(resp)
        assert resp.status_code == 400, (url, page[:500])
        assert 'class="nhsuk-error-summary"' in page and f'href="#{field}"' in page
        assert f'id="{field}-error"' in page and message in page
        assert stored(svc) == before and len(events(svc)) == events_before


def test_wrong_types_and_repeated_fields_are_refused_or_ignored_never_a_500(client, users, svc):
    pid = add_professional(svc, name="Nia Nurse", service="DN", mobile="07700 900201")
    token = admin(client)
    before = stored(svc)
    # No fields at all (as a script might post): every required field named.
    resp = client.post(BASE + "new", data={"csrf_token": token})
    assert resp.status_code == 400
    for name in ("name", "mobile", "service"):
        assert f'id="{name}-error"' in text(resp)
    # JSON instead of a form: the fields are missing, so named.
    resp = client.post(f"{BASE}{pid}", json={"name": ["a"], "mobile": 7700900201}, headers={"X-CSRFToken": token})
    assert resp.status_code == 400 and 'id="mobile-error"' in text(resp)
    assert stored(svc) == before
    assert client.get(f"{BASE}999999").status_code == 404
    assert client.get(f"{BASE}999999/deactivate").status_code == 404
    assert client.post(f"{BASE}999999/deactivate", data={"csrf_token": token}).status_code == 404
    assert client.post(f"{BASE}999999/reactivate", data={"csrf_token": token}).status_code == 404
    assert client.get(f"{BASE}not-a-number").status_code == 404


def test_a_post_without_the_csrf_token_is_refused(client, users, svc):
    pid = add_professional(svc, name="Nia Nurse", service="DN", mobile="07700 900201")
    admin(client)
    assert client.post(f"{BASE}{pid}/deactivate").status_code == 400
    assert client.post(BASE + "new", data=form("")).status_code == 400
    assert stored(svc)[0][5] is True and len(stored(svc)) == 1


@pytest.mark.parametrize("role", ["handler", "supervisor", "professional"])
def test_other_roles_are_refused(client, users, svc, role):
    pid = add_professional(svc, name="Nia Nurse", service="DN", mobile="07700 900201")
    assert sign_in(client, role).status_code == 302
    token = csrf_token(client, "/no-access")
    for url in (BASE, BASE + "new", f"{BASE}{pid}", f"{BASE}{pid}/deactivate"):
        assert client.get(url).status_code == 403, url
    for url in (BASE + "new", f"{BASE}{pid}", f"{BASE}{pid}/deactivate", f"{BASE}{pid}/reactivate"):
        assert client.post(url, data=form(token)).status_code == 403, url
    assert stored(svc)[0][1:] == ("Nia Nurse", "+447700900201", "DN", None, True)
    assert "Professionals</a>" not in text(client.get("/no-access"))


def test_the_admin_navigation_links_to_the_page(client, users, svc):
    admin(client)
    assert f'href="{BASE}"' in text(client.get("/admin/security"))


def test_a_deactivated_professionals_user_sees_and_acts_on_no_referral(client, users, svc, handler_actor):
    """Deactivated (left the service): their user account, if still active, is of no service any more: no
    worklist, no referral page, and so no accept from the web (the policy's own_service relationship needs
    a service)."""
    from ipoa.service.professionals import deactivate_professional, link_user
    from tests.helpers.sms import referred_call

    add_professional(svc, name="Nia Nurse", service="DN", mobile="07700 900201")
    link_user(svc, "07700 900201", users["professional"].id)
    referral_id = referred_call(svc, handler_actor, service="DN").referrals[0].id
    assert sign_in(client, "professional").status_code == 302
    assert client.get("/my/referrals").status_code == 200
    assert client.get(f"/my/referrals/{referral_id}").status_code == 200
    (pid,) = [r[0] for r in stored(svc)]
    deactivate_professional(svc, "admin", pid)
    assert client.get("/my/referrals").status_code == 403
    assert client.get(f"/my/referrals/{referral_id}").status_code == 403
