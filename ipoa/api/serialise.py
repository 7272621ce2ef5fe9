"""JSON shapes of calls, referrals and history, shared by the API and the web views."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from ..domain.model import AuditEvent, Call, Referral
from ..service.errors import NotFound


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def referral_of(call: Call, referral_id: str) -> Referral:
    """The referral a use case has just changed on the call it returned (the use case refuses one the call
    does not hold, with the same NotFound: a 404)."""
    referral = call.referral(referral_id)
    if referral is None:
        raise NotFound(f"no referral {referral_id} on call {call.ref}")
    return referral


def referral_dict(r: Referral) -> dict[str, Any]:
    return {"id": r.id, "service": r.service, "state": r.state, "version": r.version,
            "workflow": f"{r.workflow} v{r.workflow_version}", "sent_at": _iso(r.sent_at),
            "sent_by": r.sent_by, "updated_at": _iso(r.updated_at), "closed_at": _iso(r.closed_at),
            "outcome_reason": r.outcome_reason, "sharing_basis": r.sharing_basis,
            "sharing_reason": r.sharing_reason}


def event_dict(e: AuditEvent) -> dict[str, Any]:
    return {"at": _iso(e.at), "actor": e.actor, "entity": e.entity, "entity_id": e.entity_id,
            "from": e.from_state, "to": e.to_state, "trigger": e.trigger, "reason": e.reason,
            "data": e.data}


def call_dict(call: Call, history: list[AuditEvent] | None = None,
              allowed: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ref": call.ref, "state": call.state, "version": call.version,
        "workflow": f"{call.workflow} v{call.workflow_version}",
        "centre": call.centre, "origin_centre": call.origin_centre,
        "caller": {"type": call.caller_type, "name": call.caller_name, "phone": call.caller_phone},
        "subject": {"nhs_number": call.nhs_number, "given_name": call.given_name,
                    "family_name": call.family_name, "date_of_birth": _iso(call.date_of_birth),
                    "postcode": call.postcode, "address_line_1": call.address_line_1, "town": call.town},
        "locality": call.locality, "out_of_area": call.out_of_area,
        "need": call.need, "urgency": call.urgency, "summary": call.summary,
        # NULL on calls logged before consent was asked: treated as not_asked (domain/sharing.py).
        "consent": call.consent, "consent_recorded_by": call.consent_recorded_by,
        "consent_recorded_at": _iso(call.consent_recorded_at),
        "recommended_route": call.recommended, "route": call.route,
        "callback_due": _iso(call.callback_due),
        "logged_at": _iso(call.logged_at), "logged_by": call.logged_by,
        "queued_at": _iso(call.queued_at), "updated_at": _iso(call.updated_at),
        "closed_at": _iso(call.closed_at),
        "referrals": [referral_dict(r) for r in call.referrals],
    }
    if allowed is not None:
        out["allowed_triggers"] = allowed
    if history is not None:
        out["history"] = [event_dict(e) for e in history]
    return out
