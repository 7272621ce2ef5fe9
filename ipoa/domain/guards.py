"""Named guards and effects that workflow definitions may use. A definition naming anything not
registered here is refused when loaded. Guards return field -> message; empty means allowed."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from . import field_messages as fm
from . import sharing
from .date_parts import london_clock
from .meaning import TIER3_REVIEW
from .model import Call, Referral


@dataclass
class FireContext:
    actor: str
    now: datetime
    data: dict[str, Any]
    reason: str | None
    call: Call
    directory: Any = None  # domain.directory.Directory; optional in engine-only unit tests
    recommendation: Any = None  # domain.routing.Decision computed at `now`
    errors: dict[str, str] = field(default_factory=dict)
    # Set by sharing_allowed when the transition creates a referral: the basis it is shared on.
    sharing: sharing.Decision | None = None
    # The call's workflow definition (its version's): which of its states mean what (domain/meaning.py).
    call_workflow: Any = None
    # Set by the machine once a transition is taken (workflow.CompiledWorkflow): the TransitionDef.
    transition: Any = None


def parse_instant(value: Any) -> datetime | None:
    """An aware instant from an ISO 8601 string or datetime; None if missing, naive or malformed."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if dt.tzinfo is None or dt.utcoffset() is None:
        return None
    try:
        return dt.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00 has no UTC equivalent
        return None


def recommended_choice(rec: Any) -> tuple[str, str | None]:
    """The route kind (and service) a routing Decision recommends, in the terms transitions use."""
    if rec.outcome:
        return rec.outcome, None
    if rec.service:
        return "refer", rec.service
    return "tier3_review", None


# A refer trigger's data may say it takes the routing table's out-of-hours alternative to a closed
# recommended service (routing.Alternative; workflows/routing.yaml, out_of_hours): sanctioned by the table,
# it needs no typed reason, and is audited with this marker and a generated reason (engine.Engine.fire).
OUT_OF_HOURS_KEY = "out_of_hours_alternative"


def claims_out_of_hours(data: dict[str, Any]) -> bool:
    """Whether the data says anything of the out-of-hours alternative (out_of_hours_claim checks what)."""
    claim = data.get(OUT_OF_HOURS_KEY)
    return claim is not None and claim is not False


def out_of_hours_claim(rec: Any, data: dict[str, Any]) -> dict[str, str]:
    """Field -> message when the data claims the out-of-hours alternative but the routing Decision `rec`
    (computed now) does not offer its service now; {} when there is no claim (absent or false) or it holds.
    Nothing a page of ours sends fails this, unless the table's answer changed since it was drawn."""
    if not claims_out_of_hours(data):
        return {}
    if data.get(OUT_OF_HOURS_KEY) is not True:
        return {f"data.{OUT_OF_HOURS_KEY}": fm.message(f"data.{OUT_OF_HOURS_KEY}", fm.TYPE)}
    offered = getattr(rec, "out_of_hours", None)
    service = data.get("service")
    if offered is not None and service == offered.service:
        return {}
    # Echo the service only as a plausible code: the data comes from API clients and tampered forms.
    shown = service if isinstance(service, str) and service.isalnum() and len(service) <= 12 else "That service"
    kind = fm.NOT_OFFERED if offered is not None else fm.NONE_OFFERED
    return {"data.service": fm.message("data.service", kind, service=shown)}


def out_of_hours_taken(rec: Any, route: str | None, data: dict[str, Any]) -> bool:
    """Whether a transition with this route takes the table's out-of-hours alternative, as claimed."""
    return route == "refer" and data.get(OUT_OF_HOURS_KEY) is True and not out_of_hours_claim(rec, data)


def out_of_hours_reason(rec: Any) -> str:
    """The reason recorded for taking the out-of-hours alternative when no reason was typed."""
    opens = london_clock(rec.next_open, "%a %d %b %H:%M")
    return (f"{rec.service} closed now (opens {opens}): the routing table's out-of-hours "
            f"alternative, {rec.out_of_hours.service}")


def describe_choice(kind: str, service: str | None) -> str:
    return {
        "divert_999": "divert to 999",
        "resolved_at_first_contact": "resolve at first contact",
        "tier3_review": "tier 3 review",
    }.get(kind, f"refer to {service}")


def _reason_given(entity: Any, ctx: FireContext, route: str | None) -> dict[str, str]:
    if not (ctx.reason or "").strip():
        return {"reason": fm.message("reason", fm.REQUIRED)}
    return {}


def _service_given(entity: Any, ctx: FireContext, route: str | None) -> dict[str, str]:
    service = ctx.data.get("service")
    if not service:
        return {"data.service": fm.message("data.service", fm.REQUIRED)}
    if not isinstance(service, str):  # data comes from API clients: a list would crash the lookup
        return {"data.service": fm.message("data.service", fm.TYPE)}
    if ctx.directory is not None and service not in ctx.directory.services:
        return {"data.service": fm.message("data.service", fm.UNKNOWN)}
    return {}


def _route_agreed(entity: Any, ctx: FireContext, route: str | None) -> dict[str, str]:
    # In tier 3 review a clinician or social worker makes the routing decision: no override needed. Which
    # states those are is the call workflow's `tier3_review` tag (domain/meaning.py).
    if ctx.recommendation is None or route is None or _in_tier3_review(ctx):
        return {}
    rec_kind, rec_service = recommended_choice(ctx.recommendation)
    chosen_service = ctx.data.get("service") if route == "refer" else None
    if (route, chosen_service) == (rec_kind, rec_service):
        return {}
    # The table's own out-of-hours alternative, claimed and offered now: sanctioned, no reason to type.
    if out_of_hours_taken(ctx.recommendation, route, ctx.data):
        return {}
    if not (ctx.reason or "").strip():
        return {"reason": fm.message("reason", fm.OVERRIDE, route=describe_choice(rec_kind, rec_service))}
    return {}


def _in_tier3_review(ctx: FireContext) -> bool:
    return ctx.call_workflow is not None and ctx.call.state in ctx.call_workflow.states_tagged(TIER3_REVIEW)


def _other_centre(entity: Any, ctx: FireContext, route: str | None) -> dict[str, str]:
    centre = ctx.data.get("centre")
    if not centre:
        return {"data.centre": fm.message("data.centre", fm.REQUIRED)}
    if not isinstance(centre, str):  # data comes from API clients: a list would crash the lookup
        return {"data.centre": fm.message("data.centre", fm.TYPE)}
    if centre == ctx.call.centre:
        return {"data.centre": fm.message("data.centre", fm.SAME)}
    if ctx.directory is not None:
        target = ctx.directory.centres.get(centre)
        if target is None:
            return {"data.centre": fm.message("data.centre", fm.UNKNOWN)}
        if not target.calendar.is_open(ctx.now):
            opens = london_clock(target.calendar.next_open(ctx.now), "%a %d %b %H:%M")
            return {"data.centre": fm.message("data.centre", fm.CLOSED, name=target.name, opens=opens)}
    return {}


# A promised callback is days away at most; a date further out is a slip (and 9999-12-31 overflowed
# the SLA clock's due-time arithmetic: a 500 with nothing stored).
CALLBACK_MAX_AHEAD = timedelta(days=30)


def _callback_time_given(entity: Any, ctx: FireContext, route: str | None) -> dict[str, str]:
    given = ctx.data.get("callback_at")
    at = parse_instant(given)
    if at is None:
        return {"data.callback_at": fm.message("data.callback_at", fm.FORMAT if given else fm.REQUIRED)}
    if at <= ctx.now:
        return {"data.callback_at": fm.message("data.callback_at", fm.PAST)}
    if at - ctx.now > CALLBACK_MAX_AHEAD:
        return {"data.callback_at": fm.message("data.callback_at", fm.TOO_FAR, days=CALLBACK_MAX_AHEAD.days)}
    return {}


def sharing_allowed(entity: Any, ctx: FireContext) -> dict[str, str]:
    """May the person's details go to the service a referral is being created for? Not a named guard:
    the engine applies it to every transition with the create_referral effect (domain/sharing.py).
    Records the decision on ctx for the referral and its audit event."""
    service = ctx.data.get("service")
    override = ctx.data.get(sharing.OVERRIDE_KEY)
    if ctx.directory is None:
        # Engine-only unit tests without a directory know no organisations; the application always
        # builds its engine with one. The override is still checked, so bad input never passes.
        _, errors = sharing.parse_override(override)
        return errors
    if not isinstance(service, str) or service not in ctx.directory.services:
        _, errors = sharing.parse_override(override)
        return errors  # service_given reports the service itself
    to = ctx.directory.organisation_of_service(service)
    held_by = ctx.directory.organisation_of_centre(ctx.call.centre)
    decision = sharing.decide(
        ctx.call.consent, held_by.code if held_by else None, to.code if to else None, override,
        service_name=ctx.directory.services[service].name, service_organisation_name=to.name if to else None,
        centre_organisation_name=held_by.name if held_by else None)
    ctx.sharing = decision
    return decision.errors


GUARDS: dict[str, Callable[[Any, FireContext, str | None], dict[str, str]]] = {
    "reason_given": _reason_given,
    "service_given": _service_given,
    "route_agreed": _route_agreed,
    "other_centre": _other_centre,
    "callback_time_given": _callback_time_given,
}


def _move_centre(entity: Call, ctx: FireContext) -> None:
    entity.moved_to(ctx.data["centre"])
    entity.queued_at = ctx.now


def _set_callback(entity: Call, ctx: FireContext) -> None:
    entity.callback_due = parse_instant(ctx.data["callback_at"])


def _clear_callback(entity: Call, ctx: FireContext) -> None:
    entity.callback_due = None


def _record_outcome_reason(entity: Referral, ctx: FireContext) -> None:
    entity.outcome_reason = ctx.reason


# create_referral is applied by the engine itself: it needs the referral workflow.
EFFECTS: dict[str, Callable[[Any, FireContext], None] | None] = {
    "create_referral": None,
    "move_centre": _move_centre,
    "set_callback": _set_callback,
    "clear_callback": _clear_callback,
    "record_outcome_reason": _record_outcome_reason,
}
