"""Issue 13: supervisors and administrators edit rotas in the browser (web/rota_pages.py), through the Flask
test client: every write through its form, each with its rota_changed security event; bad and hostile input
refused with 400 naming the field and nothing stored; a bad CSV refused with every line-numbered problem and
nothing imported; the CSV export downloaded; the gap warning (service/rota_warnings.py) shown when, and only
when, a change leaves the service with nobody on duty while it is open; handlers and professionals refused.

The scene: Monday 23 November 2026, 10:00 (GMT: UK time is UTC). DN is open 24/7 (workflows/directory.yaml)
and Ann is on its all-day shift every day, so the next week has no gap until a change opens one."""
from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime, time

import pytest
from sqlalchemy import func, select

from ipoa.adapters.orm import rota_changes, rota_shifts
from ipoa.service import rotas, security
from ipoa.service.professionals import add_professional
from tests.helpers.rota import on_duty
from tests.helpers.web import error_text, signed_in, text

TUESDAY, WEDNESDAY = 1, 2


@pytest.fixture
def team(svc):
    ann = add_professional(svc, name="Ann Day", service="DN", mobile="07700 900201")
    bob = add_professional(svc, name="Bob Night", service="DN", mobile="07700 900202")
    cat = add_professional(svc, name="Cat Cover", service="DN", mobile="07700 900203")
    dan = add_professional(svc, name="Dan Crisis", service="CRT", mobile="07700 900204")
    shifts = on_duty(svc, "DN", ann, duty_lead=ann)  # one all-day shift per weekday, Monday first
    crt_shift = on_duty(svc, "CRT", dan)[0]
    return {"ann": ann, "bob": bob, "cat": cat, "dan": dan, "shifts": shifts, "crt_shift": crt_shift}


@pytest.fixture
def sup(client, users):
    return signed_in(client, "supervisor")


def changes(svc) -> list[dict]:
    """The rota_changed security events' details, oldest first."""
    return [dict(e.detail, actor=e.actor, subject=e.subject)
            for e in reversed(security.events(svc, kind=security.ROTA_CHANGED, limit=200).events)]


def stored(svc) -> tuple[int, int, int]:
    """How many shifts, changes and rota_changed events are stored: unchanged by a refused form."""
    with svc.uow() as uow:
        shifts = uow.session.scalar(select(func.count()).select_from(rota_shifts).where(rota_shifts.c.active))
        made = uow.session.scalar(select(func.count()).select_from(rota_changes))
    return shifts, made, len(changes(svc))


def boxes(name: str, day: date) -> dict[str, str]:
    return {f"{name}-day": str(day.day), f"{name}-month": str(day.month), f"{name}-year": str(day.year)}


def follow(client, resp) -> str:
    assert resp.status_code == 302, text(resp)[:3000]
    return text(client.get(resp.headers["Location"]))


def warning(page: str) -> str | None:
    found = re.search(r'<section class="nhsuk-warning-callout" id="gap-warning".*?</section>', page, re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(0)).split()) if found else None


def summary(page: str) -> list[tuple[str, str]]:
    """The error summary's (link target, message) pairs."""
    found = re.search(r'<div class="nhsuk-error-summary".*?</ul>', page, re.S)
    assert found, "no error summary"
    return re.findall(r'<li><a href="#([^"]+)">(.*?)</a></li>', found.group(0))


def names_on_duty(svc, at: datetime) -> list[str]:
    return [p.name for p in rotas.on_duty_now(svc, "DN", at).professionals]


# -- who may ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("username, allowed", [("handler", False), ("professional", False),
                                                ("supervisor", True), ("admin", True)])
def test_only_supervisors_and_administrators_may_edit_rotas(client, users, svc, team, username, allowed):
    token = signed_in(client, username)
    for url in ("/rotas/", "/rotas/DN", "/rotas/DN/leave", "/rotas/import", "/rotas/DN/export.csv",
                f"/rotas/DN/weekly/{team['shifts'][0]}"):
        assert client.get(url).status_code == (200 if allowed else 403), url
    before = stored(svc)
    resp = client.post("/rotas/DN/leave", data={"csrf_token": token, "professional": str(team["ann"]),
                                                 **boxes("first_day", date(2026, 11, 25)),
                                                 **boxes("last_day", date(2026, 11, 25))})
    assert resp.status_code == (302 if allowed else 403)
    assert (stored(svc) == before) is not allowed
    nav = text(client.get("/rotas/" if allowed else "/no-access"))
    assert ('href="/rotas/"' in nav) is allowed  # the Rotas menu item


def test_the_overview_names_who_is_on_duty_now_and_next_and_the_gaps(client, sup, svc, team):
    page = text(client.get("/rotas/"))
    row = re.search(r'<tr class="nhsuk-table__row" id="rota-DN">.*?</tr>', page, re.S).group(0)
    assert 'href="/rotas/DN"' in row and "Ann Day" in row
    assert re.search(r'id="rota-DN-gaps">None<', page)
    assert re.search(r'id="rota-SCA-now">Nobody<', page)  # no rota for SCA: nobody, and gaps listed
    assert "07700" not in page and "+44" not in page  # names only


# -- each write through its form ------------------------------------------------------------------------------

def test_add_edit_and_stop_a_weekly_shift(client, sup, svc, team):
    resp = client.post("/rotas/DN/weekly/new", data={
        "csrf_token": sup, "weekday": str(WEDNESDAY), "start": "20:00", "end": "8:00", "label": "night",
        "members": [str(team["bob"]), str(team["cat"])], "duty_lead": str(team["bob"]),
        **boxes("valid_from", date(2026, 11, 25))})
    page = follow(client, resp)
    assert "Weekly shift added: Wednesday 20:00 to 08:00" in page
    assert warning(page) is None  # DN was covered already: no gap opened
    added = changes(svc)[-1]
    assert (added["change"], added["actor"], added["subject"]) == ("pattern_added", "supervisor", "DN")
    assert added["members"] == [team["bob"], team["cat"]] and added["duty_lead"] == team["bob"]
    night = added["shift"]
    assert "Bob Night" in names_on_duty(svc, datetime(2026, 11, 25, 21, tzinfo=UTC))

    edit = text(client.get(f"/rotas/DN/weekly/{night}"))
    assert 'name="start" type="text" value="20:00"' in edit
    assert re.search(rf'value="{team["bob"]}" checked', edit) and f'value="{team["ann"]}" checked' not in edit
    resp = client.post(f"/rotas/DN/weekly/{night}", data={
        "csrf_token": sup, "weekday": str(WEDNESDAY), "start": "20:00", "end": "08:00", "label": "night",
        "members": [str(team["cat"])], "duty_lead": str(team["cat"])})
    page = follow(client, resp)
    assert "Weekly shift changed: Wednesday 20:00 to 08:00 (night)" in page
    edited = changes(svc)[-1]
    assert edited["change"] == "pattern_edited" and edited["members"] == [team["cat"]]
    assert names_on_duty(svc, datetime(2026, 11, 25, 21, tzinfo=UTC)) == ["Ann Day", "Cat Cover"]

    assert "Stop the weekly shift" in text(client.get(f"/rotas/DN/weekly/{night}/stop"))
    refused = client.post(f"/rotas/DN/weekly/{night}/stop", data={"csrf_token": sup})
    assert refused.status_code == 400 and changes(svc)[-1]["change"] == "pattern_edited"
    page = follow(client, client.post(f"/rotas/DN/weekly/{night}/stop", data={"csrf_token": sup, "confirm": "yes"}))
    assert "Weekly shift stopped" in page and warning(page) is None  # Ann's all-day shift still covers it
    assert changes(svc)[-1]["change"] == "pattern_deactivated"
    assert client.get(f"/rotas/DN/weekly/{night}").status_code == 404  # stopped: no longer editable


def test_stopping_a_shift_that_leaves_nobody_warns_with_the_uncovered_hours(client, sup, svc, team):
    tuesday = team["shifts"][TUESDAY]
    page = follow(client, client.post(f"/rotas/DN/weekly/{tuesday}/stop", data={"csrf_token": sup, "confirm": "yes"}))
    said = warning(page)
    assert said is not None
    assert "This change leaves DN (" in said and "with nobody on duty while it is open" in said
    assert "Tue 24 Nov 00:00 to Wed 25 Nov 00:00, 24 hours" in said
    assert "Tue 1 Dec" not in said  # the next week only, from now: 1 December is beyond it
    assert warning(text(client.get("/rotas/DN"))) is None  # said once


def test_a_one_off_shift_a_cover_and_the_week_showing_them(client, sup, svc, team):
    page = follow(client, client.post("/rotas/DN/one-off/new", data={
        "csrf_token": sup, **boxes("day", date(2026, 11, 28)), "start": "09:00", "end": "17:00", "label": "extra",
        "members": [str(team["bob"])], "duty_lead": ""}))
    assert "One-off shift added: Saturday 28 November 2026, 09:00 to 17:00" in page and warning(page) is None
    assert changes(svc)[-1]["change"] == "shift_added"
    saturday = re.search(r'id="day-2026-11-28".*?</section>', page, re.S).group(0)
    assert "09:00 to 17:00" in saturday and "Bob Night" in saturday and "One-off" in saturday

    cover_form = text(client.get(f"/rotas/DN/cover?shift={team['shifts'][3]}&day=2026-11-26"))
    assert 'name="day-day" type="text" inputmode="numeric" value="26"' in cover_form
    page = follow(client, client.post("/rotas/DN/cover", data={
        "csrf_token": sup, "shift": str(team["shifts"][3]), **boxes("day", date(2026, 11, 26)), "people": "replace",
        "members": [str(team["cat"])], "duty_lead": str(team["cat"]), "reason": "Ann on a course"}))
    assert "Cover recorded: Thursday 00:00 to 00:00 (all day) on Thursday 26 November 2026" in page
    assert warning(page) is None
    logged = changes(svc)[-1]
    assert (logged["change"], logged["day"], logged["members"]) == ("cover", "2026-11-26", [team["cat"]])
    thursday = re.search(r'id="day-2026-11-26".*?</section>', page, re.S).group(0)
    assert "Cat Cover" in thursday and "Ann Day" not in thursday and "Changed: cover" in thursday
    assert names_on_duty(svc, datetime(2026, 11, 26, 12, tzinfo=UTC)) == ["Cat Cover"]

    # A cover naming nobody opens a gap on that date alone, and says so.
    page = follow(client, client.post("/rotas/DN/cover", data={
        "csrf_token": sup, "shift": str(team["shifts"][4]), **boxes("day", date(2026, 11, 27)), "people": "replace"}))
    assert "Fri 27 Nov 00:00 to Sat 28 Nov 00:00, 24 hours" in (warning(page) or "")
    assert changes(svc)[-1]["members"] == []


def test_leave_a_swap_and_the_standing_duty_lead(client, sup, svc, team):
    page = follow(client, client.post("/rotas/DN/leave", data={
        "csrf_token": sup, "professional": str(team["ann"]), **boxes("first_day", date(2026, 11, 25)),
        **boxes("last_day", date(2026, 11, 26)), "reason": "annual leave"}))
    assert "Leave recorded: Ann Day off from Wednesday 25 November 2026 to Thursday 26 November 2026" in page
    assert "Wed 25 Nov 00:00 to Fri 27 Nov 00:00, 48 hours" in (warning(page) or "")
    logged = changes(svc)[-1]
    assert (logged["change"], logged["professional"], logged["first_day"]) == ("leave", team["ann"], "2026-11-25")
    assert "Changed: leave" in page

    page = follow(client, client.post("/rotas/DN/swap", data={
        "csrf_token": sup, "first": str(team["ann"]), "first_shift": str(team["shifts"][0]),
        **boxes("first_day", date(2026, 11, 30)), "second": str(team["bob"]),
        "second_shift": str(team["shifts"][TUESDAY]), **boxes("second_day", date(2026, 12, 1))}))
    assert "Swap recorded: Ann Day and Bob Night" in page and warning(page) is None
    assert changes(svc)[-1]["change"] == "swap"
    assert names_on_duty(svc, datetime(2026, 11, 30, 12, tzinfo=UTC)) == ["Bob Night"]

    page = follow(client, client.post("/rotas/DN/duty-lead", data={"csrf_token": sup,
                                                                   "professional": str(team["cat"])}))
    assert "Standing duty lead set: Cat Cover" in page
    assert re.search(r'id="standing-duty-lead">Cat Cover', page)
    assert changes(svc)[-1] | {"actor": None} == {"change": "standing_duty_lead", "professional": team["cat"],
                                                  "subject": "DN", "actor": None}
    assert client.post("/rotas/DN/duty-lead", data={"csrf_token": sup, "professional": ""}).status_code == 400
    page = follow(client, client.post("/rotas/DN/duty-lead", data={"csrf_token": sup, "professional": "directory"}))
    assert "the directory's duty lead number" in page and changes(svc)[-1]["professional"] is None


# -- CSV ----------------------------------------------------------------------------------------------------

GOOD = """service,date,start,end,professional,role
DN,2026-11-28,08:00,20:00,07700 900202,member
DN,28/11/2026,08:00,20:00,07700 900202,duty_lead
"""
BAD = GOOD + "DN,2026-11-29,25:00,08:00,07700 900202,member\nXX,2026-11-29,08:00,20:00,07700 900999,member\n"


def one_offs(svc) -> int:
    with svc.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(rota_shifts).where(rota_shifts.c.day.is_not(None)))


def test_a_bad_csv_lists_every_line_and_imports_nothing_a_good_one_imports(client, sup, svc, team):
    before = stored(svc)
    resp = client.post("/rotas/import?service=DN", data={"csrf_token": sup, "csv": BAD})
    assert resp.status_code == 400
    page = text(resp)
    listed = summary(page)
    assert [m for _, m in listed[1:]] == [str(p) for p in rotas.import_csv(svc, "check", BAD).problems]
    assert [m.split(":")[0] for _, m in listed[1:]] == ["Line 4", "Line 5", "Line 5"]
    assert {target for target, _ in listed} == {"csv"}
    assert "Nothing was imported" in error_text(page, "csv")
    assert one_offs(svc) == 0 and stored(svc) == before

    upload = {"csrf_token": sup, "file": (io.BytesIO(BAD.encode()), "rota.csv")}
    resp = client.post("/rotas/import?service=DN", data=upload, content_type="multipart/form-data")
    assert resp.status_code == 400 and "Line 4:" in text(resp) and one_offs(svc) == 0

    upload = {"csrf_token": sup, "file": (io.BytesIO(GOOD.encode("utf-8-sig")), "rota.csv")}
    page = follow(client, client.post("/rotas/import?service=DN", data=upload, content_type="multipart/form-data"))
    assert "Imported 1 shift" in page and one_offs(svc) == 1
    assert changes(svc)[-1]["change"] == "csv_imported"
    assert warning(page) is None

    resp = client.post("/rotas/import", data={"csrf_token": sup, "csv": ""})
    assert resp.status_code == 400 and error_text(text(resp), "csv") == "Choose a rota CSV file or paste the CSV"
    resp = client.post("/rotas/import", data={"csrf_token": sup, "file": (io.BytesIO(b"\xff\xfe\x00bad"), "r.csv")},
                       content_type="multipart/form-data")
    assert resp.status_code == 400 and "UTF-8" in error_text(text(resp), "file")


@pytest.mark.parametrize("who", ["\u00b2", "1" * 5000])  # isdigit() but not int(); more digits than int() reads
def test_a_csv_naming_a_professional_by_an_id_int_cannot_read_is_listed_not_a_500(client, sup, svc, team, who):
    csv_text = "service,date,start,end,professional,role\n" + f"DN,2026-12-01,08:00,20:00,{who},duty_lead\n"
    resp = client.post("/rotas/import?service=DN", data={"csrf_token": sup, "csv": csv_text})
    assert resp.status_code == 400 and "Line 2:" in text(resp) and one_offs(svc) == 0


def test_the_export_downloads_the_rota_as_csv(client, sup, svc, team):
    resp = client.get("/rotas/DN/export.csv?week=2026-11-23")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert resp.headers["Content-Disposition"] == 'attachment; filename="rota-DN-2026-11-23.csv"'
    body = resp.get_data(as_text=True)
    assert body == rotas.export_csv(svc, "DN", first=date(2026, 11, 23))
    assert body.splitlines()[0] == "service,date,start,end,professional,role"
    assert "DN,2026-11-23,00:00,00:00,07700 900201,member" in body.splitlines()
    everything = client.get("/rotas/export.csv")
    assert everything.status_code == 200 and "attachment" in everything.headers["Content-Disposition"]
    assert {line.split(",")[0] for line in everything.get_data(as_text=True).splitlines()[1:]} == {"DN", "CRT"}
    assert client.get("/rotas/DN/export.csv?week=soon").status_code == 400


# -- bad and hostile input ----------------------------------------------------------------------------------

def test_bad_input_shows_the_form_again_naming_each_field_and_stores_nothing(client, sup, svc, team):
    before = stored(svc)
    resp = client.post("/rotas/DN/weekly/new", data={
        "csrf_token": sup, "weekday": "7", "start": "25:00", "end": "", "label": "x" * 21,
        "members": [str(team["ann"]), str(team["dan"])], "duty_lead": "abc",
        "valid_from-day": "31", "valid_from-month": "2", "valid_from-year": "2027"})
    assert resp.status_code == 400
    page = text(resp)
    assert [t for t, _ in summary(page)] == ["weekday", "start", "end", "label", "members-0", "duty_lead",
                                             "valid_from-day"]
    assert error_text(page, "start") == "The start time must be a 24-hour time like 08:00 or 20:30"
    assert error_text(page, "end") == "Enter the end time"
    assert error_text(page, "members") == "Choose the professionals from the list: one is not this service's"
    assert error_text(page, "valid_from") == "The runs from date must be a real date, for example 5 12 2026"
    assert 'name="start" type="text" value="25:00"' in page  # what was typed, shown again
    assert stored(svc) == before


def test_a_shift_that_never_happens_is_refused_naming_its_start_as_the_csv_refuses_it(client, sup, svc, team):
    """28 March 2027: 01:00 GMT becomes 02:00 BST, so 01:00 to 02:00 that day never happens (the CSV import's
    rule, docs/domain.md "Rotas"); 25 October 2026 00:00 to 00:00 is 24 hours on the wall and is taken."""
    before = stored(svc)
    never = ("The shift does not happen: 01:00 to 02:00 on Sunday 28 March 2027 falls in the hour the clocks go "
             "forward; change the times")
    shift = {"csrf_token": sup, "start": "01:00", "end": "02:00", "members": [str(team["bob"])],
             "duty_lead": str(team["bob"])}
    resp = client.post("/rotas/DN/one-off/new", data={**shift, **boxes("day", date(2027, 3, 28))})
    assert resp.status_code == 400
    assert summary(text(resp)) == [("start", never)] and error_text(text(resp), "start") == never
    resp = client.post("/rotas/DN/weekly/new", data={**shift, "weekday": "6", **boxes("valid_from", date(2027, 3, 28)),
                                                     **boxes("valid_to", date(2027, 3, 28))})
    assert resp.status_code == 400 and error_text(text(resp), "start") == never
    assert stored(svc) == before
    page = follow(client, client.post("/rotas/DN/one-off/new", data={
        **shift, **boxes("day", date(2026, 10, 25)), "start": "00:00", "end": "00:00"}))
    assert "One-off shift added: Sunday 25 October 2026, 00:00 to 00:00" in page


HOSTILE = [
    ("/rotas/DN/leave", {"professional": "{dan}"}, "professional"),  # another service's professional
    ("/rotas/DN/leave", {"professional": "9" * 40}, "professional"),
    ("/rotas/DN/cover", {"shift": "{crt_shift}", "people": "replace"}, "shift"),  # another service's shift
    ("/rotas/DN/cover", {"shift": "{tuesday}", "people": "keep", "day-day": "24", "day-month": "11",
                         "day-year": "2026"}, "people"),  # nothing to change
    ("/rotas/DN/cover", {"shift": "{tuesday}", "people": "replace", "day-day": "25", "day-month": "11",
                         "day-year": "2026"}, "day"),  # a Wednesday: the shift does not run
    ("/rotas/DN/swap", {"first": "{ann}", "second": "{ann}"}, "second"),
    ("/rotas/DN/duty-lead", {"professional": "{dan}"}, "professional"),
    ("/rotas/DN/one-off/new", {"label": "night\x00", "start": "08:00", "end": "20:00"}, "label"),
    ("/rotas/DN/one-off/new", {"label": "a" * 5000}, "label"),
    ("/rotas/DN/one-off/new", {"start": "\u202e08:00"}, "start"),
    ("/rotas/DN/leave", {"reason": "r" * 201, "professional": "{ann}"}, "reason"),
    ("/rotas/DN/leave", {"first_day-day": "1" * 500}, "first_day"),
    ("/rotas/DN/weekly/new", {"members": ["{ann}", "{ann}"]}, "members"),
    ("/rotas/DN/weekly/{tuesday}", {"weekday": "3", "start": "08:00", "end": "20:00"}, "weekday"),
    # A shift on 31/12/9999 ends in year 10000: every week page and export showing it was a 500.
    ("/rotas/DN/one-off/new", {"day-day": "31", "day-month": "12", "day-year": "9999", "start": "08:00",
                               "end": "07:00", "members": ["{ann}"]}, "day"),
    ("/rotas/DN/leave", {"professional": "{ann}", "first_day-day": "1", "first_day-month": "1",
                         "first_day-year": "0001", "reason": "r"}, "first_day"),
]


@pytest.mark.parametrize("url, form, field", HOSTILE)
def test_hostile_input_is_refused_naming_the_field(client, sup, svc, team, url, form, field):
    ids = {"dan": team["dan"], "ann": team["ann"], "crt_shift": team["crt_shift"],
           "tuesday": team["shifts"][TUESDAY]}

    def fill(value):
        return [fill(v) for v in value] if isinstance(value, list) else value.format(**ids)

    before = stored(svc)
    resp = client.post(url.format(**ids), data={"csrf_token": sup, **{k: fill(v) for k, v in form.items()}})
    assert resp.status_code == 400, text(resp)[:2000]
    assert error_text(text(resp), field)
    assert stored(svc) == before


def test_unknown_services_and_other_services_shifts_are_not_found(client, sup, svc, team):
    assert client.get("/rotas/XX").status_code == 404
    assert client.get("/rotas/XX/leave").status_code == 404
    assert client.post("/rotas/XX/leave", data={"csrf_token": sup}).status_code == 404
    crt = team["crt_shift"]
    assert client.get(f"/rotas/DN/weekly/{crt}").status_code == 404
    assert client.post(f"/rotas/DN/weekly/{crt}/stop", data={"csrf_token": sup, "confirm": "yes"}).status_code == 404
    assert client.get("/rotas/DN/weekly/99999999999999999999").status_code == 404
    assert client.get("/rotas/DN?week=not-a-date").status_code == 400
    assert client.get("/rotas/DN?week=2026-12-02").status_code == 200  # any day: its week
    assert stored(svc)[2] == 14  # only the scene's 14 weekly shifts were ever logged


@pytest.mark.parametrize("url", ["/rotas/DN?week=9999-12-31", "/rotas/DN?week=0001-01-01",
                                 "/rotas/export.csv?week=9999-12-31", "/rotas/export.csv?from=0001-01-01",
                                 "/rotas/DN/export.csv?from=9999-12-31"])
def test_a_week_outside_a_sane_range_is_400_not_500(client, sup, url):
    resp = client.get(url)
    assert resp.status_code == 400 and "from 2000 to 2099" in text(resp)


def link(page: str, link_id: str) -> str | None:
    found = re.search(rf'id="{link_id}" href="([^"]+)"', page)
    return found.group(1).replace("&amp;", "&") if found else None


def test_the_weeks_at_the_limits_offer_only_links_they_answer(client, sup, svc, team):
    """Rotas hold dates from 2000 to 2099: the first week of 2000 begins on Monday 27 December 1999 and the last
    of 2099 ends on Sunday 3 January 2100. Their pages show and download only their dates in range, and offer no
    week beyond."""
    last = text(client.get("/rotas/DN?week=2099-12-31"))
    assert "Week beginning Monday 28 December 2099" in last and link(last, "next-week") is None
    assert 'id="day-2099-12-31"' in last and 'id="day-2100-01-01"' not in last
    assert client.get(link(last, "previous-week")).status_code == 200
    body = client.get(link(last, "export-csv")).get_data(as_text=True)
    assert "DN,2099-12-31,00:00,00:00,07700 900201,member" in body and ",2100-" not in body
    assert rotas.import_csv(svc, "sup", body).ok
    first = text(client.get("/rotas/DN?week=2000-01-01"))
    assert "Week beginning Monday 27 December 1999" in first and link(first, "previous-week") is None
    assert 'id="day-2000-01-01"' in first and 'id="day-1999-12-31"' not in first and "1999-12-31" not in first
    body = client.get(link(first, "export-csv")).get_data(as_text=True)
    assert [row.split(",")[1] for row in body.splitlines()[1::2]] == ["2000-01-01", "2000-01-02"]
    assert rotas.import_csv(svc, "sup", body).ok
    second = text(client.get(link(first, "next-week")))
    assert "Week beginning Monday 3 January 2000" in second
    assert "Week beginning Monday 27 December 1999" in text(client.get(link(second, "previous-week")))
    assert client.get("/rotas/DN?week=1999-12-26").status_code == 400  # a week wholly before 2000


def test_an_import_from_the_overview_that_opens_a_gap_shows_it_on_that_services_rota(client, sup, svc, team):
    # DN's Tuesday is a one-off all-day shift, which the import replaces with a shorter one.
    rotas.deactivate_pattern_shift(svc, "sup", team["shifts"][TUESDAY])
    rotas.add_one_off_shift(svc, "sup", service="DN", day=date(2026, 11, 24), start=time(0), end=time(0),
                            members=[team["bob"]])
    shorter = ("service,date,start,end,professional,role\n"
               "DN,2026-11-24,08:00,20:00,07700 900202,member\nDN,2026-11-24,08:00,20:00,07700 900202,duty_lead\n")
    resp = client.post("/rotas/import", data={"csrf_token": sup, "csv": shorter})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/rotas/DN")
    page = text(client.get(resp.headers["Location"]))
    assert "Imported 1 shift" in page
    said = warning(page) or ""
    assert "Tue 24 Nov 00:00 to Tue 24 Nov 08:00, 8 hours" in said
    assert "Tue 24 Nov 20:00 to Wed 25 Nov 00:00, 4 hours" in said
    page = follow(client, client.post("/rotas/import", data={"csrf_token": sup, "csv": shorter}))
    assert "Imported 1 shift" in page and warning(page) is None and 'id="rota-DN"' in page  # the overview
