"""Handlers taking phone calls (issue 15): a flag per user with when it last changed. A centre whose handlers
are none of them taking calls (and signed in) overflows, if its line says so (domain/telephony/centre_voice.py).
Signing out takes a handler off at once: they are no longer seen (service/presence.py)."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from ..adapters.handler_availability_store import HandlerAvailabilityStore
from ..adapters.voice_queue_queries import CALL_TAKING_ROLES
from .errors import Forbidden

if TYPE_CHECKING:
    from ..bootstrap import Services


def set_taking_calls(svc: Services, user_id: int, role: str, taking_calls: bool) -> bool:
    """A handler (or supervisor) says they are taking calls, or not. True if that changed anything."""
    if role not in CALL_TAKING_ROLES:
        raise Forbidden(f"only handlers and supervisors take phone calls, not a {role}")
    with svc.uow() as uow:
        changed = HandlerAvailabilityStore(uow.session).set(user_id, taking_calls, svc.clock.now())
        uow.commit()
    return changed


def taking_calls_since(svc: Services, user_id: int) -> datetime | None:
    """When the handler started taking calls; None if they are not taking them."""
    with svc.uow() as uow:
        store = HandlerAvailabilityStore(uow.session)
        return store.since(user_id) if store.get(user_id) else None
