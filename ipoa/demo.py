"""Demo data for `make run`: a user for every role and a handful of calls at different stages.
The people are invented; NHS numbers are in the 999 range, which is never issued to patients."""
from __future__ import annotations

import nhs_number
from sqlalchemy import func, select

from .adapters.orm import calls, professionals
from .domain.calendar import LONDON
from .domain.validation import normalise_uk_mobile
from .service import calls as call_service
from .service.professionals import add_professional, link_user
from .users import User

DEMO_PASSWORD = "ipoa-demo-2026"
# On duty in the demo, on Ofcom's never-connected drama numbers: referrals to these services text them.
DEMO_PROFESSIONALS = [
    ("Nia Nurse (DN)", "DN", "07700 900201"), ("Carl Paramedic (CRT)", "CRT", "07700 900202"),
    ("Oona Visitor (OOHV)", "OOHV", "07700 900203"), ("Maya Crisis (MHCR)", "MHCR", "07700 900204"),
    ("Ravi Reablement (REA)", "REA", "07700 900205"), ("Sue Social Worker (SCA)", "SCA", "07700 900206"),
]
# Who works the nights (20:00-08:00) of the demo's rotas; the professionals above work the days (08:00-20:00)
# and lead them, so by day the demo texts the same people as before rotas.
DEMO_NIGHT_PROFESSIONALS = [
    ("Nell Nights (DN)", "DN", "07700 900211"), ("Noor Nights (CRT)", "CRT", "07700 900212"),
    ("Nico Nights (OOHV)", "OOHV", "07700 900213"), ("Nat Nights (MHCR)", "MHCR", "07700 900214"),
    ("Ned Nights (REA)", "REA", "07700 900215"), ("Nora Nights (SCA)", "SCA", "07700 900216"),
]
DEMO_USERS = [
    ("handler", "Hana Handler", "handler", "CNH"),
    ("handler.asc", "Asha Handler (ASC)", "handler", "ASC"),
    ("supervisor", "Sam Supervisor", "supervisor", "CNH"),
    ("professional", "Nia Nurse (DN)", "professional", None),
    ("admin", "Ada Admin", "admin", None),
]
# A handset that was off: the demo's one undelivered text went to it, a district nurse since off the rota
# (the supervisor's exceptions panel names her, her service and the number to ring).
DEMO_UNREACHABLE = "07700 900299"
DEMO_UNREACHABLE_NAME = "Dee Nurse"
# The supervisor's mobile, also an Ofcom drama number, receives the CNH escalations when a clock runs
# out (with the console SMS backend they show on /messages).
DEMO_MOBILES = {"supervisor": "07700 900301"}
# Where the demo's handlers answer phone calls (users.answer_on, docs/telephony.md): a Twilio Client identity
# each; with the console Voice gateway the Answer's <Dial> is only recorded.
DEMO_ANSWER_ON = {"handler": "client:handler_cnh", "handler.asc": "client:handler_asc",
                  "supervisor": "client:supervisor_cnh"}


def demo_nhs_numbers(count: int) -> list[str]:
    """Valid (Modulus 11) numbers from the 999 test range."""
    out: list[str] = []
    n = 9990000000
    while len(out) < count:
        n += 1
        if nhs_number.is_valid(str(n)):
            out.append(str(n))
    return out


# In a demo step's data: the service the routing table recommends for the call (it depends on the time).
RECOMMENDED = "<recommended>"


def _calls() -> list[tuple[dict, list[tuple[str, dict]]]]:
    nhs = demo_nhs_numbers(7)
    return [
        ({"centre": "CNH", "caller": {"type": "carer", "name": "Jo Carer", "phone": "07911 123456"},
          "subject": {"nhs_number": nhs[0], "given_name": "Edith", "family_name": "Demo",
                      "date_of_birth": "1938-04-02", "postcode": "LE11 3AB",
                      "address_line_1": "12 Demo Road", "town": "Loughborough"},
          "need": "urgent_community_health", "urgency": "urgent",
          "summary": "Demo: found on the floor after a fall, no injury, cannot get up unaided."}, []),
        ({"centre": "CNH", "caller": {"type": "professional", "name": "Dr Demo", "phone": "0116 496 0000"},
          "subject": {"nhs_number": nhs[1], "given_name": "Arthur", "family_name": "Sample",
                      "date_of_birth": "1945-11-20", "postcode": "LE4 6AB"},
          "need": "long_term_condition", "urgency": "routine",
          "summary": "Demo: GP asks for case management, frailty and several conditions."},
         [("start_triage", {})]),
        ({"centre": "CNH", "caller": {"type": "patient", "name": None, "phone": "07911 123457"},
          "subject": {"nhs_number": nhs[2], "given_name": "Mary", "family_name": "Example",
                      "date_of_birth": "1950-01-15", "postcode": "LE15 6AA",
                      "address_line_1": "3 Example Close", "town": "Oakham"},
          "need": "community_nursing", "urgency": "same_day",
          "summary": "Demo: catheter blocked, needs a nurse today."},
         [("start_triage", {}), ("refer", {"data": {"service": "DN"}})]),
        ({"centre": "ASC", "caller": {"type": "public", "name": "Neighbour", "phone": "07911 111222"},
          "subject": {"nhs_number": nhs[3], "given_name": "Harold", "family_name": "Fictional",
                      "date_of_birth": "1940-07-07", "postcode": "LE2 1AA"},
          "need": "social_care_assessment", "urgency": "routine",
          "summary": "Demo: struggling with personal care since spouse went into hospital."}, []),
        ({"centre": "CNH", "caller": {"type": "care_home", "name": "Demo Care Home", "phone": "0116 496 0001"},
          "subject": {"nhs_number": nhs[4], "given_name": "Iris", "family_name": "Placeholder",
                      "date_of_birth": "1932-03-03", "postcode": "LE9 1AA"},
          "need": "information_advice", "urgency": "routine",
          "summary": "Demo: asks how to arrange a falls prevention class."}, []),
        # Consent refused: district nursing is another organisation's (the community trust), so the call
        # page says so and accepting the recommended referral needs a lawful basis and a reason.
        ({"centre": "CNH", "caller": {"type": "patient", "name": None, "phone": "07911 123458"},
          "subject": {"nhs_number": nhs[5], "given_name": "George", "family_name": "Specimen",
                      "date_of_birth": "1947-09-09", "postcode": "LE13 0AA",
                      "address_line_1": "Flat 2, Sample House", "town": "Melton Mowbray"},
          "need": "community_nursing", "urgency": "same_day", "consent": "refused",
          "summary": "Demo: leg ulcer dressing overdue; does not want details shared outside the hub."},
         [("start_triage", {})]),
        # Referred across organisations without consent, on a recorded lawful basis.
        ({"centre": "CNH", "caller": {"type": "public", "name": "Neighbour", "phone": "07911 111223"},
          "subject": {"nhs_number": nhs[6], "given_name": "Violet", "family_name": "Invented",
                      "date_of_birth": "1936-12-12", "postcode": "LE2 7AA"},
          "need": "safeguarding_concern", "urgency": "urgent", "consent": "refused",
          "summary": "Demo: neighbour reports she seems frightened of a relative who takes her pension."},
         [("start_triage", {}),
          ("refer", {"data": {"service": RECOMMENDED, "consent_override": {
              "basis": "safeguarding",
              "reason": "Possible financial abuse by a relative; she refused consent, but the council has a "
                        "section 42 enquiry duty."}}})]),
    ]


def seed(svc) -> list[str]:
    lines: list[str] = []
    with svc.uow() as uow:
        existing = {u.username: u for u in uow.session.scalars(select(User))}
        for username, name, role, centre in DEMO_USERS:
            mobile = DEMO_MOBILES.get(username)
            e164 = normalise_uk_mobile(mobile) if mobile else None
            answer_on = DEMO_ANSWER_ON.get(username)
            if username in existing:
                user = existing[username]
                if e164 and not user.mobile:  # seeded before demo users had mobiles
                    user.mobile = e164
                    lines.append(f"demo user {username} now has mobile {e164}")
                if answer_on and not user.answer_on:  # seeded before handlers answered phone calls
                    user.answer_on = answer_on
                    lines.append(f"demo user {username} now answers phone calls on {answer_on}")
                continue
            user = User(username=username, display_name=name, role=role, centre=centre,
                        password=DEMO_PASSWORD, created_at=svc.clock.now(), mobile=e164)
            user.answer_on = answer_on
            uow.users.add(user)
            lines.append(f"demo user {username} ({role}{', ' + centre if centre else ''}"
                         f"{', mobile ' + e164 if e164 else ''})")
        uow.commit()
        known = set(uow.session.scalars(select(professionals.c.mobile)))
    for name, service, mobile in DEMO_PROFESSIONALS + DEMO_NIGHT_PROFESSIONALS:
        if normalise_uk_mobile(mobile) not in known:
            add_professional(svc, name=name, service=service, mobile=mobile)
            lines.append(f"demo professional {name}")
    lines += _rotas(svc)
    with svc.uow() as uow:
        demo_professional = uow.users.find("professional")
        professional_user = demo_professional.id if demo_professional is not None else None
    if professional_user is not None:  # the demo professional signs in as the DN nurse
        link_user(svc, DEMO_PROFESSIONALS[0][2], professional_user)
    with svc.uow() as uow:
        have_calls = uow.session.scalar(select(func.count()).select_from(calls).where(
            calls.c.summary.like("Demo:%")))
    if have_calls:
        lines.append(f"demo calls already present ({have_calls})")
        return lines
    alerted = False
    first_cnh = None
    for payload, steps in _calls():
        payload = {"consent": "given", **payload}
        centre = payload["centre"]
        actor = call_service.Actor(username="handler" if centre == "CNH" else "handler.asc",
                                   role="handler", centre=centre)
        call = call_service.log_call(svc, actor, payload, allow_duplicate=True)
        for trigger, extra in steps:
            call = call_service.fire_call_trigger(
                svc, actor, call.ref, {"trigger": trigger, "expected_version": call.version,
                                       **_resolved(extra, call)})
        lines.append(f"demo call {call.ref} ({centre}, {payload['need']}, {call.state}, "
                     f"consent {payload['consent']})")
        if call.referrals and not alerted:  # one undelivered text is enough for the exceptions panel
            lines.append(_undelivered_alert(svc, call))
            alerted = True
        if centre == "CNH" and first_cnh is None:
            first_cnh = call.ref
    if first_cnh is not None:
        lines.append(_break_glass(svc, first_cnh))
    return lines


def _rotas(svc) -> list[str]:
    """A week of rotas for each service the demo has professionals for: a day shift (08:00-20:00) and a
    night shift (20:00-08:00) every day, each led by the professional who works it, and one cover: on
    the coming Saturday night the DN day nurse works the night instead."""
    from datetime import time, timedelta

    from .service import rotas

    lines: list[str] = []
    with svc.uow() as uow:
        rows = uow.session.execute(select(professionals.c.mobile, professionals.c.id)).all()
    ids: dict[str, int] = {row.mobile: row.id for row in rows}
    now = svc.clock.now()
    saturday = now.astimezone(LONDON).date() + timedelta(days=(5 - now.astimezone(LONDON).weekday()) % 7)
    for (_, service, day_mobile), (_, _, night_mobile) in zip(DEMO_PROFESSIONALS, DEMO_NIGHT_PROFESSIONALS):
        if rotas.next_on_duty(svc, service, now) is not None:
            continue  # this service has a rota already
        day_nurse = ids[normalise_uk_mobile(day_mobile) or day_mobile]
        night_nurse = ids[normalise_uk_mobile(night_mobile) or night_mobile]
        night_shifts = {}
        for weekday in range(7):
            rotas.add_pattern_shift(svc, "demo", service=service, weekday=weekday, start=time(8), end=time(20),
                                    members=[day_nurse], duty_lead=day_nurse, label="day")
            night_shifts[weekday] = rotas.add_pattern_shift(
                svc, "demo", service=service, weekday=weekday, start=time(20), end=time(8), members=[night_nurse],
                duty_lead=night_nurse, label="night")
        lines.append(f"demo rota for {service}: day 08:00-20:00 and night 20:00-08:00, every day")
        if service == "DN":
            rotas.cover(svc, "demo", night_shifts[5], saturday, professionals=[day_nurse], duty_lead=day_nurse,
                        reason="Demo: the night nurse is on a course")
            lines.append(f"demo cover: DN night of {saturday:%a %d %b} worked by the day nurse")
    return lines


def _break_glass(svc, ref: str) -> str:
    """The ASC handler opened a CNH call by break-glass: it shows on the call's page and on the CNH
    supervisor's review list (Supervisor → Break-glass)."""
    from .service import records

    asc = call_service.Actor(username="handler.asc", role="handler", centre="ASC")
    records.break_glass(svc, asc, ref, {"reason": "transfer_in_progress",
                                        "note": "Demo: the caller rang ASC back while CNH was transferring the call"},
                        route="demo")
    return f"demo break-glass: handler.asc opened {ref} (for the CNH supervisor to review)"


def _resolved(extra: dict, call) -> dict:
    """A demo step with RECOMMENDED replaced by the service the routing table recommends now."""
    data = extra.get("data")
    if not data or data.get("service") != RECOMMENDED:
        return extra
    return {**extra, "data": {**data, "service": (call.recommended or {}).get("service") or "SG"}}


def _undelivered_alert(svc, call) -> str:
    """The console gateway cannot fail like a carrier does, so the demo starts with one text that Twilio
    would have reported undelivered 20 minutes ago: the supervisor's exceptions panel lists it for a
    phone follow-up."""
    from datetime import timedelta

    from .domain.sms.delivery import SmsMessage
    from .domain.sms.recipients import Recipient
    from .domain.sms.timetext import local_time_text
    from .service.sms import referral_link

    referral = call.referrals[0]
    unreachable = normalise_uk_mobile(DEMO_UNREACHABLE)
    if unreachable is None:  # a constant of this module: only if it were edited into a non-mobile
        raise ValueError(f"DEMO_UNREACHABLE ({DEMO_UNREACHABLE}) is not a UK mobile number")
    with svc.uow() as uow:
        nurse = uow.session.scalar(select(professionals.c.id).where(professionals.c.mobile == unreachable))
    if nurse is None:
        nurse = add_professional(svc, name=f"{DEMO_UNREACHABLE_NAME} ({referral.service})", service=referral.service,
                                 mobile=DEMO_UNREACHABLE)
    at = svc.clock.now() - timedelta(minutes=20)
    text = SmsMessage(call_ref=call.ref, referral_id=referral.id,
                      recipient=Recipient("on_duty", unreachable, nurse),
                      template="referral_sent", created_at=at,
                      body=svc.sms_templates.render(
                          "referral_sent", ref=call.ref, service=referral.service,
                          urgency=call.urgency.replace("_", " "), sent_at=local_time_text(at, at),
                          link=referral_link(svc, referral.id)))
    text.status, text.provider_sid, text.submitted_at = "sent", "SMDEMO" + referral.id[:26], at
    text.apply_status("undelivered", at + timedelta(minutes=1), 30003, "Unreachable destination handset")
    with svc.uow() as uow:
        uow.session.add(text)
        uow.commit()
    return f"demo undelivered text for {call.ref} (shown on the supervisor's exceptions panel)"
