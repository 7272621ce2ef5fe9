"""What a confirmation says after an action: what happened, in words ("Referred to Community (district)
nursing: 2 texts sent", "Transferred to Charnwood Community Hub", "Callback promised for Thu 03 Dec 14:30",
"Call cancelled"), never "Done."."""
from __future__ import annotations

from typing import Any

from ..domain.date_parts import london_clock
from ..domain.model import Call, Referral
from ..domain.rota.recipients import NOBODY, SHIFT_DUTY_LEAD, STANDING_DUTY_LEAD, SUPERVISOR
from ..entry.request_context import services
from ..service import sms as sms_service
from ..service.workflow_meaning import definition_of

# Call triggers whose words are not simply "Call <its new state>".
CALL_DONE = {
    "start_triage": "Triage started",
    "tier3_review": "Sent for tier 3 review",
    "call_back": "Calling back now: the call is back in triage",
}


def service_name(code: str) -> str:
    service = services().directory.services.get(code)
    return service.name if service is not None else code


def centre_name(code: str) -> str:
    centre = services().directory.centres.get(code)
    return centre.name if centre is not None else code


def texts_queued(service_code: str, centre: str | None = None) -> str:
    """Who the referral's texts go to, by the step of the fall-back chain a referral from `centre` sent
    now takes (what the relay will choose: service/rotas.referral_recipients; the call page's "Text
    messages" then says who was texted and why)."""
    choice = sms_service.referral_recipients(services(), service_code, centre)
    n = len(choice.recipients)
    if choice.step == NOBODY:
        return "nobody can be texted: phone the service"
    if choice.step in (SHIFT_DUTY_LEAD, STANDING_DUTY_LEAD):
        return "nobody is on duty, so the duty lead is texted"
    if choice.step == SUPERVISOR:
        whom = "supervisor is" if n == 1 else "supervisors are"
        return f"nobody is on duty and there is no duty lead, so the referring centre's {whom} texted"
    return f"{n} text{'s' if n != 1 else ''} sent"


def referred(service_code: str, centre: str | None = None) -> str:
    return f"Referred to {service_name(service_code)}: {texts_queued(service_code, centre)}"


def _state_label(entity: Call | Referral) -> str:
    state = entity.state or ""
    states = definition_of(services(), entity).states
    label = states[state].label if state in states else state.replace("_", " ")
    return label[:1].lower() + label[1:]


def call_done(call: Call, trigger: str, data: dict[str, Any]) -> str:
    """After a call trigger fired: call as it is now, data as submitted."""
    transition = next((t for t in definition_of(services(), call).transitions if t.trigger == trigger), None)
    needs = transition.needs if transition is not None else ()
    if (transition is not None and transition.route == "refer") or "service" in needs:
        code = data.get("service") or (call.referrals[-1].service if call.referrals else "")
        return referred(code, call.centre)
    if "centre" in needs:
        return f"Transferred to {centre_name(call.centre)}"
    if "callback_at" in needs and call.callback_due is not None:
        return f"Callback promised for {london_clock(call.callback_due)}"  # "01:50 GMT" when it happens twice
    return CALL_DONE.get(trigger) or f"Call {_state_label(call)}"


def referral_done(call: Call, referral_id: str) -> str:
    """After a referral trigger fired: the referral's new state, and where that leaves the call."""
    referral = call.referral(referral_id)
    if referral is None:
        return f"Call {_state_label(call)}"
    said = f"Referral to {service_name(referral.service)} {_state_label(referral)}"
    if referral.closed_at is not None and call.state:
        said += f": the call is {_state_label(call)}"
    return said


def rerouted(old_service: str, new: Referral, centre: str | None = None) -> str:
    return f"Referral to {service_name(old_service)} withdrawn. {referred(new.service, centre)}"
