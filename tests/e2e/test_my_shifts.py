"""The professional's worklist shows their shifts (issue 13 point 6): the next 7 days from the rota in
Europe/London time, each one's label and duty lead, which one is on now, and, after an OFF text, that they
are marked unavailable until when, in words."""
from __future__ import annotations

import re
from datetime import UTC, date, datetime, time

from ipoa.service import replies, rotas
from ipoa.service.professionals import add_professional, link_user
from tests.helpers.web import signed_in, text

NIA, SAM = "+447700900201", "+447700900210"
MONDAY, WEDNESDAY = 0, 2


def section(page: str) -> str:
    """The "Your shifts" section's words, tags stripped and spaces collapsed."""
    found = re.search(r'<section aria-labelledby="your-shifts">(.*?)</section>', page, re.S)
    assert found is not None, "no Your shifts section"
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


def items(page: str) -> list[str]:
    block = re.search(r'<ul class="nhsuk-list nhsuk-list--border" id="my-shifts">(.*?)</ul>', page, re.S)
    assert block is not None
    return [" ".join(re.sub(r"<[^>]+>", " ", li).split())
            for li in re.findall(r"<li[^>]*>(.*?)</li>", block.group(1), re.S)]


def nurse(svc, users) -> tuple[int, int]:
    nia = add_professional(svc, name="Nia Nurse", service="DN", mobile=NIA)
    sam = add_professional(svc, name="Sam Lead", service="DN", mobile=SAM)
    link_user(svc, NIA, users["professional"].id)
    return nia, sam


def test_the_next_7_days_in_london_time_with_the_duty_lead_and_the_one_on_now(client, svc, users, clock):
    nia, sam = nurse(svc, users)
    clock.set(datetime(2026, 6, 1, 9, 0, tzinfo=UTC))  # Monday 1 June, 10:00 BST
    rotas.add_pattern_shift(svc, "test", service="DN", weekday=MONDAY, start=time(8), end=time(20), members=[nia],
                            duty_lead=sam, label="day")
    rotas.add_pattern_shift(svc, "test", service="DN", weekday=WEDNESDAY, start=time(20), end=time(8),
                            members=[nia], label="night")
    rotas.set_standing_duty_lead(svc, "test", "DN", sam)
    rotas.add_one_off_shift(svc, "test", service="DN", day=date(2026, 6, 5), start=time(9), end=time(13),
                            members=[sam], duty_lead=nia, label="clinic")
    rotas.add_pattern_shift(svc, "test", service="DN", weekday=MONDAY, start=time(8), end=time(20),
                            members=[sam], label="not hers")
    signed_in(client, "professional")
    page = text(client.get("/my/referrals"))
    assert items(page) == [
        "On now Mon 1 Jun 08:00 to 20:00 , day Duty lead: Sam Lead.",
        "Wed 3 Jun 20:00 to Thu 4 Jun 08:00 , night Duty lead: Sam Lead (the service's standing duty lead).",
        "Fri 5 Jun 09:00 to 13:00 , clinic You are the duty lead (not working the shift).",
        # Starts within the 7 days from now (10:00 BST): listed; the week after's are not.
        "Mon 8 Jun 08:00 to 20:00 , day Duty lead: Sam Lead.",
    ]
    assert 'id="unavailable"' not in page and "marked unavailable" not in section(page)
    assert "Wed 10 Jun" not in section(page) and "not hers" not in section(page)


def test_after_texting_off_the_page_says_until_when_in_words(client, svc, users, clock):
    nia, sam = nurse(svc, users)
    rotas.add_pattern_shift(svc, "test", service="DN", weekday=MONDAY, start=time(8), end=time(20), members=[nia],
                            duty_lead=sam, label="day")
    assert "unavailable until 20:00" in replies.handle(svc, provider_sid="SM" + "4" * 32, from_number=NIA, body="OFF")
    signed_in(client, "professional")
    page = text(client.get("/my/referrals"))
    words = section(page)
    assert ("You are marked unavailable until 20:00 — text ON to the number your referral texts come from when "
            "you are back.") in words
    assert "Information:" in words  # the inset's state in words for screen readers, not its colour
    assert items(page)[0].startswith("On now Mon 23 Nov 08:00 to 20:00")
    assert "Nia Nurse · off duty" in page  # texted OFF: not on duty now

    replies.handle(svc, provider_sid="SM" + "5" * 32, from_number=NIA, body="ON")
    page = text(client.get("/my/referrals"))
    assert "marked unavailable" not in section(page) and "Nia Nurse · on duty" in page


def test_the_number_to_text_is_named_when_configured_and_no_shifts_is_said(client, svc, users, monkeypatch):
    nia, sam = nurse(svc, users)
    signed_in(client, "professional")
    assert "You have no shifts in the next 7 days." in section(text(client.get("/my/referrals")))
    rotas.add_pattern_shift(svc, "test", service="DN", weekday=MONDAY, start=time(8), end=time(20), members=[nia])
    replies.handle(svc, provider_sid="SM" + "6" * 32, from_number=NIA, body="off")
    monkeypatch.setattr(svc, "twilio", {**svc.twilio, "from": "+447700900999"})
    words = section(text(client.get("/my/referrals")))
    assert "text ON to +447700900999 when you are back" in words
    assert "Duty lead: the DN duty lead (the service's standing duty lead)." in words


def test_the_7_days_are_calendar_days_in_london_across_the_autumn_change(client, svc, users, clock):
    """The clocks go back on Sunday 25 October 2026, so the 7 days from Saturday 24 October 12:00 BST to Saturday
    31 October 12:00 GMT are 169 hours: a shift at 11:30 GMT on the 31st (168 h 30 min away) is within them."""
    nia, _ = nurse(svc, users)
    clock.set(datetime(2026, 10, 24, 11, 0, tzinfo=UTC))  # Saturday 24 October, 12:00 BST
    rotas.add_one_off_shift(svc, "test", service="DN", day=date(2026, 10, 31), start=time(11, 30), end=time(13),
                            members=[nia], label="clinic")
    rotas.add_one_off_shift(svc, "test", service="DN", day=date(2026, 10, 31), start=time(12), end=time(13),
                            members=[nia], label="too late")  # at 12:00 GMT, 7 days on to the minute: not within
    signed_in(client, "professional")
    assert items(text(client.get("/my/referrals"))) == ["Sat 31 Oct 11:30 to 13:00 , clinic Duty lead: the DN duty "
                                                        "lead (the service's standing duty lead)."]


def test_the_7_days_are_calendar_days_in_london_across_the_spring_change(client, svc, users, clock):
    """The clocks go forward on Sunday 29 March 2026, so the 7 days from Saturday 28 March 12:00 GMT to Saturday
    4 April 12:00 BST are 167 hours: a shift at 12:30 BST on the 4th (167 h 30 min away) is past them."""
    nia, _ = nurse(svc, users)
    clock.set(datetime(2026, 3, 28, 12, 0, tzinfo=UTC))  # Saturday 28 March, 12:00 GMT
    rotas.add_one_off_shift(svc, "test", service="DN", day=date(2026, 4, 4), start=time(11, 30), end=time(13),
                            members=[nia], label="clinic")
    rotas.add_one_off_shift(svc, "test", service="DN", day=date(2026, 4, 4), start=time(12, 30), end=time(13),
                            members=[nia], label="too late")
    signed_in(client, "professional")
    page = text(client.get("/my/referrals"))
    assert items(page) == ["Sat 4 Apr 11:30 to 13:00 , clinic Duty lead: the DN duty lead (the service's standing "
                           "duty lead)."]
    assert "too late" not in section(page)
