"""Idempotency-Key records: the half that lives with the database (the API's hooks are
ipoa/api/idempotency.py; the design is in docs/security.md, "Races and retries").

A key row goes through three states:

1. claimed: inserted in its own short transaction before the request runs (status_code NULL). The row's
   id is this attempt's fencing token: only the attempt holding that id may complete it.
2. completed inside the change's own transaction: just before the use case commits, the answer the
   change produces is written into the row (`UPDATE ... WHERE id = <ours> AND status_code IS NULL`). So
   a committed change always has its answer stored with it, and a change whose claim was taken over
   (the row is gone) is rolled back (Superseded) rather than committed twice.
3. answered: after the view returns, its actual answer is stored if it differs from what the
   transaction wrote (an error answer, which commits nothing, is stored here).

A claim left NULL by an attempt that died before committing anything can be taken over after
IN_PROGRESS_LEASE; until then a retry is told the first is still in progress (409). Records are kept
KEEP (24 hours) and purged after that."""
from __future__ import annotations

import logging
from collections.abc import Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ..adapters.idempotency_store import CommittingTransaction, before_every_commit
from ..domain.model import Call

if TYPE_CHECKING:
    from ..bootstrap import Services

log = logging.getLogger(__name__)

KEEP = timedelta(hours=24)  # a retry within a day gets the first answer; later ones are new requests
# Longer than any request may run (gunicorn's timeout is 30 s): a claim older than this that never
# committed anything belongs to an attempt that died. Taking it over is safe even if that attempt is in
# fact still alive: its commit then finds its row gone and rolls back (Superseded).
IN_PROGRESS_LEASE = timedelta(seconds=60)
PURGE_BATCH = 1000  # rows per purge: a backlog is worked off over several purges, never in one long lock


class Superseded(Exception):
    """This attempt's claim on its Idempotency-Key was taken over by a retry: its change is rolled back."""


@dataclass
class Claim:
    """An attempt's hold on a key row, for the duration of its request."""

    id: int  # the key row: the fencing token
    # The answer (status, JSON text) the change produces, built from the call as the transaction leaves it.
    answer: Callable[[Call], tuple[int, str]]
    ref: str | None = None  # the call the request changes (events); None for an intake until it is noted
    created: Call | None = None  # an intake's new call, noted by log_call inside its unit of work
    written: tuple[int, str] | None = None  # what the change's transaction stored


@dataclass(frozen=True)
class Outcome:
    kind: str  # "claimed", "replay", "mismatch", "in_progress"
    claim_id: int | None = None
    status_code: int | None = None
    response_body: str | None = None


_current: ContextVar[Claim | None] = ContextVar("ipoa_idempotency_claim", default=None)


def begin(claim: Claim) -> Token[Claim | None]:
    """Make `claim` the current request's (until end(token)): its change's transaction will complete it."""
    return _current.set(claim)


def end(token: Token[Claim | None]) -> None:
    _current.reset(token)


def note_created(call: Call) -> None:
    """Called by log_call inside its unit of work, just before it commits: the call a keyed intake
    creates, so that its answer is stored in the same transaction. Free when there is no key."""
    claim = _current.get()
    if claim is not None:
        claim.created = call


# --- claiming -------------------------------------------------------------------------------------------

def claim(svc: Services, *, user_id: int, key: str, method: str, path: str, request_hash: str) -> Outcome:
    """Claim a key for this request in one short transaction, or say why not: the first answer to replay,
    another request under the same key (mismatch), or the first attempt still running (in_progress)."""
    now = svc.clock.now()
    values: dict[str, Any] = {"user_id": user_id, "key": key, "method": method, "path": path[:200],
                              "request_hash": request_hash, "created_at": now}
    with svc.uow() as uow:
        keys = uow.idempotency_keys
        new_id = keys.insert_if_new(values)
        outcome = None
        if new_id is None:
            row = keys.find(user_id, key)
            if row is None:  # purged or released between the two statements: claim it afresh
                new_id = keys.insert_if_new(values)
            elif (row.method, row.path, row.request_hash) != (method, path[:200], request_hash):
                outcome = Outcome("mismatch")
            elif row.status_code is not None:
                outcome = Outcome("replay", status_code=row.status_code, response_body=row.response_body)
            elif row.created_at > now - IN_PROGRESS_LEASE:
                outcome = Outcome("in_progress")
            else:
                # Abandoned: its attempt died before committing (a committed change always completed
                # the row). Replace the row, so that attempt's id no longer fences anything.
                if keys.remove_unanswered(row.id):
                    new_id = keys.insert_if_new(values)
                    log.info("Idempotency-Key record %s abandoned since %s taken over", row.id, row.created_at)
        if outcome is None and new_id is None:
            outcome = Outcome("in_progress")  # another retry took it over first
        uow.commit()
    return outcome or Outcome("claimed", claim_id=new_id)


# --- completing -----------------------------------------------------------------------------------------

def _before_commit(txn: CommittingTransaction) -> None:
    """Before every commit: when the current request holds a claim and this transaction is its change
    (the intake noted its call, or the call the event route names is in this transaction), store the
    answer in this transaction. Costs one ContextVar lookup on every other commit."""
    claim = _current.get()
    if claim is None or claim.written is not None:
        return
    call = claim.created if claim.created is not None else (txn.call(claim.ref) if claim.ref is not None
                                                            else None)
    if call is None:
        return
    status, body = claim.answer(call)
    if not txn.complete_key(claim.id, status, body):
        raise Superseded(f"Idempotency-Key record {claim.id} was taken over by a retry")
    claim.written = (status, body)


def install() -> None:
    """Run _before_commit before every unit of work's commit (once per process)."""
    before_every_commit(_before_commit)


def store(svc: Services, claim_id: int, status: int, body: str) -> None:
    """The view's actual answer, after it returned (an error answer, or a success answer that differs
    from what the transaction wrote). Only our own row: a superseded claim's row is gone."""
    with svc.uow() as uow:
        uow.idempotency_keys.store_answer(claim_id, status, body)
        uow.commit()


def release(svc: Services, claim_id: int) -> None:
    """Give up a claim whose request failed without an answer to keep (a 5xx): a retry may run afresh.
    A claim completed by a committed change keeps its answer (status_code is no longer NULL)."""
    with svc.uow() as uow:
        uow.idempotency_keys.remove_unanswered(claim_id)
        uow.commit()


def purge(svc: Services) -> int:
    """Delete records older than KEEP, at most PURGE_BATCH of them; how many went."""
    cutoff = svc.clock.now() - KEEP
    with svc.uow() as uow:
        gone = uow.idempotency_keys.purge(cutoff, PURGE_BATCH)
        uow.commit()
    return gone
