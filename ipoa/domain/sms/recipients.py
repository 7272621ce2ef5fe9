"""Who is told what: the referrer's updates and an escalation's recipients. Who a referral is texted to
comes from the rota (domain/rota/recipients.py)."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..meaning import ACCEPT, COMPLETE, DECLINE

__all__ = ["REFERRER_UPDATES", "Recipient", "escalation_recipients", "referrer_update"]

# What the referring professional hears about, by the role of the trigger a referral moved by (its
# workflow version's, domain/meaning.py), and the template for each.
REFERRER_UPDATES = {ACCEPT: "referral_accepted", DECLINE: "referral_declined", COMPLETE: "referral_completed"}


@dataclass(frozen=True)
class Recipient:
    kind: str  # on_duty | duty_lead | supervisor | referrer
    to: str
    professional_id: int | None = None


def referrer_update(roles: Iterable[str], updates_to: str | None) -> tuple[Recipient, str] | None:
    """The referring professional's update for a referral moved by a trigger with these roles, if they asked
    for updates."""
    template = next((REFERRER_UPDATES[r] for r in REFERRER_UPDATES if r in set(roles)), None)
    if template is None or not updates_to:
        return None
    return Recipient("referrer", updates_to), template


def escalation_recipients(duty_lead: str | None, supervisor_mobiles: Iterable[str]) -> list[Recipient]:
    """A breach goes to the service's duty lead (referral clocks) and the receiving centre's supervisors
    who have a mobile; each number once."""
    out: list[Recipient] = []
    seen: set[str] = set()
    for kind, number in [("duty_lead", duty_lead), *(("supervisor", m) for m in supervisor_mobiles)]:
        if number and number not in seen:
            seen.add(number)
            out.append(Recipient(kind, number))
    return out
