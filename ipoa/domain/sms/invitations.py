"""Which texts invite their recipient to reply ACCEPT / DECLINE / DONE about a call's referral, and how a reply
acting on such an invitation is named in the audit trail.

A registered professional acts on the referrals to their own service (service/replies.py). Anyone else acts
only because ipoa texted them and the text asked them to: the duty lead texted a referral when nobody on duty
can be (docs/domain.md, "SMS to professionals"); never the referring centre's supervisor, who relays it and
does not act for the service. The rule for "the text asked them to" lives here and nowhere else:
a template invites a reply when its own words (not its fields, not its comments) ask for a reply with one of
the commands a reply acts on (domain/meaning.SMS_COMMANDS) and it carries the call's ref, so the reply can
name the call. The loaded templates say which do (SmsTemplates.reply_inviting): today `referral_sent`; the
escalations ask the duty lead to follow the link, not to reply. Changing a template's words is the one way
to change who may reply."""
from __future__ import annotations

import re
from collections.abc import Iterable

from ..meaning import SMS_COMMANDS

__all__ = ["acts_by_invitation", "invited_actor", "invited_actor_words", "invites_reply"]

_INVITATION = re.compile(r"(?i:\breply\b)[^.]*?\b(?:" + "|".join(SMS_COMMANDS) + r")\b")

# Texts to a professional on duty invited them as a registered member of the service: they act by that
# registration (a professional since removed from the service no longer acts on an old text).
_BY_REGISTRATION = frozenset({"on_duty"})
# A referring centre's supervisor texted a referral when the service had nobody to text relays it: they are
# to find the service by phone, and never act for it (docs/domain.md, "Rotas"; the receiving service's
# triggers are refused to supervisors on every path, service/calls.fire_referral_trigger).
_RELAYING = frozenset({"supervisor"})
# A text not handed to the gateway, or known never to have arrived, invited nobody (domain/sms/delivery.py).
_NOT_RECEIVED = frozenset({"pending", "undelivered", "failed"})

# "sms-duty-lead:CRT": an SMS reply from whoever a text invited as its recipient kind, for that service.
_INVITED_ACTOR_PREFIX = "sms-"
_INVITED_ACTOR = re.compile(r"sms-([a-z]+(?:-[a-z]+)*):([A-Za-z0-9_-]+)")


def invites_reply(words: str, fields: Iterable[str]) -> bool:
    """Whether a template whose own words are `words`, and which is given `fields`, invites a reply about
    its call: the words ask for a reply with ACCEPT, DECLINE or DONE (as written in capitals), and the text
    carries the ref."""
    return "ref" in set(fields) and _INVITATION.search(words) is not None


def acts_by_invitation(recipient_kind: str, status: str) -> bool:
    """Whether a text of a reply-inviting template lets its recipient act by replying: it went to them as
    other than a registered professional of the service, not as a supervisor relaying it, and it was sent
    (not pending, not failed)."""
    return (recipient_kind not in _BY_REGISTRATION and recipient_kind not in _RELAYING
            and status not in _NOT_RECEIVED)


def invited_actor(recipient_kind: str, service: str) -> str:
    """The audit actor of a reply acting on an invitation: `sms-duty-lead:CRT`."""
    return f"{_INVITED_ACTOR_PREFIX}{recipient_kind.replace('_', '-')}:{service}"


def invited_actor_words(actor: str) -> str | None:
    """`sms-duty-lead:CRT` in words ("SMS reply from the CRT duty lead"; "SMS reply from the supervisor, for
    CRT" in audit events recorded before a supervisor relaying a referral could no longer act for the
    service); None for any other actor."""
    match = _INVITED_ACTOR.fullmatch(actor)
    if match is None:
        return None
    kind, service = match[1].replace("-", " "), match[2]
    if kind == "duty lead":
        return f"SMS reply from the {service} duty lead"
    return f"SMS reply from the {kind}, for {service}"
