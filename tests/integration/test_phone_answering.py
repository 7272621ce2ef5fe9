"""Handlers answering phone calls (issue 15, points 2 and 6; docs/telephony.md, "Answering a call"): the
"taking calls" switch, the live phone queue with its screen pop, Answer (bridged through Twilio's REST API,
here the Voice emulator's), Log a call pre-filled and linked to the phone leg, the call page's phone legs,
the callers who are gone before Answer, and the demo's simulated calls. SQLite here, PostgreSQL with
TEST_DATABASE_URL."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from ipoa.adapters.voice_gateway import TwilioVoiceGateway
from ipoa.service import call_takers, phone_calls
from ipoa.service import users as user_service
from ipoa.service.professionals import add_professional
from ipoa.web.twiml import bridge_twiml
from tests.conftest import VOICE_SID, VOICE_TOKEN, call_payload, csrf_token, sign_in
from tests.helpers.voice import CALLER, CNH_LINE, OTHER_CALLER, all_calls, leg, legs

HANDLER_PHONE = "+447700900301"


def queued(voice, caller=CALLER, line=CNH_LINE, key="2"):
    call = voice.ring(from_=caller, to=line)
    voice.press(call, key)
    return call


def dialling(svc, dial_to, by):
    """Answer's TwiML builder, as web/phone_pages.answer makes it: the <Dial> naming the answer's instant."""
    return lambda at: bridge_twiml(dial_to, svc.public_base_url, by=by, at=at)


@pytest.fixture
def handler(client, users, svc):
    """The CNH handler, signed in, answering on their phone."""
    user_service.update_user(svc, "test", "handler", answer_on="07700 900301")
    sign_in(client, "handler")
    return client


@pytest.fixture
def rest(voice, svc, monkeypatch):
    """Answer's redirects go through Twilio's REST API to the emulator."""
    monkeypatch.setattr(svc, "voice_gateway", TwilioVoiceGateway(
        account_sid=VOICE_SID, auth_token=VOICE_TOKEN, api_base_url=voice.base_url, timeout=5))
    return voice


def post(client, url, data=None, page="/queue"):
    return client.post(url, data={"csrf_token": csrf_token(client, page), **(data or {})})


def answer(client, sid):
    return post(client, f"/phone/{sid}/answer")


def log_form(client, location, **fields):
    """Log a call from the form Answer opened, as the handler would send it: every pre-filled field kept."""
    html = client.get(location).get_data(as_text=True)
    data = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', html))
    for name, options in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="([^"]*)"\s+selected', options)
        if chosen:
            data[name] = chosen.group(1)
    data.update({"need": "urgent_community_health", "urgency": "urgent", "consent": "given",
                 "summary": "Rang about a leg wound", "given_name": "Edith", "family_name": "Testperson"})
    data.update(fields)
    return client.post("/calls/new", data=data)


# -- taking calls ------------------------------------------------------------------------------------------

def test_a_handler_switches_taking_calls_on_and_off_from_the_queue_page(handler, svc, users):
    page = handler.get("/queue").get_data(as_text=True)
    assert "You are not taking phone calls." in page and "Take phone calls" in page
    assert "Answer puts a caller through to your phone, 07700 ••• •301." in page and HANDLER_PHONE not in page
    resp = post(handler, "/queue/taking-calls", {"taking_calls": "1"})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/queue")
    assert call_takers.taking_calls_since(svc, users["handler"].id) == svc.clock.now()
    assert "You are taking phone calls" in handler.get("/queue").get_data(as_text=True)
    post(handler, "/queue/taking-calls", {"taking_calls": "0"})
    assert call_takers.taking_calls_since(svc, users["handler"].id) is None


def test_a_taking_calls_value_that_is_not_1_or_0_is_refused_naming_the_field(handler, svc, users):
    resp = post(handler, "/queue/taking-calls", {"taking_calls": "yes\x00"})
    assert resp.status_code == 400 and "taking_calls" in resp.get_data(as_text=True)
    assert call_takers.taking_calls_since(svc, users["handler"].id) is None


def test_where_a_handler_answers_is_a_uk_number_or_a_twilio_client_identity(svc, users):
    assert user_service.update_user(svc, "test", "handler", answer_on="client:handler_cnh") == ["answer_on"]
    with pytest.raises(user_service.UserError) as bad:
        user_service.update_user(svc, "test", "handler", answer_on="client:<script>")
    assert bad.value.field == "answer_on"
    with pytest.raises(user_service.UserError):
        user_service.update_user(svc, "test", "handler", answer_on="+1 202 555 0100")
    assert user_service.update_user(svc, "test", "handler", answer_on=None) == ["answer_on"]


# -- the live phone queue and its screen pop -------------------------------------------------------------

def test_the_queue_shows_waiting_callers_in_order_masked_with_the_screen_pop(handler, voice, svc, clock,
                                                                             handler_actor):
    from ipoa.service.calls import Actor, log_call

    add_professional(svc, name="Nia Nurse", service="DN", mobile="07700 900123")
    for centre in ("CNH", "CNH", "ASC"):
        log_call(svc, Actor(f"setup.{centre}", "handler", centre),
                 call_payload(centre=centre, caller={"type": "carer", "name": "Jo", "phone": "07700 900456"},
                              subject={"nhs_number": None, "given_name": "Edith", "family_name": "Testperson"}),
                 allow_duplicate=True)
    public = queued(voice, OTHER_CALLER, key="2")
    clock.advance(seconds=65)
    nurse = queued(voice, CALLER, key="1")
    live = handler.get("/queue/live").get_data(as_text=True)
    assert "2 callers waiting" in live
    rows = re.findall(r'<tr class="nhsuk-table__row" id="phone-(CA[0-9a-f]+)">(.*?)</tr>', live, re.S)
    assert [sid for sid, _ in rows] == [nurse.sid, public.sid]  # a professional first
    first, second = rows[0][1], rows[1][1]
    assert "07700 ••• •123" in first and "<strong>Nia Nurse</strong>, Community (district) nursing" in first
    assert "0 min 00 s" in first and "1 min 05 s" in second
    assert "3 open calls for this number" in second and "(one at ASC)" in second
    refs = [c.ref for c in all_calls(svc) if c.centre == "CNH"]
    assert sorted(re.findall(r'href="/calls/([^"]+)"', second)) == sorted(refs)
    assert CALLER not in live and OTHER_CALLER not in live and "07700 900456" not in live
    assert f'id="answer-{nurse.sid}"' in live


def test_another_centres_staff_never_see_this_centres_phone_queue(client, users, voice, svc):
    queued(voice)
    sign_in(client, "handler.asc")
    assert client.get("/queue/live?centre=CNH").status_code == 403
    own = client.get("/queue/live").get_data(as_text=True)  # ASC's own phone queue: nobody rang it
    assert "No callers waiting on the phone." in own and "07700 ••• •123" not in own


# -- Answer ------------------------------------------------------------------------------------------------

def test_answer_bridges_the_caller_and_opens_log_a_call_pre_filled_then_the_call_keeps_its_leg(
        handler, rest, svc, clock, users):
    call = queued(rest, CALLER, key="1")
    clock.advance(seconds=40)
    resp = answer(handler, call.sid)
    assert resp.status_code == 303 and resp.headers["Location"] == f"/calls/new?phone_leg={call.sid}"
    assert call.dialled == [HANDLER_PHONE] and call.queue is None  # put through by the REST API's update
    row = leg(svc, call.sid)
    assert (row.outcome, row.answered_by) == ("answered", "handler")
    form = handler.get(resp.headers["Location"]).get_data(as_text=True)
    assert 'name="caller_phone" type="tel" value="07700 900123"' in form
    assert re.search(r'<option value="professional"\s+selected', form)
    assert f'name="phone_leg" value="{call.sid}"' in form and "after 0 min 40 s waiting" in form
    clock.advance(minutes=2)
    logged = log_form(handler, resp.headers["Location"])
    assert logged.status_code == 302, logged.get_data(as_text=True)
    (made,) = all_calls(svc)
    assert made.caller_phone == CALLER and made.caller_type == "professional"
    assert leg(svc, call.sid).call_ref == made.ref
    page = handler.get(logged.headers["Location"]).get_data(as_text=True)
    section = page.split('id="phone-legs"')[1].split("</section>")[0]
    assert call.sid in section and "07700 ••• •123" in section and "by Handler" in section
    assert "0 min 40 s" in section and "answered" in section
    # The leg is logged once: a second form for it is refused naming phone_leg, and stores nothing.
    again = log_form(handler, resp.headers["Location"], phone_leg=call.sid)
    assert again.status_code == 400 and "phone_leg" in again.get_data(as_text=True)
    assert len(all_calls(svc)) == 1


def test_a_caller_who_hung_up_before_answer_is_said_plainly_and_nothing_changes(handler, rest, svc, clock):
    call = queued(rest)
    clock.advance(seconds=20)
    rest.hang_up(call)
    resp = answer(handler, call.sid)
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/queue")
    page = handler.get("/queue").get_data(as_text=True)
    assert "The caller hung up before you answered." in page
    assert leg(svc, call.sid).answered_by is None and not call.dialled


def test_a_caller_another_handler_answered_first_is_said_plainly(handler, rest, svc, users):
    from tests.helpers import make_user

    make_user(svc, "handler.two", "handler", "CNH")
    call = queued(rest)
    assert phone_calls.bridge(svc, call.sid, "handler.two", dialling(svc, "client:two", "handler.two"))
    resp = answer(handler, call.sid)
    assert resp.status_code == 303
    assert "Another handler answered this caller first." in handler.get("/queue").get_data(as_text=True)
    assert leg(svc, call.sid).answered_by == "handler.two" and call.dialled == ["client:two"]


def test_a_bridge_twilio_refuses_is_said_and_the_caller_waits_for_the_next_handler(handler, voice, svc,
                                                                                  monkeypatch):
    monkeypatch.setattr(svc, "voice_gateway", TwilioVoiceGateway(
        account_sid=VOICE_SID, auth_token="wrong-token", api_base_url=voice.base_url, timeout=5))
    call = queued(voice)
    resp = answer(handler, call.sid)
    assert resp.status_code == 303
    page = handler.get("/queue").get_data(as_text=True)
    assert "could not be put through to you" in page and "still waiting" in page
    assert leg(svc, call.sid).answered_by is None and call.queue == "CNH"


class _HangsUpFirst(TwilioVoiceGateway):
    """Twilio's REST API reached just after the caller hung up: the hang-up's callbacks (the enqueue's action,
    then the status callback) arrive while Answer holds the leg, then the redirect is refused (21220)."""

    def __init__(self, emulator, call):
        super().__init__(account_sid=VOICE_SID, auth_token=VOICE_TOKEN, api_base_url=emulator.base_url, timeout=5)
        self.emulator, self.call = emulator, call

    def redirect(self, call_sid, twiml):
        self.emulator.hang_up(self.call)
        return super().redirect(call_sid, twiml)


def test_a_caller_who_hangs_up_as_answer_puts_them_through_is_called_back(handler, voice, svc, clock,
                                                                          monkeypatch):
    call = queued(voice)
    clock.advance(seconds=40)
    monkeypatch.setattr(svc, "voice_gateway", _HangsUpFirst(voice, call))
    resp = answer(handler, call.sid)
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/queue")
    assert "The caller hung up before you answered." in handler.get("/queue").get_data(as_text=True)
    ended = leg(svc, call.sid)
    assert (ended.outcome, ended.answered_by, ended.answered_at) == ("abandoned", None, None)
    assert ended.hung_up_at == ended.left_queue_at and (ended.left_queue_at - ended.enqueued_at).total_seconds() == 40
    [made] = all_calls(svc)
    assert made.state == "awaiting_callback" and ended.call_ref == made.ref and not call.dialled


class _HungUpLateNews(TwilioVoiceGateway):
    """The caller hung up at `hung_up` (2 s before Answer); the hang-up's callbacks (in `order`) reach ipoa
    only while Answer holds the leg, then the redirect is refused (21220)."""

    def __init__(self, emulator, call, hung_up, order):
        super().__init__(account_sid=VOICE_SID, auth_token=VOICE_TOKEN, api_base_url=emulator.base_url, timeout=5)
        self.emulator, self.call, self.hung_up, self.order = emulator, call, hung_up, order

    def redirect(self, call_sid, twiml):
        queue_time = str(int((self.hung_up - self.call.queued_at).total_seconds()))
        for callback in self.order:
            if callback == "action":
                self.emulator.webhook(self.call, self.call.enqueue_action,
                                      {"QueueResult": "hangup", "QueueTime": queue_time})
            else:
                self.emulator.status_callback(self.call, "completed", at=self.hung_up)
        return super().redirect(call_sid, twiml)


@pytest.mark.parametrize("order", [("action", "status"), ("status", "action")])
def test_a_hang_up_told_late_while_answer_holds_the_caller_is_dated_by_twilio(handler, voice, svc, clock,
                                                                                  monkeypatch, order):
    call = queued(voice)
    hung_up = clock.now() + timedelta(seconds=31)
    clock.advance(seconds=33)
    monkeypatch.setattr(svc, "voice_gateway", _HungUpLateNews(voice, call, hung_up, order))
    assert answer(handler, call.sid).status_code == 303
    ended = leg(svc, call.sid)
    assert (ended.outcome, ended.answered_by) == ("abandoned", None)
    assert ended.hung_up_at == ended.enqueued_at + timedelta(seconds=31.5) and len(all_calls(svc)) == 1


def test_a_caller_who_rang_again_and_hung_up_again_shows_as_ringing_again_on_the_calls_page(handler, voice, svc,
                                                                                             clock):
    """The second hang-up is recorded on the same call awaiting its callback (its leg's call_ref is that call's
    too): the call's page still says the caller rang again about it (docs/telephony.md, "Answering a call")."""
    first = queued(voice)
    clock.advance(seconds=20)
    voice.hang_up(first)
    (made,) = all_calls(svc)
    clock.advance(minutes=3)
    again = queued(voice)
    clock.advance(seconds=20)
    voice.hang_up(again)
    assert len(all_calls(svc)) == 1 and leg(svc, again.sid).call_ref == made.ref
    page = handler.get(f"/calls/{made.ref}").get_data(as_text=True)
    section = page.split('id="phone-legs"')[1].split("</section>")[0]
    rows = {sid: row for row in section.split("<tr") for sid in (first.sid, again.sid) if sid in row}
    assert "rang again about this call" in rows[again.sid]
    assert "rang again about this call" not in rows[first.sid]


def test_a_caller_still_at_the_menu_cannot_be_answered_yet(handler, voice, svc):
    call = voice.ring(from_=CALLER, to=CNH_LINE)  # greeting and menu: no key pressed yet
    resp = answer(handler, call.sid)
    assert resp.status_code == 303
    assert "has not reached the queue yet" in handler.get("/queue").get_data(as_text=True)
    assert leg(svc, call.sid).answered_by is None


def test_a_handler_with_nowhere_to_answer_is_told_and_the_caller_still_waits(client, users, voice, svc):
    sign_in(client, "handler")
    call = queued(voice)
    answer(client, call.sid)
    assert "No phone is set for you to answer calls on" in client.get("/queue").get_data(as_text=True)
    assert leg(svc, call.sid).answered_by is None


def test_another_centres_caller_cannot_be_answered(client, users, voice, svc):
    user_service.update_user(svc, "test", "handler.asc", answer_on="client:asc")
    call = queued(voice)  # in the CNH queue
    sign_in(client, "handler.asc")
    assert answer(client, call.sid).status_code == 403
    assert leg(svc, call.sid).answered_by is None


def test_a_malformed_call_sid_is_refused_naming_it(handler, svc):
    resp = answer(handler, "CA123")
    assert resp.status_code == 400 and "call_sid" in resp.get_data(as_text=True)


@pytest.mark.parametrize("phone_leg", ["CA" + "0" * 32, "not-a-sid", "CA" + "f" * 31 + "\x00"])
def test_log_a_call_with_a_phone_leg_not_answered_by_this_handler_is_refused_and_stores_nothing(
        handler, voice, svc, phone_leg):
    resp = handler.get(f"/calls/new?phone_leg={phone_leg}")
    assert resp.status_code == 400 and "phone_leg" in resp.get_data(as_text=True)
    logged = log_form(handler, "/calls/new", phone_leg=phone_leg)
    assert logged.status_code == 400 and "phone_leg" in logged.get_data(as_text=True)
    assert all_calls(svc) == []


def test_a_phone_leg_answered_by_someone_else_cannot_be_logged_by_this_handler(handler, rest, svc):
    from tests.helpers import make_user

    make_user(svc, "handler.two", "handler", "CNH")
    call = queued(rest)
    assert phone_calls.bridge(svc, call.sid, "handler.two", dialling(svc, "client:two", "handler.two"))
    logged = log_form(handler, "/calls/new", phone_leg=call.sid)
    assert logged.status_code == 400 and all_calls(svc) == [] and leg(svc, call.sid).call_ref is None


def test_a_call_logged_from_an_answer_that_never_rang_through_lets_the_next_handler_log_theirs(handler, rest, svc,
                                                                                               clock):
    """The handler logged a call from Answer's pre-filled form, and then their phone's dial result said it never
    rang through: the caller is back in the queue, and the leg no longer belongs to that call, so the handler
    who answers next logs it (it was a 400 naming phone_leg)."""
    from tests.helpers import make_user

    call = queued(rest)
    clock.advance(seconds=20)
    resp = answer(handler, call.sid)
    assert resp.status_code == 303
    assert log_form(handler, resp.headers["Location"]).status_code == 302
    (first,) = all_calls(svc)
    assert leg(svc, call.sid).call_ref == first.ref
    clock.advance(seconds=25)
    rest.dial_outcome(call, "no-answer")
    row = leg(svc, call.sid)
    assert call.queue == "CNH" and (row.outcome, row.call_ref) == (None, None)
    make_user(svc, "handler.two", "handler", "CNH")
    user_service.update_user(svc, "test", "handler.two", answer_on="07700 900302")
    other = handler.application.test_client()
    sign_in(other, "handler.two")
    clock.advance(seconds=5)
    again = answer(other, call.sid)
    assert again.status_code == 303
    logged = log_form(other, again.headers["Location"])
    assert logged.status_code == 302, logged.get_data(as_text=True)
    second = next(c for c in all_calls(svc) if c.ref != first.ref)
    assert leg(svc, call.sid).call_ref == second.ref


# -- the demo's simulated calls (VOICE_SIMULATOR, console Voice gateway) -----------------------------------

@pytest.fixture
def simulator(app, svc, monkeypatch):
    app.config["VOICE_SIMULATOR"] = True
    monkeypatch.setattr(svc, "twilio", {"account_sid": VOICE_SID, "auth_token": VOICE_TOKEN})
    return app


def test_a_simulated_call_rings_queues_is_answered_through_the_console_and_hangs_up(simulator, handler, svc,
                                                                                      clock):
    from ipoa.adapters.voice_gateway import ConsoleVoiceGateway

    assert isinstance(svc.voice_gateway, ConsoleVoiceGateway)
    add_professional(svc, name="Nia Nurse", service="DN", mobile="07700 900201")
    page = handler.get("/queue").get_data(as_text=True)
    assert "Simulate an incoming call" in page
    resp = post(handler, "/demo/phone/ring", {"caller": "professional"})
    assert resp.status_code == 303
    (row,) = legs(svc)
    assert (row.centre, row.queue, row.caller_type, row.caller_number) == ("CNH", "CNH", "professional",
                                                                            "+447700900201")
    flashed = handler.get("/queue").get_data(as_text=True)
    assert "A simulated call from 07700 ••• •201 rang Clinical Navigation Hub." in flashed
    assert "You are number 1 in the queue." in flashed and "Nia Nurse" in flashed
    clock.advance(seconds=30)
    resp = answer(handler, row.call_sid)
    assert resp.headers["Location"] == f"/calls/new?phone_leg={row.call_sid}"
    answered = leg(svc, row.call_sid)
    # The dial result's URL names this answer (who, and when), so a late one never undoes a later answer.
    assert svc.voice_gateway.redirected[-1] == (row.call_sid, bridge_twiml(
        HANDLER_PHONE, svc.public_base_url, by="handler", at=answered.answered_at))
    assert answered.outcome == "answered" and answered.left_queue_at == clock.now()  # Twilio's `redirected`
    logged = log_form(handler, resp.headers["Location"])
    (made,) = all_calls(svc)
    call_page = f"/calls/{made.ref}"
    assert logged.headers["Location"] == call_page
    page = handler.get(call_page).get_data(as_text=True)
    assert f'id="hang-up-{row.call_sid}"' in page  # the answered caller is still on the line
    clock.advance(minutes=3)
    hung_up = handler.post(f"/demo/phone/{row.call_sid}/hang-up", data={"csrf_token": csrf_token(handler, call_page)},
                           headers={"Referer": f"http://localhost{call_page}"})
    assert hung_up.status_code == 303 and hung_up.headers["Location"].endswith(call_page)
    ended = leg(svc, row.call_sid)
    assert (ended.hung_up_at, ended.outcome, ended.call_ref) == (clock.now(), "answered", made.ref)
    assert len(all_calls(svc)) == 1  # an answered caller who hangs up is not called back
    assert f'id="hang-up-{row.call_sid}"' not in handler.get(call_page).get_data(as_text=True)


def test_a_simulated_caller_who_hangs_up_in_the_queue_is_called_back(simulator, handler, svc, clock):
    post(handler, "/demo/phone/ring", {"caller": "public"})
    (row,) = legs(svc)
    clock.advance(seconds=30)
    post(handler, f"/demo/phone/{row.call_sid}/hang-up")
    after = leg(svc, row.call_sid)
    (made,) = all_calls(svc)
    assert after.outcome == "abandoned" and after.call_ref == made.ref and made.state == "awaiting_callback"


def test_a_simulated_caller_who_hangs_up_after_5_5_s_is_abandoned_and_called_back(simulator, handler, svc, clock):
    """The simulator sends QueueTime in whole seconds (5), as Twilio does: the hang-up is still after 5.5 s."""
    post(handler, "/demo/phone/ring", {"caller": "public"})
    (row,) = legs(svc)
    clock.advance(seconds=5.5)
    post(handler, f"/demo/phone/{row.call_sid}/hang-up")
    after = leg(svc, row.call_sid)
    assert after.outcome == "abandoned" and (after.hung_up_at - after.enqueued_at).total_seconds() == 5.5
    assert len(all_calls(svc)) == 1


def test_the_simulator_is_off_without_its_setting_and_with_the_twilio_gateway(app, handler, svc, monkeypatch):
    assert "Simulate an incoming call" not in handler.get("/queue").get_data(as_text=True)
    assert post(handler, "/demo/phone/ring", {"caller": "public"}).status_code == 404
    app.config["VOICE_SIMULATOR"] = True
    monkeypatch.setattr(svc, "twilio", {"account_sid": VOICE_SID, "auth_token": VOICE_TOKEN})
    monkeypatch.setattr(svc, "voice_backend", "twilio")
    assert post(handler, "/demo/phone/ring", {"caller": "public"}).status_code == 404
    assert legs(svc) == []


def test_a_simulated_call_with_an_unknown_caller_kind_rings_nothing(simulator, handler, svc):
    resp = post(handler, "/demo/phone/ring", {"caller": "robot"})
    assert resp.status_code == 400 and "caller: choose who is calling" in resp.get_data(as_text=True)
    bad_sid = post(handler, "/demo/phone/CA1/hang-up")
    assert bad_sid.status_code == 400 and "call_sid" in bad_sid.get_data(as_text=True)
    assert legs(svc) == []


def test_a_centre_whose_line_ipoa_does_not_answer_has_no_phone_queue(handler, svc, catalogue, monkeypatch):
    from dataclasses import replace

    directory = catalogue.directory
    no_line = replace(directory.centres["CNH"], voice=None)
    monkeypatch.setattr(svc, "catalogue", replace(catalogue, directory=replace(
        directory, centres={**directory.centres, "CNH": no_line})))
    page = handler.get("/queue").get_data(as_text=True)
    assert "Phone queue" not in page and "Take phone calls" not in page and "Log a call" in page


def test_the_demos_handlers_answer_on_a_twilio_client_and_make_run_turns_the_simulator_on(svc):
    from sqlalchemy import select

    from ipoa import devserver
    from ipoa.adapters.orm import users as users_table
    from ipoa.demo import seed

    seed(svc)
    with svc.uow() as uow:
        answering = dict(uow.session.execute(select(users_table.c.username, users_table.c.answer_on)).all())
    assert answering["handler"] == "client:handler_cnh" and answering["professional"] is None
    env: dict[str, str] = {}
    devserver.voice_demo(env)
    assert env["VOICE_SIMULATOR"] == "1" and len(env["TWILIO_AUTH_TOKEN"]) == 32
    real = {"VOICE_BACKEND": "twilio", "TWILIO_AUTH_TOKEN": "theirs"}
    devserver.voice_demo(real)
    assert real == {"VOICE_BACKEND": "twilio", "TWILIO_AUTH_TOKEN": "theirs"}  # a real line: no simulator


def test_a_simulated_caller_with_an_open_call_pops_up_with_it(simulator, handler, svc):
    from ipoa.service.calls import Actor, log_call

    ref = log_call(svc, Actor("setup", "handler", "CNH"),
                   call_payload(caller={"type": "carer", "name": "Jo", "phone": "07700 900456"},
                                subject={"nhs_number": None, "given_name": "Edith", "family_name": "Testperson"})).ref
    post(handler, "/demo/phone/ring", {"caller": "known"})
    (row,) = legs(svc)
    assert (row.caller_number, row.caller_type, row.matched_call_ref) == (OTHER_CALLER, "public", ref)
    live = handler.get("/queue/live").get_data(as_text=True)
    assert f'1 open call for this number: <a href="/calls/{ref}">{ref}</a>' in live
