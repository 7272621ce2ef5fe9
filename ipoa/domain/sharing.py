"""Consent to share, and when a person's details may go to a service of another organisation.

docs/domain.md, "Information governance": sharing within one organisation needs no consent step;
sharing with another organisation needs consent `given`, or `lacks_capacity_best_interests`, or a
recorded lawful basis with a reason (`vital_interests`, `safeguarding`, `legal_duty`). A refusal is
respected otherwise, and the call page says so."""
from __future__ import annotations

# What intake records (with who recorded it, and when).
CONSENT: dict[str, str] = {
    "given": "Consent given to share",
    "refused": "Consent refused",
    "not_asked": "Not asked (emergency: no chance to ask)",
    "lacks_capacity_best_interests": "Lacks capacity: shared in their best interests",
}
