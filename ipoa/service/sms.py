"""Text messages caused by committed events: who is told, rendering, recording and sending.

Creating the messages and marking their outbox event processed happen in one transaction, and each
message has a unique (event, recipient, template) key, so a re-delivered event texts nobody twice. A
message is sent by its own job, which records `submitting` before the gateway call: a job that finds a
message still `submitting` (its worker died mid-send) asks the gateway before sending again."""
from __future__ import annotations

import base64
import logging
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from ..adapters.orm import professionals as professionals_table
from ..adapters.orm import sms_messages
from ..adapters.sms_gateway import PermanentSmsError
from ..domain.calendar import LONDON
from ..domain.messaging import (
    BREACH_WORDS, STATUS_RANK, Professional, SmsMessage, escalation_recipients, referral_sent_recipients,
    referrer_update,
)
from ..domain.model import Call
from ..domain.sms import local_time_text

log = logging.getLogger(__name__)


def link_token(referral_id: str) -> str:
    """22 URL-safe characters for the secure page's link (the referral id, base64url)."""
    return base64.urlsafe_b64encode(uuid.UUID(hex=referral_id).bytes).decode().rstrip("=")


def referral_id_from_token(token: str) -> str | None:
    try:
        return uuid.UUID(bytes=base64.urlsafe_b64decode(token + "==")).hex
    except (ValueError, TypeError):
        return None


def _on_duty(session, service: str) -> list[Professional]:
    rows = session.execute(select(professionals_table).where(professionals_table.c.service == service))
    return [Professional(id=r.id, name=r.name, mobile=r.mobile, service=r.service, on_duty=r.on_duty,
                         opted_out=r.opted_out_at is not None) for r in rows]


def messages_for_event(svc, session, message_id: str, topic: str, payload: dict[str, Any]) -> list[SmsMessage]:
    """The SMS an outbox event causes (none for most events)."""
    now = svc.clock.now()
    if topic in ("sla.breached", "referral.escalated"):
        return _escalation(svc, session, message_id, topic, payload, now)
    referral_id = payload.get("referral_id")
    if referral_id is None:
        return []
    fields = {"ref": payload["ref"], "service": payload.get("service", ""),
              "urgency": payload.get("urgency", "").replace("_", " "),
              "sent_at": now.astimezone(LONDON).strftime("%H:%M"),
              "link": svc.sms_templates.link_for(link_token(referral_id))}
    out: list[SmsMessage] = []
    if topic == "referral.sent":
        service = svc.directory.services.get(payload["service"])
        recipients = referral_sent_recipients(payload["service"], _on_duty(session, payload["service"]),
                                              service.duty_lead if service else None)
        if not recipients:
            log.warning("referral %s: nobody to text for service %s", payload["ref"], payload["service"])
        for r in recipients:
            out.append(SmsMessage(call_ref=payload["ref"], referral_id=referral_id, recipient=r,
                                  template="referral_sent",
                                  body=svc.sms_templates.render("referral_sent", **fields),
                                  created_at=now, outbox_id=message_id))
    elif topic == "referral.state_changed":
        updates_to = session.scalar(select(Call.updates_to).where(Call.ref == payload["ref"]))
        update = referrer_update(payload.get("to", ""), updates_to)
        if update is not None:
            recipient, template = update
            out.append(SmsMessage(call_ref=payload["ref"], referral_id=referral_id, recipient=recipient,
                                  template=template, body=svc.sms_templates.render(template, **fields),
                                  created_at=now, outbox_id=message_id))
    return out


def _supervisor_mobiles(session, centre: str) -> list[str]:
    from ..adapters.orm import users

    return list(session.scalars(select(users.c.mobile).where(
        users.c.role == "supervisor", users.c.centre == centre, users.c.active.is_(True),
        users.c.mobile.is_not(None)).order_by(users.c.id)))


def _escalation(svc, session, message_id: str, topic: str, payload: dict[str, Any], now) -> list[SmsMessage]:
    """A breached clock: the service's duty lead (referral clocks) and the receiving centre's
    supervisors. A supervisor's own escalation of a referral: the duty lead only (the supervisors are
    the ones asking)."""
    referral_id = payload.get("referral_id")
    service = svc.directory.services.get(payload.get("service", "")) if referral_id else None
    by_supervisor = topic == "referral.escalated"
    recipients = escalation_recipients(service.duty_lead if service else None,
                                       [] if by_supervisor else _supervisor_mobiles(session, payload["centre"]))
    if not recipients:
        log.warning("breach on %s (%s clock): nobody to text", payload["ref"], payload["clock"])
        return []
    fields = {"ref": payload["ref"], "urgency": payload.get("urgency", "").replace("_", " "),
              "breach": "supervisor escalated" if by_supervisor else BREACH_WORDS.get(payload["clock"], "overdue"),
              "due": local_time_text(datetime.fromisoformat(payload["due_at"]), now)}
    if referral_id:
        template = "escalation"
        fields.update(service=payload["service"],
                      link=svc.sms_templates.link_for(link_token(referral_id)))
    else:
        template, fields["centre"] = "escalation_call", payload["centre"]
    body = svc.sms_templates.render(template, **fields)
    return [SmsMessage(call_ref=payload["ref"], referral_id=referral_id, recipient=r, template=template,
                       body=body, created_at=now, outbox_id=message_id) for r in recipients]


def stuck(svc, older_than_seconds: int = 120, limit: int = 500) -> list[str]:
    """Messages never handed over, or whose send was cut off (worker killed mid-send): their job is
    gone, so the relay's sweep gives them a new one. send() asks the gateway before sending again."""
    from datetime import timedelta

    cutoff = svc.clock.now() - timedelta(seconds=older_than_seconds)
    with svc.uow() as uow:
        return list(uow.session.scalars(
            select(SmsMessage.id).where(SmsMessage.status.in_(("pending", "submitting")),
                                        SmsMessage.updated_at <= cutoff)
            .order_by(SmsMessage.created_at).limit(limit)))


def status_callback_url(svc) -> str:
    return f"{svc.public_base_url.rstrip('/')}/webhooks/twilio/sms/status"


def send(svc, sms_id: str) -> str:
    """Send one message once. Returns its status afterwards. Transient gateway errors propagate so the
    job is retried with back-off; permanent ones mark the message failed at once."""
    now = svc.clock.now()
    # The usual case, a pending message, is claimed in one statement (about half the cost of loading
    # and flushing it through the ORM: see docs/performance.md, SMS). Two jobs for one message cannot
    # both claim it.
    with svc.uow() as uow:
        claimed = uow.session.execute(
            update(sms_messages).where(sms_messages.c.id == sms_id, sms_messages.c.status == "pending")
            .values(status="submitting", attempts=sms_messages.c.attempts + 1, submitted_at=now, updated_at=now)
            .returning(sms_messages.c.to, sms_messages.c.body)).first()
        uow.commit()
    if claimed is not None:
        to, body = claimed
    else:
        outcome = _claim_unfinished(svc, sms_id)
        if isinstance(outcome, str):
            return outcome
        to, body = outcome
    try:
        result = svc.sms_gateway.send(to, body, status_callback_url(svc))
    except PermanentSmsError as exc:
        with svc.uow() as uow:
            msg = uow.session.get(SmsMessage, sms_id)
            msg.apply_status("failed", svc.clock.now(), exc.code, exc.message)
            uow.commit()
        log.warning("sms %s failed permanently: %s", sms_id, exc.code)
        return "failed"
    return _record_submitted(svc, sms_id, result.provider_sid, result.status)


def _claim_unfinished(svc, sms_id: str) -> str | tuple[str, str]:
    """A message that was not pending: missing, already with the gateway (returns its status), or cut
    off mid-send by a killed worker: then the gateway is asked before sending again. Returns (to, body)
    when it is to be sent now."""
    with svc.uow() as uow:
        msg = uow.session.get(SmsMessage, sms_id, with_for_update=True)
        if msg is None:
            log.warning("sms %s not found", sms_id)
            return "missing"
        if msg.status not in ("pending", "submitting"):
            return msg.status  # already with the gateway: a retried job never sends twice
        if msg.status == "submitting":
            found = svc.sms_gateway.find_submitted(msg.to, msg.body, msg.submitted_at)
            if found is not None:
                msg.provider_sid = found.provider_sid
                msg.apply_status(found.status, svc.clock.now())
                uow.commit()
                return msg.status
        msg.status = "submitting"
        msg.attempts += 1
        msg.submitted_at = msg.updated_at = svc.clock.now()
        to, body = msg.to, msg.body
        uow.commit()
    return to, body


def _record_submitted(svc, sms_id: str, provider_sid: str, status: str) -> str:
    now = svc.clock.now()
    if STATUS_RANK.get(status, 0) > STATUS_RANK["submitting"]:
        values = {"provider_sid": provider_sid, "status": status, "updated_at": now}
        if status == "sent":
            values["sent_at"] = now
        if status == "delivered":
            values["delivered_at"] = now
        with svc.uow() as uow:
            done = uow.session.execute(
                update(sms_messages).where(sms_messages.c.id == sms_id, sms_messages.c.status == "submitting")
                .values(**values)).rowcount
            uow.commit()
        if done:
            return status
    with svc.uow() as uow:  # moved on meanwhile, or an odd status: the ORM's rank rules decide
        msg = uow.session.get(SmsMessage, sms_id)
        msg.provider_sid = provider_sid
        msg.apply_status(status, now)
        uow.commit()
        return msg.status


def call_ref_for_referral(svc, referral_id: str) -> str | None:
    from ..adapters.orm import calls, referrals

    with svc.uow() as uow:
        return uow.session.scalar(select(calls.c.ref).join(referrals, referrals.c.call_id == calls.c.id)
                                  .where(referrals.c.id == referral_id))


def messages_for_call(svc, ref: str) -> list[SmsMessage]:
    with svc.uow() as uow:
        return list(uow.session.scalars(select(SmsMessage).where(SmsMessage.call_ref == ref)
                                        .order_by(SmsMessage.created_at)))


def record_status(svc, provider_sid: str, status: str, error_code: str | None = None) -> bool:
    """A delivery receipt. Statuses only move up (a late `sent` never overwrites `delivered`), so
    repeated or out-of-order callbacks are harmless. Unknown sids are ignored."""
    code = int(error_code) if error_code and str(error_code).isdigit() else None
    with svc.uow() as uow:
        msg = uow.session.scalars(select(SmsMessage).where(SmsMessage.provider_sid == provider_sid)
                                  .with_for_update()).one_or_none()
        if msg is None:
            return False
        changed = msg.apply_status(status, svc.clock.now(), code, f"Twilio error {code}" if code else None)
        uow.commit()
    return changed


def recent(svc, limit: int = 200) -> list[SmsMessage]:
    """Every centre's texts: for operators and tests. People see recent_for (their centre's)."""
    with svc.uow() as uow:
        return list(uow.session.scalars(select(SmsMessage).order_by(SmsMessage.created_at.desc()).limit(limit)))


def recent_for(svc, actor, limit: int = 200) -> list[SmsMessage]:
    """The texts about calls the user may see: their centre's, and those transferred to or from it
    (the access policy: service/access.py). Nobody without a centre sees any."""
    from sqlalchemy import literal

    from ..adapters.orm import calls
    from .access import may_see_centre

    if not actor.centre or not may_see_centre(actor, actor.centre):
        return []
    padded = literal(" ") + calls.c.centre_path + literal(" ")
    with svc.uow() as uow:
        return list(uow.session.scalars(
            select(SmsMessage).join(calls, calls.c.ref == SmsMessage.call_ref)
            .where(padded.like(f"% {actor.centre} %"))
            .order_by(SmsMessage.created_at.desc()).limit(limit)))
