"""One use case, one transaction: the state change, its audit events and its outbox messages commit
together or not at all. Committed outbox messages are then handed to the publisher; if that fails
(Redis down) they stay unpublished in the table and the sweep hands them over later."""
from __future__ import annotations

import logging
from typing import Callable, Protocol

from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from ..domain.engine import Result
from ..domain.errors import VersionConflict
from .repository import CallRepository

log = logging.getLogger(__name__)


class Publisher(Protocol):
    def publish(self, message_ids: list[str]) -> None: ...


class UnitOfWork:
    def __init__(self, session_factory: sessionmaker, publisher: Publisher | None = None):
        self.session_factory = session_factory
        self.publisher = publisher

    def __enter__(self) -> "UnitOfWork":
        self.session: Session = self.session_factory()
        self.calls = CallRepository(self.session)
        self._pending: list[str] = []
        return self

    def __exit__(self, *exc) -> None:
        # close() rolls back anything uncommitted without expiring what was loaded, so callers can
        # still read the (now detached) objects they were handed.
        self.session.close()

    def record(self, result: Result) -> None:
        if result.stopped_clocks:
            from sqlalchemy import func, update

            from .orm import timers

            for call_ref, referral_id, kind, at in result.stopped_clocks:
                subject = (timers.c.referral_id.is_(None) if referral_id is None
                           else timers.c.referral_id == referral_id)
                # No autoflush: the record's own UPDATE (with its version check) belongs to commit(),
                # where a stale version becomes a VersionConflict.
                with self.session.no_autoflush:
                    self.session.execute(update(timers).where(
                        timers.c.call_ref == call_ref, subject, timers.c.kind == kind,
                        timers.c.stopped_at.is_(None))
                        .values(stopped_at=at, fired_at=func.coalesce(timers.c.fired_at, at),
                                outcome=func.coalesce(timers.c.outcome, "stopped")))
        self.session.add_all(result.timers)
        self.session.add_all(result.audit)
        self.session.add_all(result.outbox)
        self._pending += [m.id for m in result.outbox]

    def commit(self) -> None:
        try:
            self.session.commit()
        except StaleDataError as exc:
            self.session.rollback()
            raise VersionConflict(None, None) from exc
        pending, self._pending = self._pending, []
        if pending and self.publisher is not None:
            try:
                self.publisher.publish(pending)
            except Exception:  # noqa: BLE001 - the sweep re-publishes; the committed change stands
                log.warning("outbox publish failed for %d message(s); the sweep will retry", len(pending),
                            exc_info=True)


UnitOfWorkFactory = Callable[[], UnitOfWork]
