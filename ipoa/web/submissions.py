"""One form, one change: a form whose POST makes something new (Log a call) carries a submission id, a
hidden field made when the form is drawn. The first POST with it claims it, as the API's Idempotency-Key
does (service/idempotency.py, a key "web:<form>:<id>" of the signed-in user's), and the call it logs is
written into the claim in the call's own transaction. A second POST with the same id (a double click, the
browser sending the form again, a retry after a dropped connection) is sent to the call the first made:
nothing is logged twice. A POST that changed nothing (refused input, a possible duplicate to confirm) lets
go of its claim, so the corrected form, which keeps its id, can be sent again (docs/security.md, "The Log a
call form sent twice")."""
from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from flask import request

from ..domain.model import Call
from ..entry.request_context import current, services
from ..service import idempotency as records

FIELD = "submission"
_ID = re.compile(r"[0-9a-f]{32}")


def new_id() -> str:
    return secrets.token_hex(16)


def kept_or_new() -> str:
    """The id a re-drawn form carries: the posted one, since a corrected form is the same submission; a new
    one where none well-formed was posted (an old page, a script), so that the corrected form is protected."""
    submission = request.form.get(FIELD, "")
    return submission if _ID.fullmatch(submission) else new_id()


@dataclass(frozen=True)
class Earlier:
    """This submission was sent before: `ref`, the call it logged; None while that first POST still runs."""

    ref: str | None


def once(form: str, run: Callable[[], Call]) -> Call | Earlier:
    """run() (the use case, which commits the new call) once per submission id of the posted form. A form
    posted without a well-formed id (an old page, a script) runs as it is."""
    submission = request.form.get(FIELD, "")
    if not _ID.fullmatch(submission):
        return run()
    svc = services()
    outcome = records.claim(svc, user_id=current().id, key=f"web:{form}:{submission}", method="POST",
                            path=request.path, request_hash=f"web:{form}")
    if outcome.kind == "replay":
        return Earlier(outcome.response_body)
    if outcome.kind != "claimed" or outcome.claim_id is None:
        return Earlier(None)  # in progress: the first POST is still logging it
    claim = records.Claim(id=outcome.claim_id, answer=lambda call: (303, call.ref))
    token = records.begin(claim)
    try:
        return run()
    finally:
        records.end(token)
        if claim.written is None:  # nothing was committed: the form may be sent again
            records.release(svc, claim.id)
