"""A professional signs in and sees only referrals to their own service, and acts there as by SMS."""
from __future__ import annotations

from sqlalchemy import select

from ipoa.adapters.orm import referrals
from ipoa.service import calls as call_service
from ipoa.service.professionals import link_user
from tests.conftest import csrf_token, sign_in
from tests.helpers.rota import add_on_duty
from tests.helpers.sms import referred_call


def state_of(svc, referral_id):
    with svc.uow() as uow:
        return uow.session.scalar(select(referrals.c.state).where(referrals.c.id == referral_id))


def nurse(svc, users):
    add_on_duty(svc, name="Nia", service="DN", mobile="07700 900201")
    link_user(svc, "07700 900201", users["professional"].id)


def test_a_professional_sees_only_their_services_referrals(client, svc, users, handler_actor):
    nurse(svc, users)
    mine = referred_call(svc, handler_actor, service="DN")
    theirs = referred_call(svc, handler_actor, service="CRT")
    resp = sign_in(client, "professional")
    assert resp.headers["Location"].endswith("/my/referrals")
    page = client.get("/my/referrals").get_data(as_text=True)
    assert mine.ref in page and theirs.ref not in page
    assert client.get(f"/my/referrals/{theirs.referrals[0].id}").status_code == 403
    assert client.get(f"/calls/{mine.ref}").status_code == 403  # not the handlers' pages
    detail = client.get(f"/my/referrals/{mine.referrals[0].id}").get_data(as_text=True)
    assert "Zebedee" in detail and "Accept" in detail  # the secure page carries the details
    assert "Withdraw" not in detail  # the referrer's action, not the service's


def test_a_professional_accepts_then_completes_on_the_page(client, svc, users, handler_actor):
    nurse(svc, users)
    call = referred_call(svc, handler_actor, service="DN")
    referral_id = call.referrals[0].id
    sign_in(client, "professional")
    url = f"/my/referrals/{referral_id}"
    token = csrf_token(client, url)
    accepted = client.post(url, data={"csrf_token": token, "trigger": "accept", "expected_version": "1"})
    assert accepted.status_code == 302 and state_of(svc, referral_id) == "accepted"
    # The confirmation says what happened, not "Done.".
    page = client.get(url).get_data(as_text=True)
    assert "Referral to Community (district) nursing accepted" in page
    stale = client.post(url, data={"csrf_token": token, "trigger": "start", "expected_version": "1"})
    assert stale.status_code == 409 and state_of(svc, referral_id) == "accepted"
    refused = client.post(url, data={"csrf_token": token, "trigger": "decline", "expected_version": "2"})
    assert refused.status_code == 422 and state_of(svc, referral_id) == "accepted"
    withdraw = client.post(url, data={"csrf_token": token, "trigger": "withdraw", "reason": "x",
                                      "expected_version": "2"})
    assert withdraw.status_code == 403 and state_of(svc, referral_id) == "accepted"
    complete = client.post(url, data={"csrf_token": token, "trigger": "complete", "expected_version": "2"})
    assert complete.status_code == 302
    assert state_of(svc, referral_id) == "completed"
    assert call_service.get_call(svc, call.ref)[0].state == "closed"
    history = call_service.get_call(svc, call.ref)[1]
    assert ("professional", "accept") in [(e.actor, e.trigger) for e in history]


def test_the_sms_link_takes_a_professional_to_the_referral(client, svc, users, handler_actor):
    from ipoa.service.sms import link_token

    nurse(svc, users)
    call = referred_call(svc, handler_actor, service="DN")
    sign_in(client, "professional")
    resp = client.get(f"/r/{link_token(call.referrals[0].id)}")
    assert resp.headers["Location"].endswith(f"/my/referrals/{call.referrals[0].id}")


def test_a_services_access_to_a_referral_ends_72_hours_after_it_closed(client, svc, users, handler_actor, clock):
    """Need to know (docs/information-governance.md, section 3): a team that declined a referral, or finished
    its visit, keeps its details long enough to finish the paperwork, not for good."""
    nurse(svc, users)
    declined = referred_call(svc, handler_actor, service="DN")
    done = referred_call(svc, handler_actor, service="DN")
    open_ = referred_call(svc, handler_actor, service="DN")
    sign_in(client, "professional")
    for call, steps in ((declined, ["decline"]), (done, ["accept", "complete"])):
        url = f"/my/referrals/{call.referrals[0].id}"
        for version, trigger in enumerate(steps, start=1):
            resp = client.post(url, data={"csrf_token": csrf_token(client, url), "trigger": trigger,
                                          "reason": "On our caseload already", "expected_version": str(version)})
            assert resp.status_code == 302, (trigger, resp.get_data(as_text=True)[:300])
    clock.advance(hours=72)
    for call in (declined, done, open_):
        assert "Zebedee" in client.get(f"/my/referrals/{call.referrals[0].id}").get_data(as_text=True)
    clock.advance(seconds=1)
    for call in (declined, done):
        resp = client.get(f"/my/referrals/{call.referrals[0].id}")
        page = resp.get_data(as_text=True)
        assert resp.status_code == 403 and "Zebedee" not in page and call.ref not in page
        assert "access to this referral ended 72 hours after it was closed" in page
    assert client.get(f"/my/referrals/{open_.referrals[0].id}").status_code == 200  # still open: no limit
    listing = client.get("/my/referrals").get_data(as_text=True)
    assert "Zebedee" not in listing
