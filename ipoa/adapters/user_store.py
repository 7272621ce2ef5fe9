"""Users and their API tokens: loading, adding and revoking (service/users.py, service/signin.py)."""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple, cast

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from ..users import ApiToken, User
from .orm import api_tokens, users


class TokenRow(NamedTuple):
    id: int
    created_at: datetime
    revoked_at: datetime | None
    name: str | None
    expires_at: datetime | None
    last_used_at: datetime | None
    username: str


class UserStore:
    def __init__(self, session: Session):
        self.session = session

    def find(self, username: str) -> User | None:
        # Usernames are unique (orm.py): first() and one_or_none() find the same user.
        return self.session.scalars(select(User).where(users.c.username == username)).first()

    def named(self, usernames: Iterable[str]) -> list[User]:
        """The users with these usernames, in one query (those that exist)."""
        names = sorted(set(usernames))
        if not names:
            return []
        return list(self.session.scalars(select(User).where(users.c.username.in_(names))))

    def get(self, user_id: int) -> User | None:
        return self.session.get(User, user_id)

    def refresh(self, user: User) -> None:
        """Read the user's row again: as it is now, e.g. once other attempts on the account have ended."""
        self.session.refresh(user)

    def locked(self, now: datetime, centre: str | None = None) -> list[User]:
        """Users locked now (only `centre`'s, if given), soonest unlocked first."""
        stmt = select(User).where(users.c.locked_until > now).order_by(users.c.locked_until, users.c.username)
        if centre is not None:
            stmt = stmt.where(users.c.centre == centre)
        return list(self.session.scalars(stmt))

    def one_at_a_time(self, name: str) -> None:
        """Sign-in attempts on one username wait for each other until their unit of work ends, so each sees
        the failures before it: a PostgreSQL transaction-scoped advisory lock on the name. On SQLite every
        unit of work already holds the single writer's lock."""
        if self.session.get_bind().dialect.name == "postgresql":
            key = int.from_bytes(hashlib.sha256(f"ipoa-sign-in:{name}".encode()).digest()[:8], "big", signed=True)
            self.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    def add(self, user: User) -> None:
        self.session.add(user)

    def with_tokens_in_force(self, now: datetime) -> list[tuple[User, int | None]]:
        """Every user, by username, with how many API tokens they hold in force now (None: none)."""
        in_force = (select(api_tokens.c.user_id, func.count().label("n")).where(
            api_tokens.c.revoked_at.is_(None),
            (api_tokens.c.expires_at.is_(None)) | (api_tokens.c.expires_at > now))
            .group_by(api_tokens.c.user_id).subquery())
        rows = self.session.execute(select(User, in_force.c.n).outerjoin(in_force, in_force.c.user_id == users.c.id)
                                    .order_by(users.c.username)).all()
        return [(u, n) for u, n in rows]

    def add_token(self, token: ApiToken) -> int:
        """Add a token; its id (flushed now, for its security event)."""
        self.session.add(token)
        self.session.flush()
        return cast(int, token.id)

    def token_with_owner(self, token_id: int) -> tuple[ApiToken, str] | None:
        row = self.session.execute(select(ApiToken, users.c.username).join(users, users.c.id == api_tokens.c.user_id)
                                   .where(api_tokens.c.id == token_id)).first()
        return None if row is None else (row[0], row[1])

    def unrevoked_tokens(self, user_id: int, name: str | None = None) -> list[tuple[int, str | None]]:
        """(id, name) of a user's tokens not yet revoked (only those called `name`, if given), oldest first."""
        stmt = (select(api_tokens.c.id, api_tokens.c.name)
                .where(api_tokens.c.user_id == user_id, api_tokens.c.revoked_at.is_(None)).order_by(api_tokens.c.id))
        if name is not None:
            stmt = stmt.where(api_tokens.c.name == name)
        return [(r.id, r.name) for r in self.session.execute(stmt)]

    def revoke_tokens(self, ids: list[int], now: datetime) -> None:
        # revoked_at IS NULL again: a token revoked meanwhile by someone else keeps its first revocation.
        self.session.execute(update(api_tokens).where(api_tokens.c.id.in_(ids),
                                                      api_tokens.c.revoked_at.is_(None)).values(revoked_at=now))

    def tokens(self, user_id: int | None = None) -> list[TokenRow]:
        """API tokens, oldest first: one user's (by id) or everyone's."""
        stmt = (select(api_tokens.c.id, api_tokens.c.created_at, api_tokens.c.revoked_at, api_tokens.c.name,
                       api_tokens.c.expires_at, api_tokens.c.last_used_at, users.c.username)
                .join(users, users.c.id == api_tokens.c.user_id).order_by(api_tokens.c.id))
        if user_id is not None:
            stmt = stmt.where(api_tokens.c.user_id == user_id)
        return [TokenRow(*r) for r in self.session.execute(stmt).all()]
