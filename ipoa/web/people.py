"""How pages name whoever did something: a person by their name, role and centre ("Hana Handler (handler,
CNH)"), and ipoa's own actors in words ("SLA clock", "SMS reply from Nia Nurse (DN)", "IPOA"), never a
bare username or an internal name such as `system:sla`.

One helper for every page: the Jinja filter `who` (registered by web.views). A view names the usernames it
will show with `preload` (one query a page); a name it did not preload is still looked up, on its own."""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from flask import g

from ..domain.sms.invitations import invited_actor_words
from ..entry.request_context import services
from ..service import users as user_service
from ..service.retention import AUDIT_ACTOR as RETENTION_ACTOR
from ..service.shift_handover import ACTOR as HANDOVER_ACTOR
from ..service.timers import SYSTEM_ACTOR as SLA_ACTOR

# Actors that are ipoa itself, as the audit trail names them (domain/model.AuditEvent.actor).
SYSTEM_ACTORS: dict[str, str] = {
    SLA_ACTOR: "SLA clock",
    RETENTION_ACTOR: "IPOA (record retention)",
    HANDOVER_ACTOR: "IPOA (shift hand-over)",
    "system": "IPOA",
    "sms": "SMS reply",
    "scheduler": "IPOA (nightly check)",  # the timer scheduler's nightly audit verification (service/audit.py)
}
# Prefixed actors: "sms:<professional's name>" and "sms-duty-lead:<service>" (service/replies.py), "cli:<os
# user>", "system:<part>".
SMS_PREFIX, CLI_PREFIX, SYSTEM_PREFIX = "sms:", "cli:", "system:"

_CACHE = "ipoa_people"


def actor_label(username: str | None, people: Mapping[str, user_service.Person | None],
                service: str | None = None) -> str:
    """username in words. people: the users looked up (username -> Person); service: the receiving
    service's code, for an SMS reply about a referral."""
    if not username:
        return ""
    person = people.get(username)
    if person is not None:
        where = ", ".join(part for part in (person.role, person.centre) if part)
        return f"{person.display_name} ({where})" if where else person.display_name
    if username in SYSTEM_ACTORS:
        return SYSTEM_ACTORS[username]
    invited = invited_actor_words(username)
    if invited is not None:
        return invited
    if username.startswith(SMS_PREFIX):
        name = username.removeprefix(SMS_PREFIX).strip() or "a professional"
        return f"SMS reply from {name}" + (f" ({service})" if service else "")
    if username.startswith(CLI_PREFIX):
        return "IPOA (command line)"
    if username.startswith(SYSTEM_PREFIX):
        return "IPOA"
    return username  # no such user now: the name the record holds


def _is_username(name: str) -> bool:
    return (bool(name) and name not in SYSTEM_ACTORS and invited_actor_words(name) is None
            and not name.startswith((SMS_PREFIX, CLI_PREFIX, SYSTEM_PREFIX)))


def _cache() -> dict[str, user_service.Person | None]:
    cache = g.get(_CACHE)
    if cache is None:
        cache = g.ipoa_people = {}
    return cache


def preload(usernames: Iterable[str | None]) -> None:
    """Look up, in one query, the users a page is about to name."""
    cache = _cache()
    wanted = {n for n in usernames if n and _is_username(n) and n not in cache}
    if not wanted:
        return
    found = user_service.people(services(), wanted)
    cache.update({n: found.get(n) for n in wanted})


def who(username: str | None, service: str | None = None) -> str:
    """The `who` filter: {{ e.actor|who }}, {{ e.actor|who(referral_service) }}."""
    if username and _is_username(username) and username not in _cache():
        preload([username])  # a name the view did not preload: one more query
    return actor_label(username, _cache(), service)


def is_user(name: str | None) -> bool:
    """Whether name is a user's username (looked up as `who` does): the security log shows it beside the
    person's name, as it is what an administrator types to filter the log."""
    if not name or not _is_username(name):
        return False
    if name not in _cache():
        preload([name])
    return _cache().get(name) is not None
