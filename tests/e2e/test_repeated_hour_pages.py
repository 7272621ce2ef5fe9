"""Times on the pages in the hour that happens twice (01:00-01:59 on the last Sunday of October), through the Flask
test client at fixed instants: the call page, the queue and the supervisor's dashboard say " BST" or " GMT" after
such a time, and nothing after any other (domain/date_parts.london_clock, docs/domain.md "Time"). On 25 October
2026 the clocks go back at 02:00 BST: 00:40 UTC is 01:40 BST, 01:40 UTC is 01:40 GMT."""
from __future__ import annotations

import re
from datetime import UTC, datetime, time

from ipoa.service import rotas
from ipoa.service.professionals import add_professional
from tests.helpers.web import logged, post_event, signed_in, text

SATURDAY, SUNDAY = 5, 6


def words(page: str, element_id: str) -> str | None:
    """The text of the element with this id, tags taken out and spaces closed up; None if not on the page."""
    found = re.search(rf'<(\w+)[^>]* id="{element_id}"[^>]*>(.*?)</\1>', page, re.S)
    return " ".join(re.sub(r"<[^>]+>", "", found.group(2)).split()) if found else None


def plain(page: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", page).split())


def test_the_call_page_and_the_queue_say_which_reading_of_a_repeated_time(client, users, svc, clock):
    token = signed_in(client)
    clock.set(datetime(2026, 10, 25, 1, 10, tzinfo=UTC))  # 01:10 GMT, the second 01:10
    second = logged(svc)
    assert post_event(client, token, second, 1, trigger="promise_callback",
                      callback_at="2026-10-25T01:20").status_code == 302  # 01:20 GMT, ten minutes ahead
    clock.set(datetime(2026, 10, 25, 0, 10, tzinfo=UTC))  # 01:10 BST, the first
    first = logged(svc)
    assert post_event(client, token, first, 1, trigger="promise_callback",
                      callback_at="2026-10-25T01:20").status_code == 302  # 01:20 BST

    page = plain(text(client.get(f"/calls/{second}")))
    assert "Logged Sun 25 Oct 2026 01:10 GMT by" in page
    assert "Callback promised Sun 25 Oct 2026 01:20 GMT" in page
    assert "due Sun 25 Oct 01:35 GMT" in page  # the callback clock escalates 15 minutes after the promised time
    assert "25 Oct 01:10:00 GMT Handler (handler, CNH)" in page  # the history
    page = plain(text(client.get(f"/calls/{first}")))
    assert "Logged Sun 25 Oct 2026 01:10 BST by" in page
    assert "Callback promised Sun 25 Oct 2026 01:20 BST" in page and "due Sun 25 Oct 01:35 BST" in page

    clock.set(datetime(2026, 10, 25, 1, 25, tzinfo=UTC))  # 01:25 GMT: both callbacks are due, listed so
    queue = plain(text(client.get("/queue?centre=CNH")))
    assert "promised 01:20 BST" in queue and "promised 01:20 GMT" in queue
    assert "Queue as of 01:25:00 GMT . " in queue and "Not updated since 01:25:00 GMT:" in queue

    clock.set(datetime(2026, 10, 25, 2, 0, tzinfo=UTC))  # 02:00 GMT: happens once, nothing added
    queue = plain(text(client.get("/queue?centre=CNH")))
    assert "Queue as of 02:00:00 . " in queue and "promised 01:20 GMT" in queue


def test_the_dashboard_says_which_reading_of_a_shift_change_in_the_repeated_hour(client, users, svc, clock):
    """DN's Saturday shift runs to 01:30 on the Sunday (its first reading, BST, as rotas read a wall time:
    docs/domain.md "Rotas") and the next starts then, so the dashboard's next shift and gap say 01:30 BST."""
    ann = add_professional(svc, name="Ann Day", service="DN", mobile="07700 900201")
    bob = add_professional(svc, name="Bob Night", service="DN", mobile="07700 900202")
    rotas.add_pattern_shift(svc, "sup", service="DN", weekday=SATURDAY, start=time(8), end=time(1, 30),
                            members=[ann], label="long day")
    rotas.add_pattern_shift(svc, "sup", service="DN", weekday=SUNDAY, start=time(1, 30), end=time(4),
                            members=[bob], label="small hours")
    signed_in(client, "supervisor")
    clock.set(datetime(2026, 10, 24, 11, 0, tzinfo=UTC))  # Saturday 24 October, 12:00 BST
    page = text(client.get("/supervisor"))
    assert words(page, "s-DN-next") == "Next from 01:30 BST tomorrow: Bob Night"
    # Bob's shift ends at 04:00 GMT: nobody from then, and the 24 hours end at 11:00 GMT.
    assert words(page, "gap-DN").startswith("DN: nobody rostered from 04:00 tomorrow for the rest of the next 24 "
                                            "hours (7 hours)")
    clock.set(datetime(2026, 10, 24, 23, 0, tzinfo=UTC))  # 00:00 BST: Ann's shift ends at 01:30 BST
    page = text(client.get("/supervisor/dashboard/fragment"))
    assert words(page, "s-DN-next") == "Next from 01:30 BST today: Bob Night"
