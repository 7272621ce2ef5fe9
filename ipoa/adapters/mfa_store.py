"""Recovery codes for the second factor, `mfa_recovery_codes` (service/mfa.py; docs/security.md). Only
their hashes are kept."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from .orm import mfa_recovery_codes as codes_table
from .results import rowcount


class RecoveryCodeStore:
    def __init__(self, session: Session):
        self.session = session

    def replace(self, user_id: int, code_hashes: list[str], now: datetime) -> None:
        """The user's recovery codes become these (the old set stops working)."""
        self.remove(user_id)
        self.session.execute(codes_table.insert(), [{"user_id": user_id, "code_hash": h, "created_at": now}
                                                    for h in code_hashes])

    def remove(self, user_id: int) -> None:
        self.session.execute(delete(codes_table).where(codes_table.c.user_id == user_id))

    def spend(self, user_id: int, code_hash: str, now: datetime) -> bool:
        """Mark an unused code used; True if this call did (of two racing with one code, one wins)."""
        spent = self.session.execute(update(codes_table).where(
            codes_table.c.user_id == user_id, codes_table.c.code_hash == code_hash,
            codes_table.c.used_at.is_(None)).values(used_at=now))
        return rowcount(spent) == 1

    def left(self, user_id: int) -> int:
        return self.session.scalar(select(func.count()).select_from(codes_table).where(
            codes_table.c.user_id == user_id, codes_table.c.used_at.is_(None))) or 0
