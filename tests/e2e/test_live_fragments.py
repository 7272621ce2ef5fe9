"""The live queue and the live call page through the Flask test client (web/live_pages.py): the fragments
the pages poll are the pages' own live parts, never cached, refused as the pages are; the call page's carries
no identifier of the person and leaves no access event per poll; the queue's notice of calls whose clock
ran out, and the call page's notice that the call has changed underneath it. The browser side (polling,
countdown, the tone) is tests/e2e/test_browser_live.py."""
from __future__ import annotations

import html
import re
from datetime import timedelta

from sqlalchemy import func, select

from ipoa.adapters import orm
from ipoa.service import calls as call_service
from ipoa.service.calls import Actor
from tests.helpers import DEFAULT_NOW
from tests.helpers.clocks import breach
from tests.helpers.web import REF_LINK, fire_as_service, load, logged, referred, signed_in, text

# The invented person of tests/helpers.call_payload, and what the caller said: none of it may be in a poll.
IDENTIFIERS = ("Edith", "Testperson", "9990000026", "999 000 0026", "LE11 3AB", "Jo Carer", "07911 123456",
               "1938", "Fell, no injury")


def access_events(svc) -> int:
    with svc.uow() as uow:
        return uow.session.execute(select(func.count()).select_from(orm.access_events)).scalar_one()


def polled_url(page: str, element_id: str) -> str:
    """The URL that an element of the page polls (its hx-get)."""
    opening = re.search(rf'<div id="{element_id}"[^>]*>', page)
    assert opening, f"no #{element_id} on the page"
    return html.unescape(re.search(r'hx-get="([^"]+)"', opening.group(0)).group(1))


def notice(page: str, region: str) -> str:
    """The words of the notice the fragment brings for a live region of the page (its hx-swap-oob copy)."""
    match = re.search(rf'<div id="{region}" hx-swap-oob="innerHTML">(.*?)</div>\s*$', page, re.S)
    assert match, f"no notice for #{region}"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


# -- the queue ----------------------------------------------------------------------------------------------

def test_the_queue_polls_its_own_live_part_which_is_never_cached(client, users, svc):
    ref = logged(svc)
    signed_in(client)
    page_resp = client.get("/queue")
    url = polled_url(text(page_resp), "queue-live")
    assert url == "/queue/live?centre=CNH"
    frag_resp = client.get(url)
    assert frag_resp.status_code == 200
    for resp in (page_resp, frag_resp):
        assert resp.headers["Cache-Control"] == "no-store"
    page, frag = text(page_resp), text(frag_resp)
    opening = re.search(r'<div id="queue-live"[^>]*>', frag).group(0)
    assert frag.lstrip().startswith(opening) and opening in page
    assert 'hx-trigger="every 2s"' in opening and 'hx-swap="outerHTML"' in opening
    assert "<html" not in frag and "<nav" not in frag
    # Focus survives a refresh: each call's link keeps its id.
    assert f'id="q-{ref}" href="/calls/{ref}"' in frag
    # The clock is machine-readable (when it falls due) and the server's time comes with it.
    assert '<time datetime="2026-11-23T10:15:00+00:00" data-countdown>due in 15 min</time>' in frag
    assert 'data-server-now="2026-11-23T10:00:00.000+00:00"' in frag
    # Usable without JavaScript: the same table, and a plain Refresh link.
    assert '<a id="queue-refresh" href="/queue?centre=CNH">Refresh</a>' in page
    # Nothing has run out: the page's live region is empty, and the fragment brings it nothing.
    assert re.search(r'<div id="queue-alert"[^>]*>\s*</div>', page)
    assert notice(frag, "queue-alert") == ""


def test_a_call_whose_clock_runs_out_tops_the_fragment_with_a_notice_in_words(client, users, svc, clock):
    urgent = logged(svc)  # triage within 15 min
    clock.set(DEFAULT_NOW + timedelta(minutes=5))
    emergency = logged(svc, urgency="emergency")  # within 5 min
    routine = logged(svc, urgency="routine")
    signed_in(client)
    assert REF_LINK.findall(text(client.get("/queue/live"))) == [emergency, urgent, routine]

    breach(svc, clock, urgent, "triage")  # 10:16: the emergency's clock has run out too, not yet fired
    frag = text(client.get("/queue/live"))
    assert REF_LINK.findall(frag) == [emergency, urgent, routine]
    assert notice(frag, "queue-alert") == (
        "Clock run out 1 call has breached its clock and 1 more is overdue. "
        "They are at the top of the queue, marked Breached or Overdue.")
    assert f'data-key="{" ".join(sorted([emergency, urgent]))}"' in frag
    # The rows say it in words as well as colour.
    rows = re.findall(r'<tr class="nhsuk-table__row urgency-[^"]*"[^>]*>.*?</tr>', frag, re.S)
    assert 'breached" data-breached-ref="' + urgent in rows[1] and ">Breached</strong>" in rows[1]
    assert 'overdue" data-breached-ref="' + emergency in rows[0] and ">Overdue</strong>" in rows[0]
    assert "data-breached-ref" not in rows[2]
    # The page draws the same notice in its live region.
    page = text(client.get("/queue"))
    region = re.search(r'<div id="queue-alert"[^>]*>(.*?)</div>\s*<div id="queue-live"', page, re.S).group(1)
    assert "1 call has breached its clock and 1 more is overdue." in region
    assert 'role="status" aria-live="polite"' in page


def test_the_queue_fragment_is_refused_as_the_queue_is(app, client, users, svc):
    logged(svc)
    signed_out = client.get("/queue/live")
    assert signed_out.status_code == 302 and "/login" in signed_out.headers["Location"]
    signed_in(client, "handler.asc")
    assert client.get("/queue/live?centre=CNH").status_code == 403  # another centre's queue
    assert client.get("/queue/live?centre=NOPE").status_code == 404
    assert client.get("/queue/live").status_code == 200  # their own
    professional = app.test_client()
    signed_in(professional, "professional")
    assert professional.get("/queue/live").status_code == 403


# -- the call page ------------------------------------------------------------------------------------------

def test_the_call_page_polls_a_fragment_with_no_identifier_and_no_access_event(client, users, svc):
    ref, rid = referred(svc)
    signed_in(client)
    before = access_events(svc)
    page = text(client.get(f"/calls/{ref}"))
    assert access_events(svc) == before + 1  # opening the record is a view of it
    url = polled_url(page, "call-live")
    assert url.startswith(f"/calls/{ref}/live?") and "seen=3.1" in url
    for _ in range(3):
        resp = client.get(url)
        assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    assert access_events(svc) == before + 1  # polling is not
    frag = text(resp)
    assert not [value for value in IDENTIFIERS if value in frag]
    assert all(value in page for value in ("Edith", "Testperson", "LE11 3AB"))  # (the page has them)
    # What changes underneath: the status line, the clocks, the referral's state, each for its place by id.
    assert re.search(r'<p class="status" id="call-status" hx-swap-oob="true">.*id="call-state">referred<', frag, re.S)
    assert '<section aria-labelledby="clocks-title" id="clocks" hx-swap-oob="true">' in frag
    assert re.search(rf'<span id="referral-{rid}-state" hx-swap-oob="true">.*>sent</strong>', frag)
    for element in ('id="call-status"', 'id="clocks"', f'id="referral-{rid}-state"'):
        assert element in page
    # Unchanged since the page was drawn: no notice.
    assert notice(frag, "call-changed") == ""


def test_the_call_fragment_says_what_changed_by_whom_and_when(client, users, svc, clock):
    ref, rid = referred(svc)
    signed_in(client)
    url = polled_url(text(client.get(f"/calls/{ref}")), "call-live")

    # A breach changes no version: shown live, and the page's forms still hold.
    breach(svc, clock, ref, "acceptance", rid)  # 10:31
    frag = text(client.get(url))
    assert "SLA breached: acceptance" in frag and notice(frag, "call-changed") == ""

    clock.advance(minutes=1)
    fire_as_service(svc, ref, rid, "accept", reason="Private reason naming Edith")
    frag = text(client.get(url))
    assert notice(frag, "call-changed") == (
        "Important This call has changed since you opened it: the referral to Clinical Response Team breached "
        "its SLA clock at 10:31; referral to Clinical Response Team accepted by Professional (professional) at "
        "10:32. Reload the call to act on it")
    assert f'<a class="nhsuk-notification-banner__link" id="call-reload" href="/calls/{ref}">' in frag
    assert re.search(rf'<span id="referral-{rid}-state" hx-swap-oob="true">.*>accepted</strong>', frag)
    assert "Edith" not in frag  # the reason typed is never shown here
    # The notice is keyed by what the page's forms would now need, so the page announces it once per change.
    assert 'data-key="3.2"' in frag

    # A reload draws the page afresh: its poll sees no change.
    url = polled_url(text(client.get(f"/calls/{ref}")), "call-live")
    assert notice(text(client.get(url)), "call-changed") == ""
    # The call itself, by someone else.
    call_service.record_consent(svc, Actor("supervisor", "supervisor", "CNH"), ref,
                                {"consent": "refused", "expected_version": load(svc, ref).version})
    assert notice(text(client.get(url)), "call-changed") == (
        "Important This call has changed since you opened it: consent to share recorded by Supervisor "
        "(supervisor, CNH) at 10:32. Reload the call to act on it")


def test_the_call_fragment_is_refused_as_the_call_page_is(app, client, users, svc):
    ref, _ = referred(svc)
    signed_out = client.get(f"/calls/{ref}/live")
    assert signed_out.status_code == 302 and "/login" in signed_out.headers["Location"]
    signed_in(client, "handler.asc")  # another centre, no relationship with the call
    assert client.get(f"/calls/{ref}").status_code == 403
    resp = client.get(f"/calls/{ref}/live")
    assert resp.status_code == 403 and "Testperson" not in text(resp) and 'name="reason"' not in text(resp)
    assert client.get("/calls/ZZZZ-ZZZZ/live").status_code == 404
    professional = app.test_client()  # of the receiving service: the referral's page is theirs, not the call's
    signed_in(professional, "professional")
    assert professional.get(f"/calls/{ref}").status_code == 403
    assert professional.get(f"/calls/{ref}/live").status_code == 403
