"""Which texts invite a reply about their call, who may act on one, and how that reply is named
(ipoa/domain/sms/invitations.py)."""
from __future__ import annotations

import pytest

from ipoa.domain.sms.invitations import acts_by_invitation, invited_actor, invited_actor_words, invites_reply
from ipoa.domain.sms.templates import SmsTemplates
from ipoa.paths import SMS_TEMPLATES
from ipoa.web.people import actor_label


def test_of_the_shipped_templates_only_the_referral_text_invites_a_reply():
    # The escalations ask the duty lead to follow the link; reply_unknown names no call.
    assert SmsTemplates.load(SMS_TEMPLATES).reply_inviting == {"referral_sent"}


@pytest.mark.parametrize(("words", "fields", "invites"), [
    ("New referral. Reply ACCEPT  or DECLINE  + reason", {"ref", "link"}, True),
    ("Referral . reply DONE  when the visit is over", {"ref"}, True),
    ("Reply ACCEPT  or DECLINE  + reason", {"service"}, False),  # no ref: the reply cannot name the call
    ("ESCALATION:  referral  overdue, due . Follow up: ", {"ref", "link"}, False),
    ("Reply when the visit is done", {"ref"}, False),  # the commands are asked for in capitals
    ("Accepted. Reply STATUS  for news", {"ref"}, False),  # STATUS changes nothing
    ("ACCEPT  was received. Reply to your duty lead", {"ref"}, False),  # not a reply with a command
])
def test_a_template_invites_a_reply_when_its_words_ask_for_a_command_and_it_carries_the_ref(words, fields, invites):
    assert invites_reply(words, fields) is invites


def test_only_a_templates_own_words_count_not_its_comments(tmp_path):
    (tmp_path / "chaser.txt").write_text("{# Staff may Reply ACCEPT by phone. #}Referral {{ ref }}: see {{ link }}")
    (tmp_path / "asker.txt").write_text("Referral {{ ref }}: Reply\nACCEPT {{ ref }}")
    assert SmsTemplates.load(tmp_path).reply_inviting == {"asker"}


@pytest.mark.parametrize(("kind", "status", "acts"), [
    ("duty_lead", "queued", True),
    ("duty_lead", "submitting", True),  # handed to Twilio, its answer not yet back
    ("duty_lead", "delivered", True),
    ("supervisor", "sent", False),  # a referring supervisor relays the referral; never acts for the service
    ("duty_lead", "pending", False),  # not yet handed to Twilio: it has reached nobody
    ("duty_lead", "failed", False),
    ("duty_lead", "undelivered", False),
    ("on_duty", "delivered", False),  # a professional on duty acts by their registration, not by the text
])
def test_who_a_reply_inviting_text_lets_act(kind, status, acts):
    assert acts_by_invitation(kind, status) is acts


def test_the_actor_of_an_invited_reply_in_words():
    assert invited_actor("duty_lead", "CRT") == "sms-duty-lead:CRT"
    assert invited_actor_words("sms-duty-lead:CRT") == "SMS reply from the CRT duty lead"
    assert invited_actor_words(invited_actor("supervisor", "DN")) == "SMS reply from the supervisor, for DN"
    assert invited_actor_words("sms:Nia Nurse") is None and invited_actor_words("handler") is None
    # As every page names it (the `who` filter).
    assert actor_label("sms-duty-lead:CRT", {}, "CRT") == "SMS reply from the CRT duty lead"
    assert actor_label("sms:Nia Nurse", {}, "DN") == "SMS reply from Nia Nurse (DN)"
