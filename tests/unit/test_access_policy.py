"""The access policy (domain/access.py) without I/O: who may see and change a record, by role and
relationship, and the documented matrix matches the code."""
from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from ipoa.config import REPO_ROOT
from ipoa.domain import access as policy
from ipoa.domain.access import RecordFacts, Subject, decide

CENTRES = ("CNH", "ASC", "FCP", "EDT")
SERVICES = ("DN", "CRT", "SCA")


def record(centre="CNH", path=None, services=(), bg=False) -> RecordFacts:
    return RecordFacts(centre=centre, centres=tuple(path or (centre,)), services=tuple(services), break_glass=bg)


def test_a_handler_sees_and_changes_their_own_centres_calls():
    me = Subject("h", "handler", "CNH")
    assert decide(me, record("CNH"), "view") == "own_centre"
    assert decide(me, record("CNH"), "act") == "own_centre"
    assert decide(me, record("ASC"), "view") is None and decide(me, record("ASC"), "act") is None


def test_a_transfer_keeps_the_centre_it_left_able_to_read_but_not_change():
    me = Subject("h", "handler", "CNH")
    moved = record("ASC", path=("CNH", "ASC"))
    assert decide(me, moved, "view") == "transferred"
    assert decide(me, moved, "act") is None
    assert decide(Subject("a", "handler", "ASC"), moved, "act") == "own_centre"


def test_a_professional_sees_referrals_to_their_service_only():
    nurse = Subject("n", "professional", service="DN")
    assert decide(nurse, record("CNH", services=("DN",)), "view_referral") == "own_service"
    assert decide(nurse, record("CNH", services=("CRT",)), "view_referral") is None
    assert decide(nurse, record("CNH", services=("DN",)), "view") is None  # the referral page, not the call page


def test_supervisors_read_the_access_log_of_their_centres_calls():
    sup = Subject("s", "supervisor", "CNH")
    assert decide(sup, record("CNH"), "view_access_log") == "own_centre"
    assert decide(sup, record("ASC", path=("CNH", "ASC")), "view_access_log") == "transferred"
    assert decide(Subject("h", "handler", "CNH"), record("CNH"), "view_access_log") is None


def test_break_glass_grants_what_the_table_says_and_admins_get_nothing():
    assert decide(Subject("h", "handler", "ASC"), record("CNH", bg=True), "act") == "break_glass"
    assert decide(Subject("n", "professional", service="CRT"), record("CNH", bg=True), "view") == "break_glass"
    assert decide(Subject("n", "professional", service="CRT"), record("CNH", bg=True), "act") is None
    assert not policy.may_break_glass("admin")
    assert decide(Subject("a", "admin"), record("CNH", bg=True), "view") is None


def test_a_transfer_is_for_the_calls_own_centre_and_never_under_break_glass():
    """Break-glass is for one record, for a limited time: moving the call to another centre would turn it
    into lasting access (docs/information-governance.md, section 4)."""
    for role in ("handler", "supervisor"):
        me = Subject("u", role, "ASC")
        assert decide(me, record("CNH", bg=True), "act") == "break_glass"
        assert decide(me, record("CNH", bg=True), "transfer") is None
        assert decide(me, record("ASC", bg=True), "transfer") == "own_centre"
        assert decide(me, record("CNH", path=("ASC", "CNH")), "transfer") is None  # it left: read only
    assert all("transfer" not in grants.get("break_glass", ()) for grants in policy.POLICY.values())


@given(role=st.sampled_from(sorted(policy.POLICY)), centre=st.sampled_from(CENTRES + (None,)),
       service=st.sampled_from(SERVICES + (None,)), action=st.sampled_from(sorted(policy.ACTIONS)),
       rec_centre=st.sampled_from(CENTRES), path=st.lists(st.sampled_from(CENTRES), max_size=3),
       services=st.lists(st.sampled_from(SERVICES), max_size=2), bg=st.booleans())
def test_a_decision_is_always_a_granted_relationship_the_user_has(role, centre, service, action, rec_centre, path,
                                                                    services, bg):
    me = Subject("u", role, centre, service)
    rec = record(rec_centre, path=[*path, rec_centre], services=services, bg=bg)
    got = decide(me, rec, action)
    if got is not None:
        assert got in policy.relationships(me, rec)
        assert action in policy.POLICY[role][got]
    else:
        assert all(action not in policy.POLICY[role].get(r, ()) for r in policy.relationships(me, rec))
    # Nobody without a centre, a service or a grant ever gets anything.
    if centre is None and service is None and not bg:
        assert got is None


def test_break_glass_requests_need_a_listed_reason_and_a_note_for_other():
    assert policy.check_break_glass_request("immediate_risk_to_life", None) == {}
    assert set(policy.check_break_glass_request("curiosity", None)) == {"reason"}
    assert set(policy.check_break_glass_request("other", "  ")) == {"note"}
    assert set(policy.check_break_glass_request("other", ["x"])) == {"note"}
    assert set(policy.check_break_glass_request(None, "x" * 2001)) == {"reason", "note"}


def test_the_documented_matrix_is_the_policy():
    text = (REPO_ROOT / "docs" / "information-governance.md").read_text()
    block = text.split("<!-- access-matrix")[1].split("<!-- /access-matrix -->")[0]
    rows = [r for r in block.splitlines() if r.startswith("|") and not r.startswith("|---")]
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    assert header[0] == "role" and header[1:] == list(policy.RELATIONSHIPS)
    documented = {}
    for row in rows[1:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        documented[cells[0]] = {rel: frozenset(a.strip() for a in cell.split(",") if a.strip() not in ("", "–"))
                                for rel, cell in zip(header[1:], cells[1:])}
    actual = {role: {rel: grants.get(rel, frozenset()) for rel in policy.RELATIONSHIPS}
              for role, grants in policy.POLICY.items()}
    assert documented == actual
    assert all(re.fullmatch(r"[a-z_]+", a) for g in actual.values() for acts in g.values() for a in acts)


def test_a_service_is_related_to_a_call_while_its_referral_is_open_and_72_hours_after_it_closed():
    from datetime import UTC, datetime, timedelta

    from ipoa.domain.access import REFERRAL_ACCESS_AFTER_CLOSE, referring_services

    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    assert timedelta(hours=72) == REFERRAL_ACCESS_AFTER_CLOSE
    referrals = [("DN", now - timedelta(hours=72)), ("CRT", now - timedelta(hours=72, seconds=1)), ("ILT", None),
                 ("SCA", now - timedelta(days=400)), ("SCA", None), ("DN", None)]
    assert referring_services(referrals, now) == ("DN", "ILT", "SCA")  # each once, in the order referred
    assert referring_services([("CRT", now - timedelta(days=4))], now) == ()
