"""Consent to share: the sharing decision (every consent x same/other organisation x override), the
override's validation, the directory's organisations, and the engine applying the decision to every
transition that creates a referral. Pure: no database."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from ipoa.domain import sharing
from ipoa.domain.directory import DirectoryError, Organisation, load_directory, load_directory_file
from ipoa.domain.errors import GuardFailed
from tests.helpers.engine import ENGINE, NOW, decide, in_triage

ROOT = Path(__file__).resolve().parents[2]
DIRECTORY_FILE = ROOT / "workflows" / "directory.yaml"
RAW = yaml.safe_load(DIRECTORY_FILE.read_text(encoding="utf-8"))
DIRECTORY = load_directory_file(DIRECTORY_FILE)
SOURCE = "workflows/directory.yaml"

CONSENTS = [*sharing.CONSENT, None]  # None: a call logged before consent was recorded
PERMITTING = {"given": "consent_given", "lacks_capacity_best_interests": "lacks_capacity_best_interests"}
VALID_OVERRIDES = [{"basis": b, "reason": "Risk of serious harm tonight"} for b in sharing.LAWFUL_BASES]
MALFORMED_OVERRIDES = [
    (["safeguarding", "x"], "data.consent_override"),
    (7, "data.consent_override"),
    ("safeguarding", "data.consent_override"),
    ({}, "data.consent_override.basis"),
    ({"basis": "because", "reason": "x"}, "data.consent_override.basis"),
    ({"basis": ["safeguarding"], "reason": "x"}, "data.consent_override.basis"),
    ({"basis": "safeguarding"}, "data.consent_override.reason"),
    ({"basis": "safeguarding", "reason": "   "}, "data.consent_override.reason"),
    ({"basis": "safeguarding", "reason": 42}, "data.consent_override.reason"),
    ({"basis": "safeguarding", "reason": "x" * 2001}, "data.consent_override.reason"),
    ({"basis": "safeguarding", "reason": "x", "colour": "red"}, "data.consent_override.colour"),
]


# --- the decision -----------------------------------------------------------------------------------

@pytest.mark.parametrize("consent", CONSENTS)
@pytest.mark.parametrize("override", [None, *VALID_OVERRIDES], ids=["none", *sharing.LAWFUL_BASES])
def test_within_one_organisation_no_consent_step_is_needed(consent, override):
    decision = sharing.decide(consent, "IUC", "IUC", override)
    assert decision.allowed and decision.basis == "same_organisation"
    assert decision.override is None and decision.errors == {}


@pytest.mark.parametrize("consent", CONSENTS)
@pytest.mark.parametrize("override", [None, *VALID_OVERRIDES], ids=["none", *sharing.LAWFUL_BASES])
def test_across_organisations(consent, override):
    decision = sharing.decide(consent, "IUC", "CNT", override, service_name="Community (district) nursing",
                              service_organisation_name="Community NHS trust",
                              centre_organisation_name="Integrated urgent care provider")
    if consent in PERMITTING:  # the consent is the basis; an override is not needed, so not used
        assert (decision.basis, decision.override, decision.errors) == (PERMITTING[consent], None, {})
    elif override is not None:  # refused, not asked, never recorded: only a lawful basis lets it go
        assert decision.basis == override["basis"]
        assert decision.override == sharing.Override(override["basis"], override["reason"])
        assert decision.errors == {}
    else:
        assert not decision.allowed
        message = decision.errors["consent"]
        assert set(decision.errors) == {"consent"}
        assert "Community (district) nursing is run by Community NHS trust" in message
        assert "not Integrated urgent care provider" in message
        assert "lawful basis" in message
        assert ("refused consent" if consent == "refused" else "not been asked") in message


@pytest.mark.parametrize("consent", CONSENTS)
@pytest.mark.parametrize("same", [True, False])
@pytest.mark.parametrize("override, field", MALFORMED_OVERRIDES)
def test_a_malformed_override_is_a_field_error_whatever_the_consent(consent, same, override, field):
    decision = sharing.decide(consent, "IUC", "IUC" if same else "CNT", override)
    assert not decision.allowed
    assert field in decision.errors
    assert all(k.startswith("data.consent_override") for k in decision.errors)


def test_an_unknown_organisation_is_never_the_same_one():
    assert not sharing.decide("refused", None, None).allowed
    assert sharing.decide("given", None, None).basis == "consent_given"


def test_the_override_reason_is_trimmed_and_reported_on_the_given_prefix():
    override, errors = sharing.parse_override({"basis": "legal_duty", "reason": "  court order  "})
    assert override == sharing.Override("legal_duty", "court order") and errors == {}
    _, errors = sharing.parse_override({"basis": "nope", "reason": ""}, prefix="consent_override")
    assert set(errors) == {"consent_override.basis", "consent_override.reason"}


def test_the_messages_never_echo_what_was_sent():
    _, errors = sharing.parse_override({"basis": "<script>9990000026", "reason": 9990000026})
    assert not any("9990000026" in m or "script" in m for m in errors.values())


def test_audit_data_of_a_decision():
    assert sharing.decide("given", "IUC", "CNT").audit("given") == {
        "basis": "consent_given", "override": False, "consent": "given"}
    decision = sharing.decide(None, "IUC", "CNT", {"basis": "vital_interests", "reason": "Unconscious"})
    assert decision.audit(None) == {"basis": "vital_interests", "override": True, "consent": "not_asked",
                                    "reason": "Unconscious"}


@given(consent=st.sampled_from(CONSENTS), centre_org=st.sampled_from(["IUC", "CNT", "MHT", "CCC", "JNT"]),
       service_org=st.sampled_from(["IUC", "CNT", "MHT", "CCC", "JNT"]),
       override=st.one_of(st.none(), st.sampled_from(VALID_OVERRIDES), st.integers(), st.text(),
                          st.lists(st.text()), st.dictionaries(st.text(), st.one_of(st.text(), st.integers()))))
def test_the_decision_never_raises_and_is_either_a_basis_or_errors(consent, centre_org, service_org, override):
    decision = sharing.decide(consent, centre_org, service_org, override)
    assert decision.allowed != bool(decision.errors)
    if decision.allowed:
        assert decision.basis in sharing.BASES
        # Another organisation without a permitting consent only ever on a recorded lawful basis.
        if centre_org != service_org and sharing.needs_basis(consent):
            assert decision.override is not None and decision.override.reason.strip()


# --- the directory's organisations -----------------------------------------------------------------

RUN_BY = {"IUC": {"CNH"}, "CNT": {"CHS"}, "MHT": {"MHA"}, "CCC": {"FCP", "ASC"}, "JNT": {"EDT", "HFD"}}
SERVICES_OF = {"IUC": {"OOHV"}, "CNT": {"CRT", "DN", "ILT", "REA"}, "MHT": {"MHCR"},
               "CCC": {"SCA", "SG", "FCPW", "LB"}, "JNT": {"EDT", "CRS"}}


def test_the_shipped_directory_names_who_runs_every_centre_and_service():
    assert list(DIRECTORY.organisations) == ["IUC", "CNT", "MHT", "CCC", "JNT"]
    assert DIRECTORY.organisations["CNT"] == Organisation("CNT", "Community NHS trust")
    for org, centres in RUN_BY.items():
        assert {c.code for c in DIRECTORY.centres.values() if c.organisation == org} == centres
    for org, codes in SERVICES_OF.items():
        assert {s.code for s in DIRECTORY.services.values() if s.organisation == org} == codes
    assert DIRECTORY.organisation_of_centre("CNH").name == "Integrated urgent care provider"
    assert DIRECTORY.organisation_of_service("DN").code == "CNT"
    assert DIRECTORY.organisation_of_service("NOPE") is None


def _expect_error(data, *fragments: str) -> str:
    with pytest.raises(DirectoryError) as info:
        load_directory(data, source=SOURCE)
    message = str(info.value)
    assert message.startswith(f"{SOURCE}: ")
    for fragment in fragments:
        assert fragment in message, message
    return message


def _mutated(change) -> dict:
    data = copy.deepcopy(RAW)
    change(data)
    return data


def _entry(data: dict, kind: str, code: str) -> dict:
    return next(e for e in data[kind] if e["code"] == code)


def test_an_unknown_organisation_of_a_service_is_refused():
    data = _mutated(lambda d: _entry(d, "services", "DN").update(organisation="NHS"))
    _expect_error(data, "service DN", "unknown organisation 'NHS'", "IUC, CNT, MHT, CCC, JNT")


def test_an_unknown_organisation_of_a_centre_is_refused():
    data = _mutated(lambda d: _entry(d, "centres", "ASC").update(organisation="CC"))
    _expect_error(data, "centre ASC", "unknown organisation 'CC'")


def test_a_missing_organisation_is_refused_naming_the_entry():
    data = _mutated(lambda d: _entry(d, "services", "LB").pop("organisation"))
    _expect_error(data, "services[10] (LB).organisation", "Field required")
    data = _mutated(lambda d: _entry(d, "centres", "CNH").pop("organisation"))
    _expect_error(data, "centres[0] (CNH).organisation", "Field required")


def test_the_organisations_list_is_required_and_checked():
    _expect_error(_mutated(lambda d: d.pop("organisations")), "organisations", "Field required")
    _expect_error(_mutated(lambda d: d["organisations"].append({"code": "IUC", "name": "Again"})),
                  "duplicate organisation code 'IUC'")
    _expect_error(_mutated(lambda d: d["organisations"].append({"code": "X1", "name": ""})),
                  "organisations[5] (X1).name")
    _expect_error(_mutated(lambda d: d["organisations"][0].update(colour="red")),
                  "organisations[0] (IUC).colour: unknown key")


# --- the engine applies it to every transition that creates a referral --------------------------------

def _refused(centre="CNH", consent="refused"):
    call = in_triage(centre=centre)
    call.consent = consent
    return call


def _snapshot(call):
    return (call.state, call.version, call.route, len(call.referrals), call.updated_at)


@pytest.mark.parametrize("consent", ["refused", "not_asked", None])
def test_a_refer_to_another_organisation_without_consent_is_refused_and_nothing_changes(consent):
    call = _refused(consent=consent)
    before = _snapshot(call)
    with pytest.raises(GuardFailed) as info:
        ENGINE.fire(call, "refer", actor="handler", now=NOW, data={"service": "CRT"},
                    recommendation=decide("urgent_community_health"))
    assert set(info.value.errors) == {"consent"}
    assert "Clinical Response Team is run by Community NHS trust" in info.value.errors["consent"]
    assert _snapshot(call) == before


def test_the_override_lets_it_go_and_is_recorded_on_the_referral_and_the_audit():
    call = _refused()
    override = {"basis": "safeguarding", "reason": "  Bruising, fears her carer  "}
    result = ENGINE.fire(call, "refer", actor="handler", now=NOW,
                         data={"service": "CRT", "consent_override": override},
                         recommendation=decide("urgent_community_health"))
    referral = call.referrals[0]
    assert (call.state, referral.sharing_basis, referral.sharing_reason) == (
        "referred", "safeguarding", "Bruising, fears her carer")
    call_event, referral_event = result.audit
    assert referral_event.data == {"service": "CRT", "sharing": {
        "basis": "safeguarding", "override": True, "consent": "refused", "reason": "Bruising, fears her carer"}}
    assert call_event.data["consent_override"] == {"basis": "safeguarding", "reason": "Bruising, fears her carer"}
    # The reason stays on the record: outbox payloads (SMS, logs) carry codes only.
    assert all("Bruising" not in str(m.payload) for m in result.outbox)


def test_within_the_organisation_a_refusal_needs_no_override():
    call = _refused()
    result = ENGINE.fire(call, "refer", actor="handler", now=NOW, data={"service": "OOHV"},
                         reason="Known to the out-of-hours team", recommendation=decide("urgent_community_health"))
    assert call.referrals[0].sharing_basis == "same_organisation" and call.referrals[0].sharing_reason is None
    assert result.audit[1].data["sharing"] == {"basis": "same_organisation", "override": False, "consent": "refused"}
    assert "consent_override" not in result.audit[0].data


def test_a_malformed_override_is_a_guard_failure_not_a_crash():
    call = _refused()
    before = _snapshot(call)
    with pytest.raises(GuardFailed) as info:
        ENGINE.fire(call, "refer", actor="handler", now=NOW,
                    data={"service": "CRT", "consent_override": ["safeguarding"]},
                    recommendation=decide("urgent_community_health"))
    assert "data.consent_override" in info.value.errors and _snapshot(call) == before


def test_every_transition_that_creates_a_referral_is_checked():
    """A new transition creating referrals is checked without naming a guard: the engine does it."""
    creating = [t for d in ENGINE.definitions() for t in d.transitions if "create_referral" in t.effects]
    assert creating and all("sharing" not in " ".join(t.conditions) for t in creating)
    for t in creating:
        call = _refused()
        call.state = t.sources[0]
        with pytest.raises(GuardFailed) as info:
            ENGINE.fire(call, t.trigger, actor="handler", now=NOW, reason="r", data={"service": "DN"})
        assert "consent" in info.value.errors
