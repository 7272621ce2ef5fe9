"""bench/voice.py's baseline (registered only when IPOA_BENCH_ENDPOINTS=1, like api/bench.py's): signed like
/webhooks/twilio/voice/incoming (the same before_request check on PUBLIC_BASE_URL + the path, web/webhooks.py)
and answered with TwiML built by the same library, but a fixed <Say> and no database, so that the benchmark's
ratio says what the incoming call's own work costs."""
from __future__ import annotations

from flask import Blueprint, Response
from twilio.twiml.voice_response import VoiceResponse

from .access import csrf
from .webhooks import verify_signature

bp = Blueprint("bench_voice", __name__, url_prefix="/webhooks/twilio/bench")
csrf.exempt(bp)
bp.before_request(verify_signature)
WORDS = "Thank you for calling."


@bp.post("/voice")
def bare_twiml():
    response = VoiceResponse()
    response.say(WORDS, language="en-GB")
    return Response(str(response), mimetype="text/xml")
