"""The workflows drawn: every deployed definition listed, each drawn with the live count of records per
state on that version; the same counts as a table and the Mermaid text for readers without JavaScript."""
from __future__ import annotations

import html
import re

import pytest

from ipoa.service import calls as call_service
from ipoa.service.calls import Actor
from tests.conftest import call_payload, sign_in


def actor() -> Actor:
    return Actor(username="handler", role="handler", centre="CNH")


def logged(svc) -> str:
    return call_service.log_call(svc, actor(), call_payload(), allow_duplicate=True).ref


def fire(svc, ref: str, trigger: str, **payload) -> None:
    call, _ = call_service.get_call(svc, ref)
    call_service.fire_call_trigger(svc, actor(), ref, {"trigger": trigger,
                                                       "expected_version": call.version, **payload})


@pytest.fixture
def seeded(svc):
    """Three logged calls, two in triage, one referred (so one referral sent)."""
    for _ in range(3):
        logged(svc)
    for _ in range(2):
        fire(svc, logged(svc), "start_triage")
    ref = logged(svc)
    fire(svc, ref, "start_triage")
    fire(svc, ref, "refer", data={"service": "CRT"})
    return svc


def text(resp) -> str:
    return resp.get_data(as_text=True)


def mermaid_text(page: str) -> str:
    match = re.search(r'<pre class="mermaid" id="diagram">(.*?)</pre>', page, re.S)
    assert match, "no Mermaid diagram on the page"
    return html.unescape(match.group(1))


def source_text(page: str) -> str:
    match = re.search(r'<details class="mermaid-source">.*?<pre id="mermaid-source">(.*?)</pre>', page, re.S)
    assert match, "no Mermaid text in a <details>"
    return html.unescape(match.group(1))


def count_rows(page: str) -> dict[str, tuple[str, int]]:
    table = re.search(r'<table class="[^"]*\bworkflow-counts\b[^"]*".*?<tbody[^>]*>(.*?)</tbody>', page, re.S).group(1)
    out = {}
    for state, cells in re.findall(r'<tr(?: class="[^"]*")? data-state="(\w+)">(.*?)</tr>', table, re.S):
        tds = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", cells, re.S)]
        out[state] = (html.unescape(tds[1]), int(tds[2]))
    return out


def test_the_list_shows_every_deployed_definition(client, users, svc):
    sign_in(client, "supervisor")
    resp = client.get("/workflows/")
    assert resp.status_code == 200
    page = text(resp)
    for d in svc.engine().definitions():
        assert f'href="/workflows/{d.name}/{d.version}"' in page
        assert f"{d.name} v{d.version}" in page


def test_the_call_workflow_is_drawn_with_live_counts(client, users, seeded):
    svc = seeded
    definition = svc.engine().latest("call")
    sign_in(client, "supervisor")
    resp = client.get(f"/workflows/call/{definition.version}")
    assert resp.status_code == 200
    page = text(resp)
    counts = {"logged": 3, "in_triage": 2, "referred": 1}
    assert mermaid_text(page) == definition.mermaid(counts)
    assert source_text(page) == definition.mermaid(counts)
    assert "logged : Logged (3)" in mermaid_text(page)
    rows = count_rows(page)
    assert set(rows) == set(definition.states)
    for state, s in definition.states.items():
        assert rows[state] == (s.label, counts.get(state, 0))
    assert "vendor/mermaid/mermaid.min.js" in page
    assert "cdn" not in page.lower()


def test_the_referral_workflow_counts_referrals(client, users, seeded):
    svc = seeded
    definition = svc.engine().latest("referral")
    sign_in(client, "supervisor")
    page = text(client.get(f"/workflows/referral/{definition.version}"))
    counts = {definition.initial: 1}
    assert mermaid_text(page) == definition.mermaid(counts)
    assert count_rows(page)[definition.initial][1] == 1
    assert sum(n for _, n in count_rows(page).values()) == 1


def test_counts_follow_the_records_on_reload(client, users, svc):
    definition = svc.engine().latest("call")
    sign_in(client, "admin")
    url = f"/workflows/call/{definition.version}"
    assert count_rows(text(client.get(url)))["logged"][1] == 0
    logged(svc)
    assert count_rows(text(client.get(url)))["logged"][1] == 1
    assert mermaid_text(text(client.get(url))) == definition.mermaid({"logged": 1})


def test_counts_are_per_version(client, users, seeded):
    """Records on another version of the same workflow are not counted on this one."""
    svc = seeded
    from sqlalchemy import update

    from ipoa.adapters.orm import calls
    with svc.uow() as uow:
        uow.session.execute(update(calls).where(calls.c.state == "logged").values(workflow_version=99))
        uow.commit()
    version = svc.engine().latest("call").version
    sign_in(client, "supervisor")
    rows = count_rows(text(client.get(f"/workflows/call/{version}")))
    assert rows["logged"][1] == 0 and rows["in_triage"][1] == 2


@pytest.mark.parametrize("who", ["handler", "professional"])
def test_other_roles_are_refused(client, users, svc, who):
    sign_in(client, who)
    version = svc.engine().latest("call").version
    assert client.get("/workflows/").status_code == 403
    assert client.get(f"/workflows/call/{version}").status_code == 403


def test_signed_out_goes_to_sign_in(client, users, svc):
    resp = client.get("/workflows/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_unknown_workflow_or_version_is_404(client, users, svc):
    sign_in(client, "supervisor")
    assert client.get("/workflows/nosuch/1").status_code == 404
    assert client.get("/workflows/call/999").status_code == 404


def test_the_vendored_mermaid_is_served_with_its_licence(client, users, svc):
    resp = client.get("/static/vendor/mermaid/mermaid.min.js")
    assert resp.status_code == 200 and len(resp.data) > 1_000_000
    resp.close()
    licence = client.get("/static/vendor/mermaid/LICENSE")
    assert b"MIT License" in licence.data
    licence.close()
