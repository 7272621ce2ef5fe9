"""The live part of the supervisor's dashboard (templates/_dashboard_live.html): what it shows and how
often the page asks again. Rendered whole by the page (`web.supervisor`, web/views.py) and alone by the
fragment it polls (`dashboard.fragment`, web/dashboard.py)."""
from __future__ import annotations

from ..entry.request_context import actor, services
from ..service import dashboard as dashboard_service
from ..service import work_queues
from .referral_view import phone_display, tel_href

POLL_SECONDS = 2  # the page asks for fresh figures this often while JavaScript runs
# "Breached now" on the dashboard lists the most overdue this many (all of them are a click away, per centre
# and per service): the list stays readable, and the fragment fetched every 2 s stays small.
BREACHES_SHOWN = 25


def live_context() -> dict:
    """What the live part of the page (templates/_dashboard_live.html) needs."""
    svc = services()
    return {"dash": dashboard_service.figures(svc), "breaches": work_queues.breached_now(svc),
            "exceptions": dashboard_service.exceptions(svc, actor()), "poll_seconds": POLL_SECONDS,
            "breaches_shown": BREACHES_SHOWN, "phone_display": phone_display, "tel_href": tel_href,
            "follow_up_note_max": dashboard_service.FOLLOW_UP_NOTE_MAX}


def no_store(resp):
    # Live figures: never from a cache, and never kept in one (browser back button included).
    resp.headers["Cache-Control"] = "no-store"
    return resp


__all__ = ["POLL_SECONDS", "BREACHES_SHOWN", "live_context", "no_store"]
