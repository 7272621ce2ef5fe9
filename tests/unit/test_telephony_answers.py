"""What a ringing call hears and where it goes (domain/telephony/answers.py): pure, from the centre's line,
its calendar, the time and the queues' state. Never silence: every answer that neither queues nor puts the
caller through ends with the 999 and 111 advice."""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipoa.domain.directory import load_directory_file
from ipoa.domain.telephony import answers
from ipoa.domain.telephony.answers import ADVICE, Dial, Enqueue, Hangup, Leave, Menu, QueueState, Say
from ipoa.domain.telephony.centre_voice import Overflow
from ipoa.domain.telephony.legs import (
    ABANDONED,
    SHORT_ABANDON,
    PhoneLeg,
    end_in_queue,
    status_moves_on,
    twilio_dated,
)
from ipoa.web.twiml import bridge_twiml

ROOT = Path(__file__).resolve().parents[2]
DIRECTORY = load_directory_file(ROOT / "workflows" / "directory.yaml")
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
MONDAY_22 = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)
SATURDAY_NOON = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
NOBODY_WAITS = QueueState(None, 1)


def not_asked():
    raise AssertionError("the queues' state was read for an answer that does not queue")


def handlers_not_asked() -> int:
    raise AssertionError("the handlers available were read for a wait URL's answer that does not turn on them")


def line(code, **changes):
    centre = DIRECTORY.centres[code]
    return replace(centre, voice=replace(centre.voice, **changes)) if changes else centre


def test_an_open_centre_with_a_menu_greets_and_offers_it():
    answer = answers.incoming(line("CNH"), DIRECTORY, MONDAY_10, not_asked)
    assert answer.steps == (Say("Thank you for calling the Clinical Navigation Hub."), Menu(answers.MENU_PROMPT))
    assert answer.kind == answers.MENU


def test_an_open_centre_without_a_menu_greets_and_queues():
    # MHA's line has no overflow: nothing could send the caller elsewhere, so no queue's state is read
    answer = answers.incoming(line("MHA"), DIRECTORY, MONDAY_10, not_asked)
    assert answer.steps == (Say("Thank you for calling the Mental Health Central Access Point."), Enqueue("MHA"))
    assert (answer.kind, answer.queue) == (answers.QUEUED, "MHA")


def test_the_queues_state_is_read_only_when_the_lines_overflow_may_apply():
    with_overflow = line("MHA", overflow=Overflow("CNH", "queue", 180, False))
    asked = []
    answer = answers.incoming(with_overflow, DIRECTORY, MONDAY_10,
                              lambda: asked.append(1) or {"MHA": QueueState(timedelta(seconds=181), 1)})
    assert asked == [1] and (answer.kind, answer.queue) == (answers.OVERFLOW_QUEUE, "CNH")
    to_closed = line("MHA", overflow=Overflow("FCP", "queue", 180, True))  # First Contact Plus: office hours
    assert answers.incoming(to_closed, DIRECTORY, MONDAY_22, not_asked).queue == "MHA"
    assert answers.overflow_may_apply(to_closed, DIRECTORY, MONDAY_10)
    unknown = line("MHA", overflow=Overflow("XYZ", "queue", 180, True))
    assert answers.incoming(unknown, DIRECTORY, MONDAY_10, not_asked).queue == "MHA"


@pytest.mark.parametrize("code", sorted(DIRECTORY.centres))
@given(at=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)),
       available=st.integers(0, 3), longest=st.one_of(st.none(), st.integers(0, 1000)),
       when_nobody=st.booleans(), threshold=st.one_of(st.none(), st.integers(1, 600)))
def test_to_queue_never_overflows_where_overflow_may_not_apply(code, at, available, longest, when_nobody,
                                                               threshold):
    """What skipping the read rests on: overflow_may_apply says no exactly when the overflow's centre is
    unknown or closed, and then to_queue's answer is the centre's own queue whatever the state, the same as
    with no state at all."""
    centre = DIRECTORY.centres[code]
    if centre.voice is None:
        return
    for target in ("CNH", "FCP", "XYZ"):  # always open, office hours, unknown
        changed = line(code, overflow=Overflow(target, "queue", threshold, when_nobody))
        state = {code: QueueState(None if longest is None else timedelta(seconds=longest), available)}
        target_open = target in DIRECTORY.centres and DIRECTORY.centres[target].calendar.is_open(at)
        assert answers.overflow_may_apply(changed, DIRECTORY, at) == target_open
        if not target_open:
            assert answers.to_queue(changed, DIRECTORY, at, state) == answers.to_queue(changed, DIRECTORY, at, {})


def test_a_closed_centre_transfers_to_the_out_of_hours_centre_then_advises():
    answer = answers.incoming(line("ASC"), DIRECTORY, MONDAY_22, not_asked)
    said, dial, advice, end = answer.steps
    assert "We are closed now. We open again at 8:30 tomorrow." in said.text and "Emergency Duty Team" in said.text
    assert (dial, advice, end) == (Dial("+441632960104"), Say(ADVICE), Hangup())


def test_a_closed_centre_whose_out_of_hours_centre_is_closed_too_advises():
    # EDT is open whenever ASC is closed; sent to FCP (closed at night too) the caller hears the advice.
    answer = answers.incoming(line("ASC", out_of_hours=replace(line("ASC").voice.out_of_hours, transfer_to="FCP")),
                              DIRECTORY, MONDAY_22, dict)
    (said, end) = answer.steps
    assert said.text.endswith(ADVICE) and end == Hangup() and answer.kind == answers.OUT_OF_HOURS


MONDAY_17 = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)  # ASC closes at 17:00 (London is on UTC in November)


def test_a_caller_still_waiting_when_the_centre_closes_leaves_the_queue_for_its_out_of_hours_route():
    waiting = answers.waiting(line("ASC"), DIRECTORY, MONDAY_17, waited=timedelta(minutes=3), position=1,
                              expected=None, overflowed=False, handlers_available=handlers_not_asked)
    assert waiting.steps == (Say("We are sorry to keep you waiting."), Leave())
    assert (waiting.kind, waiting.queue) == (answers.LEAVING, "ASC")
    after = answers.after_leaving(line("ASC"), DIRECTORY, MONDAY_17)
    said, dial, advice, end = after.steps
    # no greeting again for someone who has been waiting
    assert said.text == ("We are closed now. We open again at 8:30 "
                         "tomorrow. "
                         "We are putting you through to the Emergency Duty Team.")
    assert (dial, advice, end, after.kind) == (Dial("+441632960104"), Say(ADVICE), Hangup(), answers.OUT_OF_HOURS)
    # a minute earlier, the same caller is still told their place
    assert answers.waiting(line("ASC"), DIRECTORY, MONDAY_17 - timedelta(minutes=1), waited=timedelta(minutes=3),
                           position=1, expected=None, overflowed=False,
                           handlers_available=handlers_not_asked).kind == answers.WAITING


def test_a_retried_leave_for_a_caller_who_overflowed_already_queues_them_where_they_are():
    after = answers.after_leaving(line("CNH"), DIRECTORY, MONDAY_10, overflowed=True)
    assert (after.steps, after.kind) == ((Enqueue("CNH"),), answers.QUEUED)


def test_the_weekend_reopening_is_said_by_day():
    (said, _) = answers.incoming(line("FCP"), DIRECTORY, SATURDAY_NOON, dict).steps
    assert "We open again at 8:30 on Monday." in said.text


def test_menu_choices():
    assert answers.menu_choice("1", 1) == (True, None)
    assert answers.menu_choice("2", 1) == (False, None)
    priority, again = answers.menu_choice("7", 1)
    assert priority is None and again.steps == (Say(answers.MENU_RETRY), Menu(answers.MENU_PROMPT, 2))
    assert answers.menu_choice(None, answers.MENU_TRIES) == (False, None)


def test_overflow_when_nobody_is_available_and_only_to_an_open_centre():
    cnh = line("CNH", overflow=Overflow("CHS", "queue", None, True))
    answer = answers.to_queue(cnh, DIRECTORY, MONDAY_10, {"CNH": QueueState(None, 0)})
    assert answer.steps[-1] == Enqueue("CHS") and answer.overflowed_from == "CNH" and "busy" in answer.steps[0].text
    assert answers.to_queue(cnh, DIRECTORY, MONDAY_10, {"CNH": QueueState(None, 2)}).steps == (Enqueue("CNH"),)
    to_closed = line("CNH", overflow=Overflow("FCP", "dial", None, True))
    assert answers.to_queue(to_closed, DIRECTORY, MONDAY_22, {"CNH": QueueState(None, 0)}).steps == (Enqueue("CNH"),)
    by_dial = answers.to_queue(to_closed, DIRECTORY, MONDAY_10, {"CNH": QueueState(None, 0)})
    assert by_dial.steps[1:] == (Dial("+441632960102"), Say(ADVICE), Hangup())


def test_overflow_when_the_longest_wait_passes_the_threshold_strictly():
    cnh = line("CNH")  # 180 s to CHS
    at = {"CNH": QueueState(timedelta(seconds=180), 1)}
    assert answers.to_queue(cnh, DIRECTORY, MONDAY_10, at).queue == "CNH"
    past = {"CNH": QueueState(timedelta(seconds=181), 1)}
    assert answers.to_queue(cnh, DIRECTORY, MONDAY_10, past).queue == "CHS"


def test_the_wait_url_tells_the_place_and_the_wait_and_leaves_once_past_the_threshold():
    cnh = line("CNH")
    told = answers.waiting(cnh, DIRECTORY, MONDAY_10, waited=timedelta(seconds=40), position=3,
                           expected=timedelta(seconds=61), overflowed=False, handlers_available=handlers_not_asked)
    assert told.steps == (Say("You are number 3 in the queue. Your expected wait is about 2 minutes."),
                          answers.Pause(answers.WAIT_PAUSE_SECONDS))
    leaving = answers.waiting(cnh, DIRECTORY, MONDAY_10, waited=timedelta(seconds=181), position=1, expected=None,
                              overflowed=False, handlers_available=handlers_not_asked)
    assert leaving.steps[-1] == Leave() and "Community Health Services" in leaving.steps[0].text
    stays = answers.waiting(cnh, DIRECTORY, MONDAY_10, waited=timedelta(seconds=181), position=1, expected=None,
                            overflowed=True, handlers_available=handlers_not_asked)
    assert stays.steps[0] == Say("You are number 1 in the queue. We will answer you as soon as we can.")
    assert answers.after_leaving(cnh, DIRECTORY, MONDAY_10).steps == (Enqueue("CHS"),)


def test_the_expected_wait_is_the_recent_average_less_the_wait_so_far_at_least_a_minute():
    assert answers.expected_wait(None, timedelta(0)) is None
    assert answers.expected_wait(timedelta(minutes=5), timedelta(minutes=2)) == timedelta(minutes=3)
    assert answers.expected_wait(timedelta(minutes=1), timedelta(minutes=9)) == timedelta(minutes=1)


@pytest.mark.parametrize("code", sorted(DIRECTORY.centres))
@given(at=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)),
       available=st.integers(0, 3), longest=st.one_of(st.none(), st.integers(0, 1000)))
def test_no_caller_is_ever_left_in_silence(code, at, available, longest):
    state = QueueState(None if longest is None else timedelta(seconds=longest), available)
    centre = DIRECTORY.centres[code]
    answer = answers.incoming(centre, DIRECTORY, at, lambda: dict.fromkeys(DIRECTORY.centres, state))
    assert isinstance(answer.steps[0], Say)
    last = answer.steps[-1]
    assert isinstance(last, (Menu, Enqueue)) or (isinstance(last, Hangup) and answer.steps[-2] == Say(ADVICE)) \
        or ADVICE in answer.steps[-2].text
    if isinstance(last, Hangup) and not centre.calendar.is_open(at):
        assert answer.kind == answers.OUT_OF_HOURS


def test_a_hang_up_in_the_queue_is_abandoned_only_after_more_than_the_threshold():
    five = timedelta(seconds=5)
    assert end_in_queue(five, five) == SHORT_ABANDON
    assert end_in_queue(five + timedelta(microseconds=1), five) == ABANDONED


def test_call_statuses_only_move_on():
    assert status_moves_on(None, "ringing") and status_moves_on("in-progress", "completed")
    assert not status_moves_on("completed", "in-progress") and not status_moves_on("completed", "failed")
    assert not status_moves_on("completed", "made-up")


@pytest.mark.parametrize(("late", "dated"), [
    (0.0, 0.0),    # now is the reading itself
    (0.5, 0.5),    # within Twilio's second: ipoa's own clock is the finer reading
    (1.0, 1.0),    # the end of the second still counts as on time
    (1.001, 0.5),  # later: the middle of the second Twilio rounded down
    (40, 0.5),
    (-3, -3),      # a reading after now (a QueueTime longer than the wait) is capped at now
])
def test_a_whole_second_twilio_reading_is_dated_by_now_within_its_second_else_its_middle(late, dated):
    reading = MONDAY_10 + timedelta(seconds=5)
    assert twilio_dated(reading, reading + timedelta(seconds=late)) == reading + timedelta(seconds=dated)


@pytest.mark.parametrize("reading", [datetime.max.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC) - timedelta(
    milliseconds=500), datetime.min.replace(tzinfo=UTC)])
def test_a_twilio_reading_at_either_end_of_the_calendar_never_overflows(reading):
    assert twilio_dated(reading, MONDAY_10) == (MONDAY_10 if reading > MONDAY_10 else reading + timedelta(
        milliseconds=500))


def test_a_waiting_caller_overflowing_into_another_queue_says_when_they_first_joined():
    """Twilio's QueueTime restarts at the overflow's <Enqueue>: its action needs how long after first joining
    that was, as a caller back in the queue's does (answers.back_in_queue)."""
    after = answers.after_leaving(line("CNH"), DIRECTORY, MONDAY_10, rejoined=timedelta(seconds=200.25))
    assert after.kind == answers.OVERFLOW_QUEUE and after.steps == (Enqueue("CHS", 200250),)
    again = answers.after_leaving(line("CNH"), DIRECTORY, MONDAY_10, overflowed=True, rejoined=timedelta(seconds=9))
    assert again.steps == (Enqueue("CNH", 9000),)
    first = answers.to_queue(line("CNH"), DIRECTORY, MONDAY_10, {"CNH": QueueState(timedelta(seconds=181), 1)})
    assert first.steps[-1] == Enqueue("CHS")  # a new caller joins a queue for the first time: QueueTime is right


def test_the_dial_result_names_the_answer_it_ends():
    """Answer's <Dial> (web/twiml.bridge_twiml, built once phone_calls.bridge has made the answer) names it in
    its action's URL: who, percent-encoded, so safe in the URL and in the XML attribute alike, and when, in
    whole milliseconds since 1970 (rounded down), as the dial result reads them back."""
    at = MONDAY_10 + timedelta(microseconds=123_456)
    twiml = bridge_twiml("client:h_1", "https://x/", by="h&o w<n", at=at)
    assert ('<Dial action="https://x/webhooks/twilio/voice/dial-result?by=h%26o%20w%3Cn&amp;at=1795428000123" '
            'method="POST" timeout="30"><Client>h_1</Client></Dial>') in twiml
    action = ElementTree.fromstring(twiml).find("Dial").get("action")
    assert parse_qs(urlsplit(action).query) == {"by": ["h&o w<n"], "at": ["1795428000123"]}
    assert answers.answer_ms(at) == 1795428000123 and answers.answer_from_ms(1795428000123) == MONDAY_10 + \
        timedelta(milliseconds=123)


def _wait(centre, *, available=handlers_not_asked, overflowed=False, at=MONDAY_10, waited=10):
    return answers.waiting(centre, DIRECTORY, at, waited=timedelta(seconds=waited), position=1, expected=None,
                           overflowed=overflowed, handlers_available=available)


def test_a_waiting_caller_is_moved_on_once_nobody_is_available_if_the_line_says_so():
    """Issue 15 point 4, for a caller already waiting: with `when_nobody_available`, the wait URL's answer moves
    them to the open overflow centre once none of the centre's handlers is taking calls, told as for the wait
    threshold. Never a caller who overflowed already (they overflow once), never to a closed centre; and the
    handlers available are read only when the answer turns on them."""
    cnh = line("CNH", overflow=Overflow("CHS", "queue", None, True))
    moved = _wait(cnh, available=lambda: 0)
    assert moved.steps == (Say("We are sorry to keep you waiting. We are putting you through to the Community "
                               "Health Services single point of access."), Leave())
    assert (moved.kind, moved.queue) == (answers.LEAVING, "CNH")
    after = answers.after_leaving(cnh, DIRECTORY, MONDAY_10, rejoined=timedelta(seconds=10))
    assert (after.kind, after.steps) == (answers.OVERFLOW_QUEUE, (Enqueue("CHS", 10000),))
    assert _wait(cnh, available=lambda: 1).kind == answers.WAITING
    assert _wait(cnh, overflowed=True).kind == answers.WAITING  # overflows once
    assert _wait(line("CNH")).kind == answers.WAITING  # the shipped line overflows on the wait alone
    to_closed = line("CNH", overflow=Overflow("FCP", "queue", None, True))  # First Contact Plus: office hours
    assert _wait(to_closed, at=MONDAY_22).kind == answers.WAITING
    both = line("CNH", overflow=Overflow("CHS", "queue", 180, True))
    assert _wait(both, waited=181).kind == answers.LEAVING  # past the threshold: nothing more to read
    closing = line("ASC", overflow=Overflow("CNH", "queue", None, True))
    assert _wait(closing, at=MONDAY_17).steps == (Say("We are sorry to keep you waiting."), Leave())


@pytest.mark.parametrize("code", sorted(DIRECTORY.centres))
@given(at=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)),
       available=st.integers(0, 3), waited=st.integers(0, 1000), when_nobody=st.booleans(),
       threshold=st.one_of(st.none(), st.integers(1, 600)), overflowed=st.booleans())
def test_the_wait_url_moves_a_caller_on_exactly_when_the_overflow_applies_to_them(code, at, available, waited,
                                                                                  when_nobody, threshold, overflowed):
    """Out of the queue (<Leave>) once the centre has closed; else exactly when the caller has not overflowed
    already, the overflow centre is known and open, and their own wait has passed the threshold or (with
    `when_nobody_available`) no handler is available. The handlers available are asked for only when that is
    what the answer turns on."""
    centre = DIRECTORY.centres[code]
    if centre.voice is None:
        return
    for target in ("CNH", "CHS", "FCP", "XYZ"):  # always open (both), office hours, unknown
        if target == code:
            continue
        asked: list[int] = []

        def handlers(asked=asked) -> int:
            asked.append(1)
            return available

        answer = _wait(line(code, overflow=Overflow(target, "queue", threshold, when_nobody)), at=at,
                       waited=waited, overflowed=overflowed, available=handlers)
        open_now = centre.calendar.is_open(at)
        applies = (open_now and not overflowed and target in DIRECTORY.centres
                   and DIRECTORY.centres[target].calendar.is_open(at))
        too_long = threshold is not None and waited > threshold
        assert bool(asked) == (applies and when_nobody and not too_long)
        moved = not open_now or (applies and (too_long or (when_nobody and available == 0)))
        assert (answer.kind == answers.LEAVING) == moved and (answer.steps[-1] == Leave()) == moved


def test_a_leave_that_crossed_answer_puts_the_caller_back_in_their_queue_without_a_word():
    """The enqueue's `leave` came while Answer held the caller (service/phone_calls._overflowing): back into the
    queue they are in, saying how long after first joining it (Twilio's QueueTime restarts there), with no words
    and no hang-up, for Answer's redirect to find them."""
    back = answers.still_in_queue("CNH", timedelta(seconds=181.5))
    assert back.steps == (Enqueue("CNH", 181500),) and (back.kind, back.queue) == (answers.QUEUED, "CNH")


def test_a_leg_is_held_by_answer_from_the_answer_until_twilio_takes_it_out_of_the_queue():
    waiting = PhoneLeg("CA" + "0" * 32, "CNH", MONDAY_10, None, queue="CNH", enqueued_at=MONDAY_10,
                       queue_joined_at=MONDAY_10)
    assert waiting.in_queue and not waiting.held_by_answer
    held = replace(waiting, answered_at=MONDAY_10 + timedelta(seconds=30), answered_by="handler", outcome="answered")
    assert held.held_by_answer and not held.in_queue
    assert not replace(held, left_queue_at=held.answered_at).held_by_answer  # redirected: with the handler
    assert not replace(held, hung_up_at=held.answered_at).held_by_answer  # hung up meanwhile (_unanswer)
