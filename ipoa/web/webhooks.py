"""Twilio webhooks: delivery receipts and replies. No sign-in: Twilio's signature is the credential,
checked against the exact public URL Twilio called (403 otherwise)."""
from __future__ import annotations

from flask import Blueprint, Response, abort, request
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from ..domain.validation import normalise_uk_phone, text_problem
from ..entry.request_context import services
from ..service import replies
from ..service import sms as sms_service
from .access import csrf

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks/twilio")
csrf.exempt(bp)


@bp.before_request
def verify_signature():
    """Every Twilio webhook's check, SMS and Voice alike (web/voice_webhooks.py registers it too)."""
    svc = services()
    token = svc.twilio.get("auth_token")
    url = svc.public_base_url.rstrip("/") + request.full_path.rstrip("?")
    signature = request.headers.get("X-Twilio-Signature", "")
    if not token or not RequestValidator(token).validate(url, request.form.to_dict(), signature):
        abort(403)


def _unreadable(form, single_line: tuple[str, ...], multi_line: tuple[str, ...] = ()) -> bool:
    """A field with a control character (NUL included) or a bidirectional override: it must not reach the
    database (PostgreSQL refuses a NUL: a 500, which Twilio retries)."""
    return (any(text_problem(form.get(k, "")) for k in single_line)
            or any(text_problem(form.get(k, ""), multiline=True) for k in multi_line))


@bp.post("/sms/status")
def sms_status():
    form = request.form
    if _unreadable(form, ("MessageSid", "MessageStatus", "ErrorCode")):
        return Response("A field holds a character that is not allowed.", status=400, mimetype="text/plain")
    sms_service.record_status(services(), form.get("MessageSid", ""), form.get("MessageStatus", ""),
                              form.get("ErrorCode"))
    return Response(status=204)


@bp.post("/sms/inbound")
def sms_inbound():
    form = request.form
    twiml = MessagingResponse()
    if _unreadable(form, ("MessageSid", "From"), ("Body",)):
        # Answered (200, so Twilio does not retry) with the same neutral text as any reply we cannot act
        # on, and nothing stored: a text with a NUL or a bidirectional override is not a command.
        twiml.message(services().sms_templates.render("reply_unknown"))
        return Response(str(twiml), mimetype="text/xml")
    sender = normalise_uk_phone(form.get("From", "")) or form.get("From", "")
    text = replies.handle(services(), provider_sid=form.get("MessageSid", ""), from_number=sender,
                          body=form.get("Body", ""))
    if text:
        twiml.message(text)
    return Response(str(twiml), mimetype="text/xml")
