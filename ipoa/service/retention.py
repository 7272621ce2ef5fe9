"""Records management: calls closed longer ago than the retention period are pseudonymised, never deleted.

The period (RETENTION_YEARS, default 8) follows the NHS records management code of practice for adult
health records: 8 years after the conclusion of treatment. A call is past it when it is closed and its
last contact (the latest of its closed_at and updated_at and its referrals' closed_at and updated_at) is
more than that many years ago. Pseudonymising removes what identifies the person (NHS number, names,
date of birth, address (first line, town) and postcode, the caller's name and phone, the number for
updates (and on the texts sent to it), the summary, and the free text staff wrote on the record:
referrals' outcome and sharing reasons, the route's override reason, the follow-up notes on its texts and
the error Twilio gave for a text to its referrer) and keeps the codes and timings
reports count (centre, need, urgency, states, times, route, consent, sharing basis, locality, out of area).
Each call gets an audit event (trigger "pseudonymise") and each run one security event ("retention_run").
The audit trail itself is append-only and is not changed.

The calls are changed through the ORM, a few hundred per transaction, with their optimistic-lock version
bumped like any other change: a page or API client still holding the old version cannot write the old
identifiers back (it gets a conflict), and a call changed while a batch was prepared is retried with the
next batch rather than overwritten.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from ..adapters.phone_leg_store import PhoneLegStore
from ..domain.errors import VersionConflict, WorkflowError
from ..domain.model import AuditEvent, Call, SecurityEvent

if TYPE_CHECKING:
    from ..bootstrap import Services

log = logging.getLogger(__name__)

DEFAULT_YEARS = 8
BATCH = 200  # calls per transaction: short transactions, a bounded loss if a run is stopped midway
REMOVED = "[removed]"  # names are NOT NULL: a neutral marker instead
SUMMARY_REMOVED = "[removed under retention]"
AUDIT_ACTOR = "retention"


@dataclass(frozen=True)
class RetentionRun:
    years: int
    cutoff: datetime  # last contact before this: past retention
    refs: list[str]  # pseudonymised (or, on a dry run, that would be)
    dry_run: bool

    @property
    def count(self) -> int:
        return len(self.refs)


def cutoff_for(now: datetime, years: int) -> datetime:
    """`years` calendar years before now (29 February falls back to the 28th)."""
    try:
        return now.replace(year=now.year - years)
    except ValueError:
        return now.replace(year=now.year - years, day=28)


def due(svc: Services, years: int, *, limit: int | None = None) -> list[str]:
    """The refs of the calls past retention (closed, not yet pseudonymised, and no contact since the cutoff,
    the call's nor its referrals'), in the order they were logged."""
    cutoff = cutoff_for(svc.clock.now(), years)
    with svc.uow() as uow:
        return uow.retention.due_refs(cutoff, limit)


def pseudonymise(call: Call) -> None:
    """Remove what identifies the person from a call and its referrals; the codes and timings stay.
    Bumps the version of each row it changes (the ORM's optimistic lock: see the module's docstring)."""
    call.nhs_number = None
    call.given_name = REMOVED
    call.family_name = REMOVED
    call.date_of_birth = None
    call.postcode = None
    call.address_line_1 = None
    call.town = None
    call.caller_name = None
    call.caller_phone = None
    call.updates_to = None
    call.summary = SUMMARY_REMOVED
    # Free text staff wrote can name the person too: the route's override reason (the route's codes stay:
    # reports count overrides) and the referrals' outcome and sharing reasons (their codes stay).
    if call.route and call.route.get("override_reason"):
        call.route = {**call.route, "override_reason": SUMMARY_REMOVED}  # a new dict: JSON is not tracked in place
    call.version += 1
    for referral in call.referrals:
        if referral.outcome_reason is not None or referral.sharing_reason is not None:
            referral.outcome_reason = None
            referral.sharing_reason = None
            referral.version += 1


def run(svc: Services, years: int = DEFAULT_YEARS, *, dry_run: bool = False, by: str = AUDIT_ACTOR,
        batch: int = BATCH, progress: Callable[[int], object] | None = None) -> RetentionRun:
    """Pseudonymise every call past retention (or, dry_run, only list them), a batch per transaction, and
    record the run as a security event. Calls already pseudonymised are skipped: running again changes
    nothing. progress(n_done) is called after each batch."""
    if years < 1:
        raise ValueError("the retention period must be at least 1 year")
    now = svc.clock.now()
    cutoff = cutoff_for(now, years)
    done: list[str] = []
    if dry_run:
        done = due(svc, years)
    else:
        last_id = 0
        conflicts = 0
        while True:
            try:
                refs, last_id = _batch(svc, cutoff, now, years, after_id=last_id, size=batch)
            except VersionConflict:
                # A call of the batch changed meanwhile: nothing of the batch was written. Look again (a
                # changed call may no longer be past retention); give up after a few tries.
                conflicts += 1
                if conflicts > 5:
                    raise
                continue
            if not refs:
                break
            done += refs
            if progress is not None:
                progress(len(done))
    with svc.uow() as uow:
        # Phone legs keep the caller's number (to call back, to match a caller who rings again): forgotten
        # with the calls, on the legs that rang before the cutoff (docs/telephony.md). Times and outcomes stay.
        numbers = 0 if dry_run else PhoneLegStore(uow.session).forget_numbers_before(cutoff)
        # A referrer's mobile on the texts they asked for is the caller's phone (calls.caller_phone) by
        # another name: removed from the texts about every pseudonymised call, this run's and any earlier
        # one's (docs/audit-and-retention.md). Texts to staff keep their numbers.
        referrers = 0 if dry_run else uow.retention.forget_referrer_numbers(REMOVED)
        # And what was written about those texts: a supervisor's follow-up note (free text, which may name the
        # person) and Twilio's error for a text to a referrer (it names the number it refused).
        text_notes = 0 if dry_run else uow.retention.forget_text_free_text(SUMMARY_REMOVED)
        uow.add_event(SecurityEvent(at=now, kind="retention_run", actor=by, detail={
            "years": years, "pseudonymised": 0 if dry_run else len(done), "due": len(done), "dry_run": dry_run,
            "phone_numbers_forgotten": numbers, "referrer_numbers_forgotten": referrers,
            "text_notes_forgotten": text_notes}))
        uow.commit()
    log.info("retention (%d years after the last contact)%s: %d call(s)%s", years, " dry run" if dry_run else "",
             len(done), " would be pseudonymised" if dry_run else " pseudonymised")
    return RetentionRun(years=years, cutoff=cutoff, refs=done, dry_run=dry_run)


def _batch(svc: Services, cutoff: datetime, now: datetime, years: int, *, after_id: int,
           size: int) -> tuple[list[str], int]:
    """One transaction: the next `size` calls past retention after after_id, pseudonymised and audited.
    (refs done, the last id looked at)."""
    with svc.uow() as uow:
        ids = uow.retention.due_ids(cutoff, after_id, size)
        if not ids:
            return [], after_id
        batch = uow.retention.calls(ids)
        refs = []
        for call in batch:
            if call.state is None:  # never for a stored call (state is NOT NULL): the audit event needs it
                raise WorkflowError(f"call {call.ref} has no state: it was never started")
            pseudonymise(call)
            call.pseudonymised_at = now
            uow.add_event(AuditEvent(call_ref=call.ref, entity="call", entity_id=call.ref, actor=AUDIT_ACTOR,
                                     at=now, from_state=call.state, to_state=call.state, trigger="pseudonymise",
                                     data={"years": years}))
            refs.append(call.ref)
        uow.commit()
    return refs, ids[-1]


__all__ = ["run", "due", "pseudonymise", "cutoff_for", "RetentionRun", "DEFAULT_YEARS", "REMOVED",
           "SUMMARY_REMOVED"]
