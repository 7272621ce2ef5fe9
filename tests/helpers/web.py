"""Helpers for the server-rendered pages through the Flask test client: signing in, setting the scene
through the service layer, posting the pages' forms, and reading what a page shows (blocks, forms, tables)."""
from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

from sqlalchemy import func, select

from ipoa.adapters import orm
from ipoa.service import calls as call_service
from ipoa.service.calls import Actor
from tests.helpers import PASSWORD, call_payload, csrf_token, sign_in

REF_LINK = re.compile(r'href="/calls/([0-9A-Z]{4}-[0-9A-Z]{4})"')


def signed_in(client, username: str = "handler") -> str:
    """Signs in and returns the session's CSRF token."""
    resp = sign_in(client, username)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return csrf_token(client, "/no-access")


def text(resp) -> str:
    return html.unescape(resp.get_data(as_text=True))


def actor_for(centre: str = "CNH") -> Actor:
    return Actor(username="setup", role="supervisor", centre=centre)


def logged(svc, centre: str = "CNH", **overrides) -> str:
    """A call logged through the service layer (duplicates allowed), for setting the scene."""
    payload = call_payload(centre=centre, **overrides)
    return call_service.log_call(svc, actor_for(centre), payload, allow_duplicate=True).ref


def advance(svc, ref: str, trigger: str, **payload) -> None:
    call, _ = call_service.get_call(svc, ref)
    call_service.fire_call_trigger(svc, actor_for(), ref, {"trigger": trigger,
                                                           "expected_version": call.version, **payload})


def in_triage(svc, **overrides) -> str:
    ref = logged(svc, **overrides)
    advance(svc, ref, "start_triage")
    return ref


def referred(svc) -> tuple[str, str]:
    ref = in_triage(svc)
    advance(svc, ref, "refer", data={"service": "CRT"})
    return ref, load(svc, ref).referrals[0].id


def service_fires(svc, ref: str, rid: str, payload: dict, *, username: str = "professional"):
    """The receiving service's professional fires a referral trigger with this payload (as on their page
    or by SMS): Accept, Decline, Start and Complete are theirs alone (domain/access.may_fire_referral_trigger)."""
    service = next(r for r in load(svc, ref).referrals if r.id == rid).service
    prof = Actor(username=username, role="professional", centre=None, service=service)
    return call_service.fire_referral_trigger(svc, prof, ref, rid, payload, as_service=service)


def fire_as_service(svc, ref: str, rid: str, trigger: str, *, username: str = "professional", **payload) -> None:
    """The receiving service's professional fires a referral trigger (as on their page or by SMS)."""
    referral = next(r for r in load(svc, ref).referrals if r.id == rid)
    prof = Actor(username=username, role="professional", centre=None, service=referral.service)
    call_service.fire_referral_trigger(svc, prof, ref, rid, {"trigger": trigger, "expected_version": referral.version,
                                                             **payload}, as_service=referral.service)


def load(svc, ref: str):
    return call_service.get_call(svc, ref)[0]


def history_len(svc, ref: str) -> int:
    return len(call_service.get_call(svc, ref)[1])


def count_calls(svc) -> int:
    with svc.uow() as uow:
        return uow.session.execute(select(func.count()).select_from(orm.calls)).scalar_one()


def date_boxes(name: str, iso: str) -> dict[str, str]:
    """An ISO date ("1938-04-02") or UK wall time ("2026-07-01T12:00") as the form's date input posts it:
    <name>-day, -month, -year (and -time, HH:MM)."""
    day, _, at = iso.partition("T")
    year, month, dom = day.split("-")
    boxes = {f"{name}-day": dom, f"{name}-month": month, f"{name}-year": year}
    if at:
        boxes[f"{name}-time"] = at[:5]
    return boxes


def post_event(client, token: str, ref: str, version: int, **fields):
    if "callback_at" in fields:
        fields.update(date_boxes("callback_at", fields.pop("callback_at")))
    return client.post(f"/calls/{ref}/events",
                       data={"csrf_token": token, "expected_version": str(version), **fields})


def post_referral_event(client, token: str, ref: str, referral_id: str, version: int, **fields):
    return client.post(f"/calls/{ref}/referrals/{referral_id}/events",
                       data={"csrf_token": token, "expected_version": str(version), **fields})


def log_form(token: str, **overrides) -> dict[str, str]:
    form = {"csrf_token": token, "centre": "CNH", "caller_type": "carer", "caller_name": "Jo Carer",
            "caller_phone": "07911 123456", "nhs_number": "9990000026", "given_name": "Edith",
            "family_name": "Testperson", "date_of_birth": "1938-04-02", "postcode": "LE11 3AB",
            "need": "urgent_community_health", "urgency": "urgent", "summary": "Fell, cannot get up.",
            "consent": "given"}
    form.update(overrides)
    dob = form.pop("date_of_birth", "")
    if dob and not any(k.startswith("date_of_birth-") for k in overrides):  # as the form's boxes post it
        form.update(date_boxes("date_of_birth", dob))
    return form


def ref_from_redirect(resp) -> str:
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return urlsplit(resp.headers["Location"]).path.rsplit("/", 1)[1]


def buttons(page: str) -> set[str]:
    # Buttons without an id (the per-row actions), whatever their NHS.UK button class.
    return set(re.findall(r'<button (?:class="[^"]*" )?type="submit">([^<]+)</button>', page))


def error_text(page: str, field_id: str) -> str:
    """The text of the NHS.UK error message beside a field (id `<field_id>-error`), without its hidden "Error:"."""
    match = re.search(rf'id="{re.escape(field_id)}-error">(.*?)</(?:span|p)>\s*(?:<|$)', page, re.S)
    assert match, f"no error message for {field_id}"
    return re.sub(r"<[^>]+>", "", match.group(1)).removeprefix("Error:").strip()


def ids(page: str) -> set[str]:
    return set(re.findall(r'\bid="([^"]+)"', page))


def block(page: str, marker: str, start: str) -> str:
    """The chunk of `page` that begins at the last `start` before `marker` and ends at the next `start`."""
    at = page.index(marker)
    begin = page.rindex(start, 0, at)
    end = page.find(start, at)
    return page[begin:end if end != -1 else len(page)]


def form_for(page: str, marker: str) -> str:
    """The <form>...</form> containing `marker`."""
    at = page.index(marker)
    return page[page.rindex("<form", 0, at):page.index("</form>", at)]


class _Tables(HTMLParser):
    """Every table as a list of rows, each a list of the cells' whitespace-collapsed text."""

    def __init__(self):
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def tables(page: str) -> list[list[list[str]]]:
    parser = _Tables()
    parser.feed(page)
    return parser.tables


def table_by_first_cell(table: list[list[str]]) -> dict[str, dict[str, str]]:
    """{first cell's first word: {header: cell}} for a table whose first row is its header."""
    header, *rows = table
    return {row[0].split()[0]: dict(zip(header, row)) for row in rows}


def browser_sign_in(page, live_server: str, username: str, path: str) -> None:
    """In a real browser: open path, sign in on the page it sends you to (Enter in the password box), and
    land on path."""
    page.goto(f"{live_server}{path}")
    page.locator("[name=username]").fill(username)
    page.locator("[name=password]").fill(PASSWORD)
    with page.expect_navigation():
        page.locator("[name=password]").press("Enter")
    assert page.url == f"{live_server}{path}"
