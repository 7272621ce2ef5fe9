"""Idempotency-Key on the API's creating requests: POST /calls, POST /calls/{ref}/events and POST
/calls/{ref}/referrals/{id}/events. A client that did not get its answer (a dropped connection, a
timeout) sends the same request again with the same key and gets the first answer, status and body,
with `Idempotent-Replayed: true`; nothing is done twice. The same key with another request is a 422; a
retry while the first attempt still runs is a 409 (retry later with the same key). Keys are per user and
kept 24 hours. Other routes ignore the header.

Hooks on the API blueprint (register(), after the token check); the records and the transaction they
share with the change are ipoa/service/idempotency.py; the design is in docs/security.md, "Races and
retries"."""
from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable

from flask import Blueprint, Response, g, jsonify, request

from ..domain.model import Call
from ..entry.json_errors import json_error
from ..entry.json_input import loads  # depth-checked JSON decoding
from ..entry.request_context import services
from ..service import idempotency as records
from .serialise import referral_of

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
KEY_MAX = 200  # idempotency_keys.key
PURGE_EVERY_SECONDS = 600  # each process purges records older than 24 hours at most this often


# The answer each keyed route gives, built from the call as the change's transaction leaves it. They are
# the views' answers (ipoa/api/v1.py) field for field, through the same JSON provider as jsonify, so the
# bytes are the same too; tests/security/test_idempotency.py replays each after a simulated crash and
# compares it with the first answer, so a view that changes its answer without this is caught.
def _intake_answer(call: Call) -> tuple[int, str]:
    return 201, _json(dict(ref=call.ref, state=call.state, version=call.version,
                           recommended_route=call.recommended))


def _call_event_answer(call: Call) -> tuple[int, str]:
    return 200, _json(dict(ref=call.ref, state=call.state, version=call.version,
                           referrals=[{"id": r.id, "service": r.service, "state": r.state, "version": r.version,
                                       "sharing_basis": r.sharing_basis} for r in call.referrals]))


def _referral_event_answer(referral_id: str) -> Callable[[Call], tuple[int, str]]:
    def answer(call: Call) -> tuple[int, str]:
        referral = referral_of(call, referral_id)
        return 200, _json(dict(ref=call.ref, state=call.state, version=call.version,
                               referral={"id": referral.id, "state": referral.state, "version": referral.version}))
    return answer


def _json(value) -> str:
    return jsonify(value).get_data(as_text=True)  # jsonify is current_app.json.response, typed as flask's Response


ROUTES = {"api.create_call", "api.call_event", "api.referral_event"}


def _answer_for(endpoint: str, view_args: dict) -> Callable[[Call], tuple[int, str]]:
    if endpoint == "api.create_call":
        return _intake_answer
    if endpoint == "api.call_event":
        return _call_event_answer
    return _referral_event_answer(view_args["referral_id"])


def register(bp: Blueprint) -> None:
    """Register the hooks on the API blueprint, after its token check (they need the caller)."""
    records.install()
    bp.before_request(_before)
    bp.after_request(_after)
    bp.teardown_request(_teardown)
    bp.register_error_handler(records.Superseded, _superseded)


def _before():
    key = request.headers.get(HEADER)
    if key is None or request.endpoint not in ROUTES:
        return None
    if not key or len(key) > KEY_MAX or not key.isascii() or not key.isprintable():
        return json_error(400, "invalid_idempotency_key",
                          f"{HEADER} must be 1 to {KEY_MAX} printable ASCII characters; a UUID is a good choice.")
    svc = services()
    outcome = records.claim(svc, user_id=g.api_user.id, key=key, method=request.method, path=request.path,
                            request_hash=_request_hash())
    if outcome.kind == "replay":
        if outcome.status_code is None or outcome.response_body is None:  # claim() replays stored answers only
            raise RuntimeError("an Idempotency-Key replay without its stored answer")
        return _replay(outcome.status_code, outcome.response_body)
    if outcome.kind == "mismatch":
        return json_error(422, "idempotency_key_reused",
                          f"This {HEADER} was already used for a different request (another address or body). "
                          "Send a new key with a new request; repeat a key only to retry the same request.")
    if outcome.kind == "in_progress":
        resp = json_error(409, "idempotency_in_progress",
                          f"A request with this {HEADER} is still being processed. Retry with the same key in a "
                          "moment to get its answer.")
        resp.headers["Retry-After"] = "1"
        return resp
    if outcome.claim_id is None:  # claim() names the row it claimed
        raise RuntimeError("an Idempotency-Key claim without its row")
    claim = records.Claim(id=outcome.claim_id, answer=_answer_for(request.endpoint, request.view_args or {}),
                          ref=(request.view_args or {}).get("ref"))
    g.idempotency = (claim, records.begin(claim))
    return None


def _request_hash() -> str:
    """What makes two requests the same: method, path, query (?allow_duplicate=true is another request)
    and the body, as JSON with sorted keys where it is JSON (a client re-encoding it is still retrying)."""
    raw = request.get_data(cache=True)  # limited in size by the app (web/input_limits.py)
    try:
        body = json.dumps(loads(raw), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    except ValueError:  # not JSON (the view will say so): the bytes themselves
        body = raw
    query = "&".join(f"{k}={v}" for k, v in sorted(request.args.items(multi=True)))
    digest = hashlib.sha256(f"{request.method}\n{request.path}\n{query}\n".encode())
    digest.update(body)
    return digest.hexdigest()


def _replay(status: int, body: str) -> Response:
    resp = Response(body, status=status, mimetype="application/json")
    resp.headers["Idempotent-Replayed"] = "true"
    resp.headers["Cache-Control"] = "no-store"
    if status == 201:
        try:
            resp.headers["Location"] = f"/api/v1/calls/{json.loads(body)['ref']}"
        except (ValueError, KeyError, TypeError):
            pass
    return resp


def _after(response: Response) -> Response:
    held = g.pop("idempotency", None)
    if held is None:
        return response
    claim, token = held
    records.end(token)  # before our own transactions below: they are not the change's
    svc = services()
    try:
        if response.status_code >= 500 or getattr(g, "idempotency_superseded", False):
            # Nothing to keep: the change rolled back (a committed one completed the row and keeps it).
            records.release(svc, claim.id)
        else:
            answer = (response.status_code, response.get_data(as_text=True))
            if answer != claim.written:
                records.store(svc, claim.id, *answer)
        _maybe_purge(svc)
    except Exception as exc:  # noqa: BLE001 - the change stands; a retry after the lease runs it afresh
        log.warning("Idempotency-Key record %s not completed: %s", claim.id, type(exc).__name__)
    return response


def _teardown(_exc) -> None:
    """An exception that skipped _after (rare): let go of the claim so that a retry need not wait."""
    held = g.pop("idempotency", None)
    if held is None:
        return
    claim, token = held
    records.end(token)
    try:
        records.release(services(), claim.id)
    except Exception as exc:  # noqa: BLE001
        log.warning("Idempotency-Key record %s not released: %s", claim.id, type(exc).__name__)


def _superseded(_exc):
    g.idempotency_superseded = True
    return json_error(409, "idempotency_superseded",
                      f"This request took too long and a retry with the same {HEADER} took over; nothing was "
                      "saved by this one. Retry with the same key to get the answer.")


_purge_lock = threading.Lock()
_purged_at = 0.0


def _maybe_purge(svc) -> None:
    """Purge records past 24 hours now and then, from a keyed request (no scheduler job to deploy, and
    a process taking no keyed requests has nothing to purge). At most once per PURGE_EVERY_SECONDS per
    process, one bounded DELETE on the created_at index."""
    global _purged_at
    now = time.monotonic()
    if now - _purged_at < PURGE_EVERY_SECONDS or not _purge_lock.acquire(blocking=False):
        return
    try:
        _purged_at = now
        gone = records.purge(svc)
        if gone:
            log.info("purged %d Idempotency-Key record(s) older than 24 hours", gone)
    finally:
        _purge_lock.release()
