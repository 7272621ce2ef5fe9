"""Who a referral's text goes to, and why: a text never goes to nobody (docs/domain.md, "Rotas").

The chain, first step with anyone to text wins: the professionals on duty for the service; else the duty
lead(s) of the shift(s) running; else the service's standing duty lead; else the referring centre's
supervisor(s). The caller passes only people who can be texted now (a mobile, not opted out, not marked
unavailable); each mobile is texted once. When even the last step is empty the answer says so, in words,
so the caller can show it and alert someone by other means: it never silently sends nothing.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .shifts import ProfessionalId

__all__ = ["Contact", "RecipientChoice", "ON_DUTY", "SHIFT_DUTY_LEAD", "STANDING_DUTY_LEAD", "SUPERVISOR",
           "NOBODY", "STEPS", "choose_recipients"]

ON_DUTY = "on_duty"
SHIFT_DUTY_LEAD = "shift_duty_lead"
STANDING_DUTY_LEAD = "standing_duty_lead"
SUPERVISOR = "supervisor"
NOBODY = "nobody"
STEPS = (ON_DUTY, SHIFT_DUTY_LEAD, STANDING_DUTY_LEAD, SUPERVISOR)


@dataclass(frozen=True)
class Contact:
    """Someone a text can go to now."""

    name: str
    mobile: str  # E.164
    professional_id: ProfessionalId | None = None  # None for a supervisor (a user, not a professional)


@dataclass(frozen=True)
class RecipientChoice:
    step: str  # one of STEPS, or NOBODY
    recipients: tuple[Contact, ...]
    reason: str  # for the call page, in plain English

    @property
    def nobody(self) -> bool:
        return not self.recipients


def _names(people: Sequence[Contact]) -> str:
    names = [p.name for p in people]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _once(people: Iterable[Contact]) -> tuple[Contact, ...]:
    seen: set[str] = set()
    out: list[Contact] = []
    for p in people:
        if p.mobile not in seen:
            seen.add(p.mobile)
            out.append(p)
    return tuple(out)


def choose_recipients(service: str, on_duty: Iterable[Contact], shift_duty_leads: Iterable[Contact],
                      standing_duty_lead: Contact | None, supervisors: Iterable[Contact]) -> RecipientChoice:
    """The first non-empty step of the chain, and the reason ("nobody on duty for CRT: texted the shift's
    duty lead, Sam Lead")."""
    working = _once(on_duty)
    if working:
        whom = "the professional" if len(working) == 1 else "the professionals"
        return RecipientChoice(ON_DUTY, working, f"texted {whom} on duty for {service}, {_names(working)}")
    leads = _once(shift_duty_leads)
    if leads:
        whom = "the shift's duty lead" if len(leads) == 1 else "the shifts' duty leads"
        return RecipientChoice(SHIFT_DUTY_LEAD, leads, f"nobody on duty for {service}: texted {whom}, {_names(leads)}")
    if standing_duty_lead is not None:
        return RecipientChoice(STANDING_DUTY_LEAD, (standing_duty_lead,),
                               f"nobody on duty for {service} and no duty lead on shift: texted the service's "
                               f"standing duty lead, {standing_duty_lead.name}")
    supers = _once(supervisors)
    if supers:
        whom = "supervisor" if len(supers) == 1 else "supervisors"
        return RecipientChoice(SUPERVISOR, supers,
                               f"nobody on duty for {service} and no duty lead: texted the referring centre's "
                               f"{whom}, {_names(supers)}")
    return RecipientChoice(NOBODY, (), f"nobody on duty for {service}, no duty lead and no supervisor with a mobile "
                                       f"at the referring centre: nobody was texted, phone {service} instead")
