"""Consent to share, and when a person's details may go to a service of another organisation.

docs/domain.md, "Information governance": sharing within one organisation needs no consent step;
sharing with another organisation needs consent `given`, or `lacks_capacity_best_interests`, or a
recorded lawful basis with a reason (`vital_interests`, `safeguarding`, `legal_duty`). A refusal is
respected otherwise, and the call page says so.

`decide` is the whole rule, pure: the engine applies it to every transition that creates a referral
(domain/engine.py), before the state changes, so no workflow definition can leave it out."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import field_messages as fm

# What intake records (with who recorded it, and when).
CONSENT: dict[str, str] = {
    "given": "Consent given to share",
    "refused": "Consent refused",
    "not_asked": "Not asked (emergency: no chance to ask)",
    "lacks_capacity_best_interests": "Lacks capacity: shared in their best interests",
}
# A call logged before consent was recorded (consent NULL) is treated as if nobody asked.
LEGACY_CONSENT = "not_asked"
# Consents that let details go to another organisation, and the sharing basis each gives.
CONSENT_BASES: dict[str, str] = {
    "given": "consent_given",
    "lacks_capacity_best_interests": "lacks_capacity_best_interests",
}
# Lawful bases for sharing without consent: the override a handler records, with a reason.
LAWFUL_BASES: dict[str, str] = {
    "vital_interests": "Vital interests: risk to life or of serious harm",
    "safeguarding": "Safeguarding: Care Act 2014 section 42 duty",
    "legal_duty": "Legal duty",
}
# Every basis a referral can record (referrals.sharing_basis), for pages and reports.
BASES: dict[str, str] = {
    "same_organisation": "Same organisation: no consent step",
    "consent_given": "Consent given",
    "lacks_capacity_best_interests": "Lacks capacity: best interests",
    **LAWFUL_BASES,
}
REASON_MAX = 2000
# Where the override travels in a trigger's data, and the field paths its errors are reported on.
OVERRIDE_KEY = "consent_override"


@dataclass(frozen=True)
class Override:
    """A lawful basis to share without consent, and why."""

    basis: str
    reason: str


@dataclass(frozen=True)
class Decision:
    """The basis the details may be shared on (None when refused), the override if one was used, and the
    field errors when refused (field path -> message)."""

    basis: str | None
    override: Override | None = None
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def allowed(self) -> bool:
        return self.basis is not None

    def audit(self, consent: str | None) -> dict[str, Any]:
        """What the referral's audit event records about the sharing."""
        out: dict[str, Any] = {"basis": self.basis, "override": self.override is not None,
                               "consent": effective_consent(consent)}
        if self.override is not None:
            out["reason"] = self.override.reason
        return out


def effective_consent(consent: str | None) -> str:
    return consent if consent in CONSENT else LEGACY_CONSENT


def consent_label(consent: str | None) -> str:
    if consent is None:
        return "Not recorded (logged before consent was asked): treated as not asked"
    return CONSENT.get(consent, consent)


def needs_basis(consent: str | None) -> bool:
    """True when the consent on record does not let details go to another organisation."""
    return effective_consent(consent) not in CONSENT_BASES


def parse_override(value: Any, prefix: str = f"data.{OVERRIDE_KEY}") -> tuple[Override | None, dict[str, str]]:
    """The override from untrusted input (an API client's JSON, a form): (override or None, errors).
    None with no errors when none was given. Never raises: a list or a number is a field error."""
    if value is None:
        return None, {}
    if not isinstance(value, dict):
        return None, {prefix: fm.message("data.consent_override", fm.TYPE)}
    errors: dict[str, str] = {}
    for key in value:
        if key not in ("basis", "reason"):
            errors[f"{prefix}.{key}" if isinstance(key, str) else prefix] = fm.message(
                "data.consent_override", fm.NOT_EXPECTED)
    basis, reason = value.get("basis"), value.get("reason")
    if not isinstance(basis, str) or basis not in LAWFUL_BASES:
        errors[f"{prefix}.basis"] = fm.message("data.consent_override.basis", fm.REQUIRED)
    if reason is not None and not isinstance(reason, str):
        errors[f"{prefix}.reason"] = fm.message("data.consent_override.reason", fm.TYPE)
    elif not (reason or "").strip():
        errors[f"{prefix}.reason"] = fm.message("data.consent_override.reason", fm.REQUIRED)
    elif len(str(reason)) > REASON_MAX:
        errors[f"{prefix}.reason"] = fm.message("data.consent_override.reason", fm.TOO_LONG, max=REASON_MAX)
    if errors:
        return None, errors
    # Both checked above: basis is one of LAWFUL_BASES, reason a non-blank text.
    return Override(str(basis), str(reason).strip()), {}


def decide(consent: str | None, centre_organisation: str | None, service_organisation: str | None,
           override: Any = None, *, service_name: str = "The service",
           service_organisation_name: str | None = None, centre_organisation_name: str | None = None,
           prefix: str = f"data.{OVERRIDE_KEY}") -> Decision:
    """May a call held by a centre of `centre_organisation` be referred to a service of
    `service_organisation`? Within one organisation: yes, with no consent step. Otherwise on the consent
    (given, or lacks capacity: best interests), or on a valid override (a lawful basis and a reason).
    A malformed override is refused whatever the consent, so a client's mistake is never silently
    ignored; a valid one that is not needed is not used (the consent or the organisation is the basis).
    An unknown organisation (None) is never "the same": sharing is refused rather than assumed safe."""
    parsed, errors = parse_override(override, prefix)
    if errors:
        return Decision(None, errors=errors)
    if centre_organisation is not None and centre_organisation == service_organisation:
        return Decision("same_organisation")
    consent = effective_consent(consent)
    if consent in CONSENT_BASES:
        return Decision(CONSENT_BASES[consent])
    if parsed is not None:
        return Decision(parsed.basis, parsed)
    return Decision(None, errors={"consent": _refusal(consent, service_name, service_organisation_name,
                                                      centre_organisation_name)})


def _refusal(consent: str, service_name: str, service_org: str | None, centre_org: str | None) -> str:
    runs = f"{service_name} is run by {service_org or 'another organisation'}"
    if centre_org:
        runs += f", not {centre_org}"
    said = {"refused": "the person refused consent to share",
            "not_asked": "the person has not been asked for consent to share"}.get(
        consent, "there is no consent to share")
    return (f"{runs}, and {said}. To refer anyway, choose a lawful basis (vital interests, safeguarding or "
            "legal duty) and give a reason; or record their consent if they now give it; or choose a "
            "service of the same organisation.")
