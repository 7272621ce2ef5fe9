"""Errors on the handler's forms, through the Flask test client: each field's own plain-English message
(the same the API gives), in the order the fields appear on the page, with the parts of a date to
highlight and what was typed kept; dates typed as day, month and year and times as 24-hour UK time,
whatever the browser's locale. Checked in the pages' context (what the templates are given) and in the
answer, with nothing stored."""
from __future__ import annotations

import html
import re
from contextlib import contextmanager
from datetime import UTC, date, datetime

import pytest
from flask import template_rendered

from tests.helpers.web import (
    count_calls,
    history_len,
    load,
    log_form,
    logged,
    post_event,
    ref_from_redirect,
    signed_in,
    text,
)

JULY_1_10_BST = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)


@contextmanager
def rendered(app):
    """The context of each template rendered meanwhile."""
    seen: list[dict] = []

    def record(sender, template, context, **extra):
        seen.append(context)

    with template_rendered.connected_to(record, app):
        yield seen


def dob(day: str, month: str, year: str) -> dict[str, str]:
    return {"date_of_birth-day": day, "date_of_birth-month": month, "date_of_birth-year": year}


def test_5_11_1941_is_stored_as_5_november(client, users, svc):
    token = signed_in(client)
    ref = ref_from_redirect(client.post("/calls/new", data=log_form(token, **dob("5", "11", "1941"))))
    assert load(svc, ref).date_of_birth == date(1941, 11, 5)
    ref = ref_from_redirect(client.post("/calls/new", data=log_form(token, confirm_duplicate="1",
                                                                   **dob("05", "11", "1941"))))
    assert load(svc, ref).date_of_birth == date(1941, 11, 5)


def test_an_empty_date_of_birth_is_none(client, users, svc):
    token = signed_in(client)
    ref = ref_from_redirect(client.post("/calls/new", data=log_form(token, **dob("", "", ""))))
    assert load(svc, ref).date_of_birth is None


@pytest.mark.parametrize("parts, message, highlight", [
    (("31", "02", "1980"), "Date of birth must be a real date", ["day"]),
    (("5", "13", "1980"), "Date of birth must be a real date", ["month"]),
    (("5", "11", "41"), "Date of birth must have a year of 4 numbers, like 1941", ["year"]),
    (("5", "11", ""), "Date of birth must include a year", ["year"]),
    (("", "", "1941"), "Date of birth must include a day and month", ["day", "month"]),
    (("5", "Nov", "1941"), "Date of birth must be a real date", ["month"]),
    (("1", "1", "2030"), "Date of birth must be in the past", None),
    (("31", "12", "1899"), "Date of birth must be 1 January 1900 or later", None),
])
def test_a_bad_date_of_birth_is_refused_with_its_own_message(app, client, users, svc, parts, message, highlight):
    token = signed_in(client)
    with rendered(app) as seen:
        resp = client.post("/calls/new", data=log_form(token, **dob(*parts)))
    assert resp.status_code == 422
    context = seen[-1]
    assert context["errors"] == {"date_of_birth": message}
    assert context["error_parts"].get("date_of_birth") == highlight  # None: every part
    # What was typed is shown again, in its boxes.
    assert [context["values"][f"date_of_birth-{p}"] for p in ("day", "month", "year")] == list(parts)
    assert message in html.unescape(text(resp))
    assert count_calls(svc) == 0


def test_errors_come_in_page_order_with_plain_messages_and_no_banner(app, client, users, svc):
    token = signed_in(client)
    form = log_form(token, caller_phone="0123", nhs_number="12345", given_name="", summary="", urgency="",
                    **dob("30", "2", "1950"))
    with rendered(app) as seen:
        resp = client.post("/calls/new", data=form)
    assert resp.status_code == 422
    errors = seen[-1]["errors"]
    assert list(errors.items()) == [
        ("urgency", "Select the urgency"),
        ("summary", "Enter a summary of the call"),
        ("given_name", "Enter the person's given name"),
        ("nhs_number", "Enter a 10-digit NHS number"),
        ("date_of_birth", "Date of birth must be a real date"),
        ("caller_phone", "Enter the caller's phone number, like 01632 960 001 or 07700 900 982"),
    ]
    page = text(resp)
    # The summary's order is the form's: each field's box appears in the page in the same order.
    boxes = [page.index(f'id="{name}{"-day" if name == "date_of_birth" else ""}"') for name in errors]
    assert boxes == sorted(boxes)
    assert "Please correct the fields marked below." not in page
    assert re.search(r"<title>\s*Error: ", page)
    for message in errors.values():
        assert message in html.unescape(page)
    assert not re.search(r"Input should|String should|Value error", page)
    assert count_calls(svc) == 0


def test_the_first_page_has_no_errors(app, client, users):
    signed_in(client)
    with rendered(app) as seen:
        page = text(client.get("/calls/new"))
    assert seen[-1]["errors"] == {} and seen[-1]["error_parts"] == {}
    assert not re.search(r"<title>\s*Error: ", page)


def callback(day: str, month: str, year: str, at: str) -> dict[str, str]:
    return {"callback_at-day": day, "callback_at-month": month, "callback_at-year": year, "callback_at-time": at}


def test_callback_typed_as_date_and_uk_time(client, users, svc, clock):
    clock.set(JULY_1_10_BST)
    ref = logged(svc)
    token = signed_in(client)
    resp = post_event(client, token, ref, 1, trigger="promise_callback", **callback("1", "7", "2026", "14:30"))
    assert resp.status_code == 302
    assert load(svc, ref).callback_due == datetime(2026, 7, 1, 13, 30, tzinfo=UTC)  # 14:30 BST


@pytest.mark.parametrize("parts, message, highlight", [
    (("1", "7", "2026", ""), "Enter a time for the callback, like 14:30", ["time"]),
    (("1", "7", "2026", "2pm"), "Enter a time for the callback in the 24-hour clock, like 14:30", ["time"]),
    (("1", "7", "2026", "25:00"), "Enter a time for the callback in the 24-hour clock, like 14:30", ["time"]),
    (("31", "6", "2026", "14:30"), "Call back at must be a real date", ["day"]),
    (("1", "7", "26", "14:30"), "Call back at must have a year of 4 numbers, like 2026", ["year"]),
    (("", "7", "2026", "14:30"), "Call back at must include a day", ["day"]),
    (("", "", "", ""), "Enter the date and time to call back", None),
    (("1", "7", "2026", "09:30"), "Call back at must be in the future", None),  # 08:30 UTC: gone
    (("1", "9", "2026", "09:30"), "Call back at must be within 30 days", None),
])
def test_a_bad_callback_is_refused_with_its_own_message(app, client, users, svc, clock, parts, message,
                                                          highlight):
    clock.set(JULY_1_10_BST)
    ref = logged(svc)
    token = signed_in(client)
    with rendered(app) as seen:
        resp = post_event(client, token, ref, 1, trigger="promise_callback", **callback(*parts))
    assert resp.status_code == 422
    context = [c for c in seen if "call" in c][-1]
    assert context["errors"] == {"callback_at": message}
    assert context["error_parts"].get("callback_at") == highlight
    assert context["values"]["callback_at-time"] == parts[3]  # what was typed, to show again
    assert message in html.unescape(text(resp))
    call = load(svc, ref)
    assert (call.state, call.version, call.callback_due) == ("logged", 1, None)
    assert history_len(svc, ref) == 1


def test_a_reason_error_on_the_call_page_is_plain(app, client, users, svc):
    ref = logged(svc)
    token = signed_in(client)
    with rendered(app) as seen:
        resp = post_event(client, token, ref, 1, trigger="cancel", reason="  ")
    assert resp.status_code == 422
    assert [c for c in seen if "call" in c][-1]["errors"] == {"reason": "Enter a reason"}
    assert "Not done:" not in text(resp)
    assert load(svc, ref).state == "logged"

