"""Professionals' SMS replies received (sms_inbound): one row per provider message id, holding the answer
given, so a webhook delivered again gets the same answer and acts once.

A reply's row is claimed (outcome RECEIVED, no answer yet) in its own short transaction before the reply
acts, as the API's Idempotency-Key records are (service/idempotency.py; docs/security.md, "Races and
retries"): a duplicate delivered meanwhile finds the claim and does nothing. The row's id fences the
completion: only the attempt holding it writes the outcome and answer."""
from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .orm import sms_inbound
from .results import rowcount

RECEIVED = "received"  # claimed, not yet answered


class AlreadyReceived(Exception):
    """A reply with this provider id is recorded already: the same webhook, delivered twice at once."""


class ReplyRow(NamedTuple):
    id: int
    outcome: str
    reply: str
    received_at: datetime


class SmsReplyStore:
    def __init__(self, session: Session):
        self.session = session

    def answer_to(self, provider_sid: str) -> str | None:
        """The answer given to this message, if it was received and answered before."""
        return self.session.scalar(select(sms_inbound.c.reply).where(sms_inbound.c.provider_sid == provider_sid,
                                                                     sms_inbound.c.outcome != RECEIVED))

    def find(self, provider_sid: str) -> ReplyRow | None:
        row = self.session.execute(select(sms_inbound.c.id, sms_inbound.c.outcome, sms_inbound.c.reply,
                                          sms_inbound.c.received_at)
                                   .where(sms_inbound.c.provider_sid == provider_sid)).first()
        return None if row is None else ReplyRow(*row)

    def claim(self, provider_sid: str, received_at: datetime) -> int | None:
        """INSERT ... ON CONFLICT DO NOTHING RETURNING id: the claim's id, or None if the sid is taken. On
        PostgreSQL a concurrent uncommitted claim makes this wait for it (the unique key), then do nothing."""
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert(sms_inbound).values(provider_sid=provider_sid, command="", outcome=RECEIVED, reply="",
                                          received_at=received_at) \
            .on_conflict_do_nothing(index_elements=["provider_sid"]).returning(sms_inbound.c.id)
        return self.session.execute(stmt).scalar()

    def remove_unanswered(self, reply_id: int) -> bool:
        """Delete a claim that holds no answer yet (its attempt died); True if it did."""
        gone = self.session.execute(delete(sms_inbound).where(sms_inbound.c.id == reply_id,
                                                              sms_inbound.c.outcome == RECEIVED))
        return rowcount(gone) == 1

    def complete(self, reply_id: int, *, professional_id: int | None, command: str, call_ref: str | None,
                 outcome: str, reply: str) -> bool:
        """The claim's outcome and answer; False if the claim is gone or answered (taken over)."""
        done = self.session.execute(update(sms_inbound).where(sms_inbound.c.id == reply_id,
                                                              sms_inbound.c.outcome == RECEIVED)
                                    .values(professional_id=professional_id, command=command, call_ref=call_ref,
                                            outcome=outcome, reply=reply))
        return rowcount(done) == 1
