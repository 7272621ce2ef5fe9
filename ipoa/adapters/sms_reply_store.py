"""Professionals' SMS replies received (sms_inbound): one row per provider message id, holding the answer
given, so a webhook delivered again gets the same answer and acts once."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .orm import sms_inbound


class AlreadyReceived(Exception):
    """A reply with this provider id is recorded already: the same webhook, delivered twice at once."""


class SmsReplyStore:
    def __init__(self, session: Session):
        self.session = session

    def answer_to(self, provider_sid: str) -> str | None:
        """The answer given to this message, if it was received before."""
        return self.session.scalar(select(sms_inbound.c.reply).where(sms_inbound.c.provider_sid == provider_sid))

    def add(self, *, provider_sid: str, professional_id: int | None, command: str, call_ref: str | None,
            outcome: str, reply: str, received_at: datetime) -> None:
        """Raises AlreadyReceived when another transaction recorded this provider_sid first (its unique key);
        the transaction is then spent (PostgreSQL): the caller lets the unit of work roll back."""
        try:
            self.session.execute(insert(sms_inbound).values(
                provider_sid=provider_sid, professional_id=professional_id, command=command, call_ref=call_ref,
                outcome=outcome, reply=reply, received_at=received_at))
        except IntegrityError as exc:
            raise AlreadyReceived(provider_sid) from exc
