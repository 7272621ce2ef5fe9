"""Which referral triggers a user may fire: the access policy and the trigger's roles, one rule for the
buttons a page shows and for what its POST accepts (domain/access.may_fire_referral_trigger)."""
from __future__ import annotations

import pytest

from ipoa.domain.access import RecordFacts, Subject, may_fire_referral_trigger, referral_trigger_action

SERVICE_ROLES = frozenset({"service", "accept"})  # accept, say
REFERRER_ROLES = frozenset({"withdraw"})
RECORD = RecordFacts(centre="CNH", centres=("CNH",), services=("DN",))

HANDLER = Subject("hana", "handler", centre="CNH")
SUPERVISOR = Subject("sam", "supervisor", centre="CNH")
OTHER_HANDLER = Subject("asc", "handler", centre="ASC")
NURSE = Subject("nia", "professional", service="DN")
OTHER_NURSE = Subject("crt", "professional", service="CRT")


def test_a_trigger_with_the_service_role_is_the_receiving_services():
    assert referral_trigger_action(SERVICE_ROLES) == "act_referral"
    assert referral_trigger_action(REFERRER_ROLES) == "act"
    assert referral_trigger_action(frozenset()) == "act"


@pytest.mark.parametrize(("who", "service_trigger", "referrer_trigger"), [
    (HANDLER, False, True),         # the referrer withdraws; never accepts for the service
    (SUPERVISOR, False, True),
    (OTHER_HANDLER, False, False),  # not their centre's call
    (NURSE, True, False),           # the receiving service's professional: its triggers only
    (OTHER_NURSE, False, False),    # another service's professional
])
def test_who_may_fire_what(who, service_trigger, referrer_trigger):
    assert may_fire_referral_trigger(who, RECORD, "DN", SERVICE_ROLES) is service_trigger
    assert may_fire_referral_trigger(who, RECORD, "DN", REFERRER_ROLES) is referrer_trigger


def test_a_professional_acts_only_on_the_referral_to_their_own_service():
    two = RecordFacts(centre="CNH", centres=("CNH",), services=("DN", "CRT"))
    assert may_fire_referral_trigger(NURSE, two, "DN", SERVICE_ROLES)
    assert not may_fire_referral_trigger(NURSE, two, "CRT", SERVICE_ROLES)


def test_break_glass_lets_a_handler_withdraw_but_not_accept():
    record = RecordFacts(centre="CNH", centres=("CNH",), services=("DN",), break_glass=True)
    assert may_fire_referral_trigger(OTHER_HANDLER, record, "DN", REFERRER_ROLES)
    assert not may_fire_referral_trigger(OTHER_HANDLER, record, "DN", SERVICE_ROLES)
