"""Live where staff wait: the handler's queue and the call page keep themselves up to date, as the
supervisor's dashboard does (web/live_dashboard.py). Each page is rendered whole by its own view (it works
without JavaScript, with a Refresh link or a reload); with JavaScript it polls a small fragment from here
every POLL_SECONDS (htmx) and ipoa/static/live.js counts its clocks down each second from the server's time.

- The queue (`web.queue`, templates/queue.html) polls `live.queue_fragment`: templates/_queue_live.html,
  the same access rule as the page (a centre's queue is for that centre's staff).
- The call page (`web.call_page`, templates/call.html) polls `live.call_fragment`: the status line, the
  clocks and each referral's state (templates/_call_live.html), from service/call_status.py, which reads
  out no identifier of the person, so a poll is not a view of the record and leaves no access event
  (the page itself leaves one each time it is opened). When the call or a referral has changed since the
  page was drawn, a notice says what, by whom and when: the page's forms carry the old expected_version."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, make_response, render_template, request
from flask_login import current_user

from ..adapters.voice_queue_queries import CALL_TAKING_ROLES
from ..domain.date_parts import london_clock
from ..domain.validation import whole_number
from ..entry.request_context import actor, services
from ..entry.role_check import requires
from ..service import call_status as status_service
from ..service import call_takers, phone_answering, work_queues
from ..service.errors import Forbidden, NotFound
from ..service.work_queues import QueueRow
from . import confirmations, people
from .live_dashboard import POLL_SECONDS, no_store

bp = Blueprint("live", __name__)

# The call page's notice names at most this many changes, newest last ("and 2 earlier changes" before).
CHANGES_NAMED = 3


@bp.app_context_processor
def _live_globals() -> dict[str, Any]:
    """What the pages' live parts need when the pages draw them (templates/_call_live.html)."""
    return {"live_poll_seconds": POLL_SECONDS, "call_edition": status_service.edition,
            "last_event_seq": status_service.last_event_seq}


# -- the queue -------------------------------------------------------------------------------------------

def queue_centre() -> str:
    """The centre whose queue is asked for: ?centre=, else the user's own (404 for no such centre)."""
    directory = services().directory
    centre = request.args.get("centre") or current_user.centre or next(iter(directory.centres))
    if centre not in directory.centres:
        abort(404)
    return str(centre)


def queue_context(centre: str) -> dict[str, Any]:
    """What templates/queue.html and its live part need; Forbidden for a centre the user may not see.
    The phone queue (service/phone_answering.py) comes with the calls: waiting callers with their screen
    pop, and whether this user may answer them (their own centre's, as a handler or supervisor)."""
    svc = services()
    who = actor()
    rows = work_queues.queue_for(svc, who, centre)
    has_line = svc.directory.centres[centre].voice is not None
    takes_calls = who.role in CALL_TAKING_ROLES and who.centre == centre
    return {"centre": svc.directory.centres[centre], "rows": rows, "now": svc.clock.now(),
            "poll_seconds": POLL_SECONDS, "breach_notice": breach_notice(rows),
            "breach_key": " ".join(sorted(row.call.ref for row in rows if row.overdue)),
            "has_line": has_line, "phone_rows": phone_answering.phone_queue_for(svc, who, centre) if has_line else [],
            "may_answer": takes_calls and has_line,
            "taking_calls_since": call_takers.taking_calls_since(svc, current_user.id) if takes_calls else None}


def _words(n: int, one: str, many: str) -> str:
    return one if n == 1 else many


def breach_notice(rows: list[QueueRow]) -> str | None:
    """The queue's notice above the table, in words: how many calls have run out of time on their clock
    ("2 calls have breached their clock"); None when none has."""
    breached = sum(1 for row in rows if row.overdue and row.clock is not None and row.clock.breached)
    overdue = sum(1 for row in rows if row.overdue) - breached
    if breached:
        said = (f"{breached} {_words(breached, 'call has', 'calls have')} breached "
                f"{_words(breached, 'its', 'their')} clock")
        return said + (f" and {overdue} more {_words(overdue, 'is', 'are')} overdue" if overdue else "")
    if overdue:
        return (f"{overdue} {_words(overdue, 'call is', 'calls are')} overdue on "
                f"{_words(overdue, 'its', 'their')} clock")
    return None


@bp.get("/queue/live")
@requires("calls.read")
def queue_fragment():
    """The queue's live part, which the page polls: the access rule of the queue page (work_queues.queue_for)."""
    try:
        context = queue_context(queue_centre())
    except Forbidden:
        abort(403)
    return no_store(make_response(render_template("_queue_live.html", oob=True, **context)))


# -- the call page ---------------------------------------------------------------------------------------

def _int_arg(name: str) -> int:
    value = request.args.get(name, "")
    return whole_number(value, 18) or 0


def describe_change(change: status_service.Change) -> str:
    """One change in words, for the call page's notice: "referral to Community (district) nursing
    accepted by Nia Nurse (professional) at 10:32"."""
    state = change.to_state.replace("_", " ")
    if change.entity == "referral":
        to = f"referral to {confirmations.service_name(change.service or '')}"
        what = {"sla_breach": f"the {to} breached its SLA clock",
                "escalate": f"the {to} escalated to the service's duty lead"}.get(change.trigger, f"{to} {state}")
    else:
        done = confirmations.CALL_DONE.get(change.trigger)
        what = {"sla_breach": "the call's SLA clock ran out",
                "record_consent": "consent to share recorded"}.get(
            change.trigger, done[:1].lower() + done[1:] if done else f"call {state}")
    # A breach is the clock's own doing: "by SLA clock" would say nothing more.
    by = "" if change.trigger == "sla_breach" else f" by {people.who(change.actor, change.service)}"
    return f"{what}{by} at {london_clock(change.at, '%H:%M')}"


def change_notice(changes: list[status_service.Change]) -> str:
    """What happened since the page was drawn, newest last; a changed version with no audited change
    to name (never expected) still says the call changed."""
    people.preload(c.actor for c in changes)
    named = [describe_change(c) for c in changes[-CHANGES_NAMED:]]
    earlier = len(changes) - len(named)
    prefix = f"{earlier} earlier change{'' if earlier == 1 else 's'}, then " if earlier else ""
    return prefix + "; ".join(named) if named else ""


@bp.get("/calls/<ref>/live")
def call_fragment(ref: str):
    """The call page's live part, which the page polls. `seen`: the edition the page was drawn with
    (service/call_status.edition); `after`: the newest audit event it shows. Refused exactly as the page
    is (the access policy: 404 for no such call, 403 outside the user's relationship), without the page's
    break-glass offer: that is for a person opening the record, on the page itself."""
    try:
        status = status_service.call_status(services(), actor(), ref, _int_arg("after"))
    except NotFound:
        abort(404)
    except Forbidden:
        abort(403)
    seen = request.args.get("seen", "")[:200]
    changed = seen != status.edition
    return no_store(make_response(render_template(
        "_call_live.html", oob=True, call=status, clocks=status.clocks, now=services().clock.now(),
        seen=seen, after=_int_arg("after"), changed=changed,
        change_words=change_notice(status.changes) if changed else "")))


__all__ = ["CHANGES_NAMED", "POLL_SECONDS", "bp", "breach_notice", "call_fragment", "change_notice",
           "describe_change", "queue_centre", "queue_context", "queue_fragment"]
