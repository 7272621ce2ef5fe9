"""Finding and loading the calls past retention (service/retention.py; the policy is in
docs/audit-and-retention.md). The pseudonymising itself is the service's, on the loaded calls; what the
texts about pseudonymised calls hold (a referrer's number, follow-up notes, a referrer text's error message)
is forgotten here, in SQL."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, or_, select, update
from sqlalchemy.orm import Session

from ..domain.model import Call
from .orm import calls, referrals, sms_messages
from .results import rowcount


def _past_retention(cutoff: datetime):
    """Closed, not yet pseudonymised, and no contact since the cutoff (the call's nor its referrals')."""
    recent_referral = exists().where(referrals.c.call_id == calls.c.id,
                                     or_(referrals.c.updated_at >= cutoff, referrals.c.closed_at >= cutoff))
    return (calls.c.closed_at.is_not(None), calls.c.pseudonymised_at.is_(None), calls.c.closed_at < cutoff,
            calls.c.updated_at < cutoff, ~recent_referral)


class RetentionStore:
    def __init__(self, session: Session):
        self.session = session

    def due_refs(self, cutoff: datetime, limit: int | None = None) -> list[str]:
        """The refs of the calls past retention at `cutoff`, in the order they were logged."""
        stmt = select(calls.c.ref).where(*_past_retention(cutoff)).order_by(calls.c.id)
        return list(self.session.scalars(stmt.limit(limit) if limit else stmt))

    def due_ids(self, cutoff: datetime, after_id: int, size: int) -> list[int]:
        """The ids of the next `size` calls past retention after `after_id`."""
        return list(self.session.scalars(select(calls.c.id).where(*_past_retention(cutoff), calls.c.id > after_id)
                                         .order_by(calls.c.id).limit(size)))

    def calls(self, ids: list[int]) -> list[Call]:
        """The calls with these ids, loaded to change (by id)."""
        return list(self.session.scalars(select(Call).where(calls.c.id.in_(ids)).order_by(calls.c.id)))

    def forget_referrer_numbers(self, removed: str) -> int:
        """Texts to a referrer (recipient_kind `referrer`: the updates a professional caller asked for) about
        a pseudonymised call: their number, the caller's phone by another name, replaced by `removed` (the
        column is NOT NULL). Texts to staff keep theirs. The rows changed."""
        pseudonymised = select(calls.c.ref).where(calls.c.pseudonymised_at.is_not(None))
        return rowcount(self.session.execute(
            update(sms_messages)
            .where(sms_messages.c.recipient_kind == "referrer", sms_messages.c.to != removed,
                   sms_messages.c.call_ref.in_(pseudonymised))
            .values(to=removed)))

    def forget_text_free_text(self, removed: str) -> int:
        """Texts about a pseudonymised call: what people wrote or Twilio said about them, which may name the
        person or hold a number, goes. A supervisor's follow-up note (free text: "rang Dr X about Mrs Y") is
        replaced by `removed`; the error message of a text to a referrer (Twilio's words name the number it
        refused: "Invalid 'To' Phone Number: +44...") is emptied, its error code kept. The rows changed."""
        pseudonymised = select(calls.c.ref).where(calls.c.pseudonymised_at.is_not(None))
        notes = rowcount(self.session.execute(
            update(sms_messages)
            .where(sms_messages.c.follow_up_note.is_not(None), sms_messages.c.follow_up_note != removed,
                   sms_messages.c.call_ref.in_(pseudonymised))
            .values(follow_up_note=removed)))
        errors = rowcount(self.session.execute(
            update(sms_messages)
            .where(sms_messages.c.recipient_kind == "referrer", sms_messages.c.error_message.is_not(None),
                   sms_messages.c.call_ref.in_(pseudonymised))
            .values(error_message=None)))
        return notes + errors
