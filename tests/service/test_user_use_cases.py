"""Managing users and tokens (ipoa/service/users.py) and reading the security log
(ipoa/service/security.py) against the fakes: each change commits with its security event, or nothing
does."""
from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest

from ipoa.service import security, users

PASSWORD = "correct horse battery staple"


def _create(svc, username="pat.handler", role="handler", centre="CNH"):
    return users.create_user(svc, "cli:ops", username=username, role=role, centre=centre, password=PASSWORD)


def test_a_new_user_is_committed_with_its_security_event(svc, db):
    summary = _create(svc)
    assert (summary.username, summary.role, summary.centre, summary.active) == ("pat.handler", "handler", "CNH", True)
    assert [u.username for u in db.users] == ["pat.handler"] and db.users[0].check_password(PASSWORD)
    assert [(e.kind, e.actor, e.subject, e.detail) for e in db.events] == [
        (security.USER_CREATED, "cli:ops", "pat.handler", {"role": "handler", "centre": "CNH"})]


def test_a_refused_user_leaves_nothing_behind(svc, db):
    _create(svc)
    with pytest.raises(users.UserError, match="already exists") as refused:
        _create(svc)
    assert refused.value.field == "username"
    with pytest.raises(users.UserError) as no_centre:
        _create(svc, username="sam.supervisor", role="supervisor", centre=None)
    assert no_centre.value.field == "centre"
    assert [u.username for u in db.users] == ["pat.handler"] and len(db.events) == 1


def test_deactivating_ends_the_users_sessions_in_the_same_unit_of_work(svc, db):
    _create(svc)
    user = db.users[0]
    db.user_sessions += [SimpleNamespace(user_id=user.id, ended_at=None, end_reason=None),
                         SimpleNamespace(user_id=user.id + 1, ended_at=None, end_reason=None)]
    commits = svc.uow().commits
    assert users.set_active(svc, "cli:ops", "pat.handler", False) is True
    assert svc.uow().commits == commits + 1
    assert not user.active and user.last_seen_at is None
    assert [(s.ended_at, s.end_reason) for s in db.user_sessions] == [(svc.clock.now(), "deactivated"),
                                                                       (None, None)]
    assert db.events[-1].kind == security.USER_DEACTIVATED
    assert users.set_active(svc, "cli:ops", "pat.handler", False) is False  # already: no change, no event
    assert db.events[-1].kind == security.USER_DEACTIVATED and len(db.events) == 2


def test_a_token_is_issued_named_and_expiring_and_revoked_once(svc, db):
    _create(svc)
    issued = users.issue_token(svc, "cli:ops", "pat.handler", name="ambulance-integration", days=30)
    assert issued.expires_at == svc.clock.now() + timedelta(days=30)
    (token,) = db.tokens
    assert token.token_hash != issued.token and token.name == "ambulance-integration"
    assert db.events[-1].detail == {"token_id": issued.id, "name": "ambulance-integration",
                                    "expires_at": issued.expires_at.isoformat(), "days": 30}
    assert users.revoke_tokens(svc, "cli:ops", "pat.handler") == [issued.id]
    assert token.revoked_at == svc.clock.now()
    assert users.revoke_tokens(svc, "cli:ops", "pat.handler") == []
    assert [e.kind for e in db.events].count(security.TOKEN_REVOKED) == 1


def test_the_security_log_pages_back_newest_first(svc, db):
    for name in ("a.one", "b.two", "c.three"):
        _create(svc, username=name)
    first = security.events(svc, limit=2)
    assert [e.subject for e in first.events] == ["c.three", "b.two"] and first.older == 2
    rest = security.events(svc, before=first.older, limit=2)
    assert [e.subject for e in rest.events] == ["a.one"] and rest.older is None
    assert [e.subject for e in security.events(svc, user="b.two").events] == ["b.two"]
    with svc.uow() as uow:
        assert security.latest(uow, security.USER_CREATED).subject == "c.three"
