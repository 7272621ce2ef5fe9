"""Issue 13 on the supervisor's dashboard, through the Flask test client at fixed instants: who the rota
has on duty now and next per service (names only, never a mobile number), across a night shift, and the
exceptions panel's gaps in the rota over the next 24 hours (docs/domain.md, "Rotas")."""
from __future__ import annotations

import re
from datetime import UTC, date, datetime, time

import pytest

from ipoa.service import rotas
from ipoa.service.professionals import add_professional
from tests.helpers.web import signed_in, text

WEDNESDAY = 2  # 2 December 2026 is a Wednesday, in winter: London time is UTC


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


def words(page: str, element_id: str) -> str | None:
    """The text of the element with this id, tags taken out and spaces closed up; None if not on the page."""
    found = re.search(rf'<(\w+)[^>]* id="{element_id}"[^>]*>(.*?)</\1>', page, re.S)
    return " ".join(re.sub(r"<[^>]+>", "", found.group(2)).split()) if found else None


@pytest.fixture
def dn_rota(svc):
    """DN (open 24/7): Ann works Wednesday 08:00-20:00, Bob the Wednesday night 20:00-08:00."""
    ann = add_professional(svc, name="Ann Day", service="DN", mobile="07700 900201")
    bob = add_professional(svc, name="Bob Night", service="DN", mobile="07700 900202")
    rotas.add_pattern_shift(svc, "sup", service="DN", weekday=WEDNESDAY, start=time(8), end=time(20),
                            members=[ann], duty_lead=ann, label="day")
    rotas.add_pattern_shift(svc, "sup", service="DN", weekday=WEDNESDAY, start=time(20), end=time(8),
                            members=[bob], duty_lead=bob, label="night")
    return {"ann": ann, "bob": bob}


def test_the_dashboard_names_who_is_on_duty_now_and_next_through_a_night(client, users, svc, clock, dn_rota):
    signed_in(client, "supervisor")
    clock.set(at(2, 10))
    page = text(client.get("/supervisor"))
    assert words(page, "s-DN-on-duty") == "1"
    assert words(page, "s-DN-now") == "Now: Ann Day"
    assert words(page, "s-DN-next") == "Next from 20:00 today: Bob Night"
    assert words(page, "s-CRT-now") is None and words(page, "s-CRT-next") is None  # no rota: no names
    assert "07700 900201" not in page and "+447700900201" not in page  # names only

    clock.set(at(2, 21))  # the night shift
    page = text(client.get("/supervisor/dashboard/fragment"))
    assert words(page, "s-DN-now") == "Now: Bob Night"
    assert words(page, "s-DN-next") == "Next from 08:00 Wednesday 9 December: Ann Day"  # nothing on Thursday
    clock.set(at(3, 7, 59))  # still the night, into Thursday
    assert words(text(client.get("/supervisor/dashboard/fragment")), "s-DN-now") == "Now: Bob Night"
    clock.set(at(3, 8))  # the night is over and nobody follows it
    page = text(client.get("/supervisor/dashboard/fragment"))
    assert words(page, "s-DN-on-duty") == "0" and words(page, "s-DN-now") is None


def test_the_exceptions_panel_lists_the_gaps_in_the_rota_ahead(client, users, svc, clock, dn_rota):
    signed_in(client, "supervisor")
    clock.set(at(2, 10))
    page = text(client.get("/supervisor"))
    assert "Gaps in the rota in the next 24 hours: arrange cover" in page
    # OOHV is open 20:00-08:00 by its calendar and has no rota.
    assert words(page, "gap-OOHV") == ("OOHV: nobody rostered 20:00–08:00 tonight (12 hours) "
                                       "(Out-of-hours home visiting (OOHV))")
    # DN's night shift ends at 08:00 Thursday, and Thursday has no shift.
    assert words(page, "gap-DN").startswith("DN: nobody rostered from 08:00 tomorrow for the rest of the next "
                                            "24 hours (2 hours)")
    assert page.index('id="gap-CRT"') < page.index('id="gap-OOHV"') < page.index('id="gap-DN"')  # soonest first

    # Bob on leave that night: the night shift is left with only its duty lead, which is a gap.
    rotas.leave(svc, "sup", dn_rota["bob"], date(2026, 12, 2), date(2026, 12, 2))
    page = text(client.get("/supervisor/dashboard/fragment"))
    assert words(page, "gap-DN").startswith("DN: nobody rostered from 20:00 today for the rest of the next 24 "
                                            "hours (14 hours)")
    # In the night a gap under way runs from now.
    clock.set(at(3, 9))
    page = text(client.get("/supervisor/dashboard/fragment"))
    assert words(page, "gap-DN").startswith("DN: nobody rostered for the whole of the next 24 hours (24 hours)")


def test_a_service_fully_rostered_for_the_next_24_hours_has_no_gap(client, users, svc, clock):
    ann = add_professional(svc, name="Ann Day", service="DN", mobile="07700 900201")
    for weekday in range(7):
        rotas.add_pattern_shift(svc, "sup", service="DN", weekday=weekday, start=time(0), end=time(0),
                                members=[ann], label="all day")
    signed_in(client, "supervisor")
    clock.set(at(2, 10))
    page = text(client.get("/supervisor"))
    assert 'id="gap-DN"' not in page and 'id="gap-CRT"' in page
    assert words(page, "s-DN-next") == "Next from 00:00 tomorrow: Ann Day"
