"""How pages name whoever did something (ipoa/web/people.actor_label)."""
from __future__ import annotations

from ipoa.service.users import Person
from ipoa.web.people import actor_label

PEOPLE = {"hana": Person("hana", "Hana Handler", "handler", "CNH"),
          "nia.nurse": Person("nia.nurse", "Nia Nurse", "professional", None)}


def test_a_person_by_name_role_and_centre():
    assert actor_label("hana", PEOPLE) == "Hana Handler (handler, CNH)"
    assert actor_label("nia.nurse", PEOPLE) == "Nia Nurse (professional)"


def test_ipoa_itself_in_words():
    assert actor_label("system:sla", PEOPLE) == "SLA clock"
    assert actor_label("retention", PEOPLE) == "IPOA (record retention)"
    assert actor_label("system", PEOPLE) == "IPOA"
    assert actor_label("system:relay", PEOPLE) == "IPOA"
    assert actor_label("cli:root", PEOPLE) == "IPOA (command line)"


def test_an_sms_reply_names_the_professional_and_their_service_where_known():
    assert actor_label("sms:Nia Nurse", PEOPLE, "DN") == "SMS reply from Nia Nurse (DN)"
    assert actor_label("sms:Nia Nurse", PEOPLE) == "SMS reply from Nia Nurse"


def test_a_name_that_is_no_user_now_is_shown_as_recorded():
    assert actor_label("gone.user", PEOPLE) == "gone.user"
    assert actor_label(None, PEOPLE) == "" and actor_label("", PEOPLE) == ""
