"""bench/voice.py's baselines (registered only when IPOA_BENCH_ENDPOINTS=1, like api/bench.py's): signed like
/webhooks/twilio/voice/incoming (the same before_request check on PUBLIC_BASE_URL + the path, web/webhooks.py)
and answered with TwiML built by the same library, a fixed <Say>.

- bare: no database, so that the benchmark's ratio says what the incoming call's own work costs (issue 15's
  goal: at least 0.7 of this one's rate).
- write: the same answer once one row is committed (bench_pings), sent as the incoming call sends its leg
  (a unit of work's only statement at commit: on PostgreSQL one round trip, without BEGIN or COMMIT,
  adapters/unit_of_work.UnitOfWork.at_commit). What any answer that must commit a row before it answers can
  reach on the machine that runs the benchmark (docs/performance.md, "Voice")."""
from __future__ import annotations

from flask import Blueprint, Response
from sqlalchemy import bindparam, insert, literal
from twilio.twiml.voice_response import VoiceResponse

from ..adapters.orm import bench_pings
from ..adapters.prepared import Prepared
from ..entry.request_context import services
from .access import csrf
from .webhooks import verify_signature

bp = Blueprint("bench_voice", __name__, url_prefix="/webhooks/twilio/bench")
csrf.exempt(bp)
bp.before_request(verify_signature)
WORDS = "Thank you for calling."
_PING = Prepared(insert(bench_pings).values(created_at=bindparam("b_at", type_=bench_pings.c.created_at.type),
                                            note=literal("voice")).returning(bench_pings.c.id))


@bp.post("/voice")
def bare_twiml():
    response = VoiceResponse()
    response.say(WORDS, language="en-GB")
    return Response(str(response), mimetype="text/xml")


@bp.post("/voice/write")
def write_twiml():
    svc = services()
    with svc.uow() as uow:
        uow.at_commit(_PING, {"b_at": svc.clock.now()})
        uow.commit()
    return bare_twiml()
