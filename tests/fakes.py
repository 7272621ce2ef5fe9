"""In-memory stand-ins for the unit of work and its stores, and a small services object, so that the use
cases in ipoa/service can be tested without a database or Redis (tests/service). They keep what the
service layer relies on: a use case's new records, audit events and outbox messages exist only once it
commits; a call is found by its reference, and its referrals through it; what a store is asked to find,
it finds the way its SQL does (the same filters and order). Locks are no-ops: one thread, one writer.

They do not model what only a database can show (row locks, the audit chain's hashes, constraint errors
but one: a reply's provider id, which replies.handle relies on); those stay with tests/integration and
tests/security. Changes made in place on a loaded call are not undone when a use case fails before it
commits (as in cosmicpython's fakes): the engine refuses before it changes anything, so no test needs it,
but for a route taken with its plain step first (step_first), whose refusal after the step is a database
test (tests/integration/test_route_in_one_action.py).
"""
from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from ipoa.adapters.clock import FixedClock
from ipoa.adapters.referral_store import ReplyTarget, RunningClock
from ipoa.adapters.repository import OpenCallRow
from ipoa.adapters.sms_reply_store import RECEIVED, ReplyRow
from ipoa.adapters.sms_store import InvitationRow
from ipoa.config import REPO_ROOT
from ipoa.domain.catalogue import Catalogue, load_catalogue
from ipoa.domain.engine import Engine, Result
from ipoa.domain.model import AccessEvent, AuditEvent, Call, OutboxMessage, SecurityEvent, Timer
from ipoa.domain.sms.escalation import EscalationSettings
from ipoa.domain.sms.links import LINK_CODE_LENGTH
from ipoa.domain.sms.templates import TEMPLATE_NAMES, SmsTemplates
from ipoa.paths import SMS_TEMPLATES
from ipoa.users import ApiToken, User
from tests.helpers import DEFAULT_NOW

WORKFLOWS = REPO_ROOT / "workflows"


class FakeCallRepository:
    def __init__(self, db: FakeDatabase):
        self.db = db

    def add(self, call: Call) -> None:
        self.db.pending_calls.append(call)

    def get(self, ref: str) -> Call | None:
        return self.db.calls.get(ref)

    def lock_and_find_open(self, nhs_number: str, final_states: set[str], limit: int = 10) -> list[OpenCallRow]:
        self.db.intake_locks.append(nhs_number)
        found = sorted((c for c in self.db.calls.values()
                        if c.nhs_number == nhs_number and c.state not in final_states),
                       key=lambda c: c.logged_at, reverse=True)[:limit]
        return [OpenCallRow(c.ref, c.centre, c.centre_path, c.state, c.logged_at, c.need, c.urgency)
                for c in found]

    def logged_in(self, centre: str, start: datetime, end: datetime, limit: int) -> list[Call]:
        return sorted((c for c in self.db.calls.values() if c.centre == centre and start <= c.logged_at < end),
                      key=lambda c: c.logged_at)[:limit]

    def history(self, ref: str) -> list[AuditEvent]:
        return sorted((e for e in self.db.audit if e.call_ref == ref), key=lambda e: e.seq or 0)


class FakeReferralStore:
    def __init__(self, db: FakeDatabase):
        self.db = db

    def call_ref(self, referral_id: str) -> str | None:
        return next((c.ref for c in self.db.calls.values() if c.referral(referral_id) is not None), None)

    def lock(self, referral_id: str) -> None:
        pass

    def last_escalated_at(self, call_ref: str, referral_id: str) -> datetime | None:
        return max((e.at for e in self.db.audit if e.call_ref == call_ref and e.entity == "referral"
                    and e.entity_id == referral_id and e.trigger == "escalate"), default=None)

    def running_clock(self, referral_id: str) -> RunningClock | None:
        running = sorted((t for t in self.db.timers if t.referral_id == referral_id and t.stopped_at is None),
                         key=lambda t: t.due_at)
        return RunningClock(running[0].kind, running[0].due_at) if running else None

    def reply_target(self, call_ref: str, service: str) -> ReplyTarget | None:
        call = self.db.calls.get(call_ref)
        mine = [r for r in (call.referrals if call else []) if r.service == service]
        # Open ones first (closed_at unset), then the latest sent.
        mine.sort(key=lambda r: (r.closed_at is not None, -r.sent_at.timestamp()))
        return ReplyTarget(mine[0].id, mine[0].state, mine[0].version, mine[0].workflow,
                           mine[0].workflow_version) if mine else None


class FakeSmsStore:
    """The texts sent (db.texts: SmsMessage), as far as a reply reads them back (service/replies.py), and the
    numbers' STOPs by adapters/sms_store.stopped's one rule: in sms_opt_outs (db.opted_out_numbers) or on the
    row of the professional whose mobile it is."""

    def __init__(self, db: FakeDatabase):
        self.db = db

    def texted(self, number: str) -> bool:
        """A user's mobile, or a number texted before (SmsStore.texted)."""
        return any(u.mobile == number for u in self.db.users) or any(t.to == number for t in self.db.texts)

    def opted_out(self, numbers: Iterable[str]) -> set[str]:
        wanted = set(numbers)
        return (wanted & set(self.db.opted_out_numbers)) | {
            p.mobile for p in self.db.professionals if p.mobile in wanted and p.opted_out_at is not None}

    def users_with_mobile(self, number: str) -> list[str]:
        return sorted(u.username for u in self.db.users if u.mobile == number)

    def set_number_opted_out(self, number: str, at: datetime | None) -> bool:
        changed = (number in self.db.opted_out_numbers) != (at is not None)
        if at is None:
            self.db.opted_out_numbers.pop(number, None)
        else:
            self.db.opted_out_numbers.setdefault(number, at)
        return changed

    def invitations(self, number: str, call_ref: str, templates: Iterable[str]) -> list[InvitationRow]:
        call = self.db.calls.get(call_ref)
        found = [(r, t) for t in self.db.texts if t.to == number and t.call_ref == call_ref
                 and t.template in set(templates) and call is not None
                 and (r := call.referral(t.referral_id)) is not None]
        # Open referrals first, then the latest sent; a referral's latest text first.
        found.sort(key=lambda rt: (rt[0].closed_at is not None, -rt[0].sent_at.timestamp(),
                                   -rt[1].created_at.timestamp()))
        return [InvitationRow(t.recipient_kind, t.status, r.id, r.state, r.version, r.workflow,
                              r.workflow_version, r.service) for r, t in found]


class FakeBreakGlassStore:
    def __init__(self, db: FakeDatabase):
        self.db = db

    def active_grant(self, username: str, ref: str, now: datetime) -> int | None:
        mine = sorted((g for g in self.db.grants if g.username == username and g.call_ref == ref
                       and g.expires_at > now), key=lambda g: g.expires_at, reverse=True)
        return mine[0].id if mine else None

    def add(self, **values: Any) -> int:
        grant = SimpleNamespace(id=len(self.db.grants) + 1, reviewed_at=None, reviewed_by=None,
                                review_comment=None, **values)
        self.db.pending_grants.append(grant)
        return grant.id

    def for_call(self, ref: str) -> list[Any]:
        return sorted((g for g in self.db.grants if g.call_ref == ref), key=lambda g: g.granted_at)


class FakeProfessionalStore:
    def __init__(self, db: FakeDatabase):
        self.db = db

    def by_mobile(self, e164: str) -> Any:
        return next((p for p in self.db.professionals if p.mobile == e164), None)

    def mobile_registered(self, e164: str) -> bool:
        return self.by_mobile(e164) is not None

    def add(self, *, name: str, mobile: str, service: str, created_at: datetime) -> int:
        new_id = len(self.db.professionals) + 1
        self.db.professionals.append(SimpleNamespace(id=new_id, name=name, mobile=mobile, service=service,
                                                     opted_out_at=None, user_id=None, created_at=created_at,
                                                     active=True, unavailable_until=None))
        return new_id

    def _row(self, professional_id: int) -> Any:
        return next((p for p in self.db.professionals if p.id == professional_id), None)

    def get(self, professional_id: int) -> Any:
        """A copy, as the store's row is: what it was when read, whatever changes after."""
        row = self._row(professional_id)
        return SimpleNamespace(**vars(row)) if row is not None else None

    def mobile_taken(self, e164: str, except_id: int | None = None) -> bool:
        return any(p.mobile == e164 and p.id != except_id for p in self.db.professionals)

    def linked_to(self, user_id: int, except_id: int | None = None) -> int | None:
        return next((p.id for p in self.db.professionals if p.user_id == user_id and p.id != except_id), None)

    def update(self, professional_id: int, **values: Any) -> None:
        vars(self._row(professional_id)).update(values)

    def set_opted_out(self, professional_id: int, at: datetime | None) -> None:
        next(p for p in self.db.professionals if p.id == professional_id).opted_out_at = at


class FakeSmsReplyStore:
    """sms_inbound by provider sid: each row claimed (outcome RECEIVED) before the reply acts, then completed."""

    def __init__(self, db: FakeDatabase):
        self.db = db

    def answer_to(self, provider_sid: str) -> str | None:
        row = self.db.sms_replies.get(provider_sid)
        return row["reply"] if row is not None and row["outcome"] != RECEIVED else None

    def find(self, provider_sid: str) -> ReplyRow | None:
        row = self.db.sms_replies.get(provider_sid)
        return None if row is None else ReplyRow(row["id"], row["outcome"], row["reply"], row["received_at"])

    def claim(self, provider_sid: str, received_at: datetime) -> int | None:
        if provider_sid in self.db.sms_replies:  # its unique key
            return None
        new_id = len(self.db.sms_replies) + 1
        self.db.sms_replies[provider_sid] = {"id": new_id, "outcome": RECEIVED, "reply": "",
                                             "received_at": received_at}
        return new_id

    def remove_unanswered(self, reply_id: int) -> bool:
        sid = next((s for s, r in self.db.sms_replies.items() if r["id"] == reply_id and r["outcome"] == RECEIVED),
                   None)
        return sid is not None and self.db.sms_replies.pop(sid) is not None

    def complete(self, reply_id: int, **values: Any) -> bool:
        row = next((r for r in self.db.sms_replies.values() if r["id"] == reply_id and r["outcome"] == RECEIVED),
                   None)
        if row is None:
            return False
        row.update(values)
        return True


class FakeUserStore:
    """Users by username (unique, as the table's key), and their API tokens."""

    def __init__(self, db: FakeDatabase):
        self.db = db

    def find(self, username: str) -> User | None:
        return next((u for u in [*self.db.users, *self.db.pending_users] if u.username == username), None)

    def get(self, user_id: int) -> User | None:
        return next((u for u in self.db.users if u.id == user_id), None)

    def add(self, user: User) -> None:
        self.db.pending_users.append(user)

    def add_token(self, token: ApiToken) -> int:
        token.id = len(self.db.tokens) + 1
        self.db.tokens.append(token)
        return token.id

    def unrevoked_tokens(self, user_id: int, name: str | None = None) -> list[tuple[int, str | None]]:
        return [(t.id, t.name) for t in sorted(self.db.tokens, key=lambda t: t.id)
                if t.user_id == user_id and t.revoked_at is None and (name is None or t.name == name)]

    def revoke_tokens(self, ids: list[int], now: datetime) -> None:
        for t in self.db.tokens:
            if t.id in ids and t.revoked_at is None:
                t.revoked_at = now


class FakeSessionStore:
    """Signed-in sessions: only what ending a user's sessions needs."""

    def __init__(self, db: FakeDatabase):
        self.db = db

    def end_for_user(self, user_id: int, now: datetime, reason: str | None) -> int:
        open_ = [r for r in self.db.user_sessions if r.user_id == user_id and r.ended_at is None]
        for r in open_:
            r.ended_at, r.end_reason = now, reason
        return len(open_)


class FakeSecurityEventStore:
    def __init__(self, db: FakeDatabase):
        self.db = db

    def _events(self) -> list[SecurityEvent]:
        return [e for e in self.db.events if isinstance(e, SecurityEvent)]

    def newest_first(self, *, kind: str | None, user: str | None, before: int | None,
                     limit: int) -> list[SecurityEvent]:
        found = [e for e in self._events() if (not kind or e.kind == kind)
                 and (not user or user in (e.actor, e.subject)) and (before is None or e.seq < before)]
        return sorted(found, key=lambda e: e.seq, reverse=True)[:limit]

    def latest(self, kind: str) -> SecurityEvent | None:
        return next(iter(self.newest_first(kind=kind, user=None, before=None, limit=1)), None)


class FakeDatabase:
    """What the fake unit of work commits to: plain lists and dicts."""

    def __init__(self) -> None:
        self.calls: dict[str, Call] = {}
        self.audit: list[AuditEvent] = []
        self.outbox: list[OutboxMessage] = []
        self.timers: list[Timer] = []
        self.events: list[AccessEvent | SecurityEvent] = []  # the access and security logs
        self.grants: list[Any] = []
        self.professionals: list[Any] = []
        self.sms_replies: dict[str, dict[str, Any]] = {}
        self.opted_out_numbers: dict[str, datetime] = {}
        self.texts: list[Any] = []  # SmsMessage
        self.intake_locks: list[str] = []
        self.published: list[str] = []  # outbox message ids handed to the publisher after commit
        self.pending_calls: list[Call] = []
        self.users: list[User] = []
        self.pending_users: list[User] = []
        self.tokens: list[ApiToken] = []  # added at once: the real store flushes a token for its id
        self.user_sessions: list[Any] = []  # SimpleNamespace(user_id, ended_at, end_reason)
        self.pending_grants: list[Any] = []

    def access_events(self) -> list[AccessEvent]:
        return [e for e in self.events if isinstance(e, AccessEvent)]


class FakeUnitOfWork:
    """The unit of work's interface (ipoa/adapters/unit_of_work.py) over a FakeDatabase."""

    def __init__(self, db: FakeDatabase | None = None):
        self.db = db or FakeDatabase()
        self.calls = FakeCallRepository(self.db)
        self.referrals = FakeReferralStore(self.db)
        self.break_glass = FakeBreakGlassStore(self.db)
        self.professionals = FakeProfessionalStore(self.db)
        self.sms_replies = FakeSmsReplyStore(self.db)
        self.sms = FakeSmsStore(self.db)
        self.users = FakeUserStore(self.db)
        self.sessions = FakeSessionStore(self.db)
        self.security_events = FakeSecurityEventStore(self.db)
        self.commits = 0
        self._ids = itertools.count(1)
        self._clear()

    def __enter__(self) -> FakeUnitOfWork:
        self._clear()
        return self

    def __exit__(self, *exc: object) -> None:
        self._clear()  # what was not committed is gone, as on rollback

    def _clear(self) -> None:
        self.db.pending_calls, self.db.pending_grants = [], []
        self.db.pending_users = []
        self._audit: list[AuditEvent] = []
        self._outbox: list[OutboxMessage] = []
        self._timers: list[Timer] = []
        self._stopped: list[tuple[str, str | None, str, datetime]] = []
        self._events: list[AccessEvent | SecurityEvent] = []

    def engine(self, services: FakeServices, needs: tuple[str, int] | None = None) -> Engine:
        return services.engine(needs=needs)

    def add_new_call(self, call: Call, result: Result) -> None:
        self.calls.add(call)
        self.record(result)

    def record(self, result: Result) -> None:
        self._stopped += result.stopped_clocks
        self._timers += result.timers
        self._audit += result.audit
        self._outbox += result.outbox

    def add_event(self, event: AccessEvent | SecurityEvent | AuditEvent) -> None:
        if isinstance(event, AuditEvent):
            self._audit.append(event)
        else:
            self._events.append(event)

    def commit(self) -> None:
        db = self.db
        for call in db.pending_calls:
            call.id = next(self._ids)
            db.calls[call.ref] = call
        db.grants += db.pending_grants
        for user in db.pending_users:
            user.id = len(db.users) + 1
            db.users.append(user)
        # As UnitOfWork.record: a stopped clock closes the running timers of that record and kind.
        for call_ref, referral_id, kind, at in self._stopped:
            for t in db.timers:
                if (t.call_ref, t.referral_id, t.kind) == (call_ref, referral_id, kind) and t.stopped_at is None:
                    t.stopped_at, t.fired_at, t.outcome = at, t.fired_at or at, t.outcome or "stopped"
        db.timers += self._timers
        for event in self._audit:
            event.seq = len(db.audit) + 1
            db.audit.append(event)
        db.outbox += self._outbox
        for event in self._events:  # numbered in its own chain, as audit_store.append does
            event.seq = sum(type(e) is type(event) for e in db.events) + 1
            db.events.append(event)
        db.published += [m.id for m in self._outbox]
        self.commits += 1
        self._clear()


class FakeServices:
    """What the use cases ask of bootstrap.Services, without a database or Redis: the catalogue loaded
    from workflows/ by the domain loader, a fixed clock, the engine over the catalogue's versions (what
    `init` deploys), the SMS templates, and one FakeUnitOfWork every uow() returns."""

    def __init__(self, catalogue: Catalogue | None = None, clock: FixedClock | None = None,
                 public_base_url: str = "http://127.0.0.1:5000"):
        self.catalogue = catalogue or load_catalogue(WORKFLOWS)
        self.clock = clock or FixedClock(DEFAULT_NOW)
        self.public_base_url = public_base_url
        self.sms_templates = SmsTemplates.load(SMS_TEMPLATES, public_base_url, required=TEMPLATE_NAMES,
                                               link_code_length=LINK_CODE_LENGTH)
        self.unit_of_work = FakeUnitOfWork()
        self.escalation_settings = EscalationSettings()  # the defaults, as Services has without settings
        self._engine = Engine(self.catalogue.workflows, self.catalogue.directory, self.catalogue.sla)

    @property
    def db(self) -> FakeDatabase:
        return self.unit_of_work.db

    @property
    def directory(self) -> Any:
        return self.catalogue.directory

    @property
    def routing(self) -> Any:
        return self.catalogue.routing

    def uow(self) -> FakeUnitOfWork:
        return self.unit_of_work

    def engine(self, needs: tuple[str, int] | None = None, session: object = None) -> Engine:
        if needs is not None and not self._engine.has(*needs):
            raise LookupError(f"{needs[0]} v{needs[1]} is not in workflows/")
        return self._engine
