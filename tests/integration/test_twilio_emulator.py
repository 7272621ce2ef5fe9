"""The Twilio emulator, driven by the real `twilio` client through a host-rewriting http client (as the
product's SMS gateway is) and by plain `requests`; webhooks land on a tiny local server that checks signatures
the way the app must."""
from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from tests.twilio_emulator import TwilioEmulator, segments

ACCOUNT = "AC" + "1f" * 16
TOKEN = "emulator-auth-token"
SENDER = "+447700900000"
TO = "+447700900123"
OTHER = "+447700900456"
SERVICE = "MG" + "ab" * 16


class EmulatorHttpClient(TwilioHttpClient):
    """Sends every https://*.twilio.com request to the emulator instead, keeping path and query."""

    def __init__(self, base_url: str, timeout: float = 5.0):
        super().__init__(timeout=timeout)  # the default is None: wait forever
        self.base_url = base_url.rstrip("/")
        self.session.trust_env = False  # no environment proxy between us and 127.0.0.1

    def request(self, method, url, *args, **kwargs):
        parts = urlsplit(url)
        if parts.scheme == "https" and (parts.hostname or "").endswith(".twilio.com"):
            url = self.base_url + parts.path + (f"?{parts.query}" if parts.query else "")
        return super().request(method, url, *args, **kwargs)


class Receiver:
    """A local webhook endpoint: records each POST and checks its signature against `public_base + path`."""

    def __init__(self, token: str = TOKEN, public_base: str | None = None, reply: str = ""):
        self.calls: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
                url = (public_base or receiver.base_url) + self.path
                valid = RequestValidator(token).validate(url, form, self.headers.get("X-Twilio-Signature", ""))
                receiver.calls.append({"path": self.path, "form": form, "valid": valid})
                body = (reply if valid else "invalid signature").encode()
                self.send_response(204 if valid and not body else 200 if valid else 403)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def emulator():
    with TwilioEmulator(ACCOUNT, TOKEN, api_keys={"SK" + "2e" * 16: "key-secret"}) as emu:
        yield emu


@pytest.fixture
def client(emulator):
    return Client(ACCOUNT, TOKEN, http_client=EmulatorHttpClient(emulator.base_url, timeout=3))


@pytest.fixture
def receiver():
    rec = Receiver()
    yield rec
    rec.close()


def test_create_answers_a_queued_message_the_client_parses(client, emulator, receiver):
    msg = client.messages.create(to=TO, from_=SENDER, body="Your call-back is booked",
                                 status_callback=f"{receiver.base_url}/sms/status?k=1", validity_period=600)
    assert msg.sid.startswith("SM") and len(msg.sid) == 34
    assert (msg.status, msg.to, msg.from_, msg.body) == ("queued", TO, SENDER, "Your call-back is booked")
    assert (msg.account_sid, msg.num_segments, msg.error_code, msg.date_sent) == (ACCOUNT, "1", None, None)
    assert msg.uri == f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{msg.sid}.json"
    assert abs(msg.date_created - datetime.now(UTC)) < timedelta(seconds=5)  # parsed from RFC 2822
    [stored] = emulator.messages
    assert (stored.sid, stored.to, stored.from_, stored.status_callback, stored.validity_period) == (
        msg.sid, TO, SENDER, f"{receiver.base_url}/sms/status?k=1", 600)
    assert stored.received_at <= time.monotonic() and stored.received_wall.tzinfo is UTC


def test_messaging_service_gives_accepted(client, emulator):
    msg = client.messages.create(to=TO, messaging_service_sid=SERVICE, body="hi")
    assert (msg.status, msg.messaging_service_sid, msg.from_) == ("accepted", SERVICE, None)


@pytest.mark.parametrize("body, expected", [
    ("x", 1), ("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3),
    ("€" * 80, 1), ("€" * 81, 2),  # GSM-7 extension characters cost two septets
    ("é" * 160, 1), ("ć" * 70, 1), ("ć" * 71, 2), ("ć" * 134, 2), ("ć" * 135, 3),  # ć is not GSM-7: UCS-2
    ("😀" * 35, 1), ("😀" * 36, 2),  # an emoji is two UTF-16 units
])
def test_segments(body, expected):
    assert segments(body) == expected


def test_num_segments_reported_on_the_resource(client):
    assert client.messages.create(to=TO, from_=SENDER, body="a" * 200).num_segments == "2"
    assert client.messages.create(to=TO, from_=SENDER, body="Zoë 😀").num_segments == "1"


@pytest.mark.parametrize("fault", [
    ("error", 429, 20429, "Too Many Requests"),
    ("error", 400, 21211, "The 'To' number is not a valid phone number."),
    ("error", 400, 21610, "Attempt to send to unsubscribed recipient"),
    ("error", 400, 21614, "'To' number is not a valid mobile number"),
    ("error", 500, 20500, "Internal Server Error"),
    ("error", 503, 20503, "Service Unavailable"),
])
def test_scripted_errors_surface_as_twilio_rest_exceptions(client, emulator, fault):
    emulator.script(TO, [fault])
    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(to=TO, from_=SENDER, body="hi")
    assert (caught.value.status, caught.value.code) == fault[1:3]
    assert caught.value.msg == f"Unable to create record: {fault[3]}"  # the client prefixes Twilio's message
    assert emulator.messages == []
    assert client.messages.create(to=TO, from_=SENDER, body="hi").status == "queued"  # the script is used up


def test_faults_are_per_destination_and_in_order(client, emulator):
    emulator.script(TO, [("error", 429, 20429), ("error", 503, 20503, "Service Unavailable")])
    assert client.messages.create(to=OTHER, from_=SENDER, body="unaffected").status == "queued"
    codes = []
    for _ in range(3):
        try:
            codes.append(client.messages.create(to=TO, from_=SENDER, body="hi").status)
        except TwilioRestException as exc:
            codes.append(exc.code)
    assert codes == [20429, 20503, "queued"]
    assert [(a.to, a.outcome) for a in emulator.attempts] == [
        (OTHER, "201"), (TO, "429"), (TO, "503"), (TO, "201")]
    with pytest.raises(ValueError):
        emulator.script(TO, [("explode",)])


@pytest.mark.parametrize("kwargs, status, code", [
    ({"to": "", "from_": SENDER, "body": "hi"}, 400, 21604),
    ({"to": TO, "from_": SENDER}, 400, 21602),
    ({"to": TO, "body": "hi"}, 400, 21603),
    ({"to": "07700 900123", "from_": SENDER, "body": "hi"}, 400, 21211),
    ({"to": TO, "from_": SENDER, "body": "hi", "validity_period": 36001}, 400, 21624),
])
def test_validation_like_twilio(client, emulator, kwargs, status, code):
    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(**kwargs)
    assert (caught.value.status, caught.value.code) == (status, code)
    assert emulator.messages == []


def test_delay_times_out_the_client_but_the_message_exists(emulator):
    impatient = Client(ACCOUNT, TOKEN, http_client=EmulatorHttpClient(emulator.base_url, timeout=0.3))
    emulator.script(TO, [("delay", 2)])
    started = time.monotonic()
    with pytest.raises(requests.exceptions.Timeout):
        impatient.messages.create(to=TO, from_=SENDER, body="lost answer")
    assert time.monotonic() - started < 1.5
    [msg] = emulator.wait_for(1, timeout=1)
    assert msg.body == "lost answer"
    # The next request, on a fresh connection, is answered normally and can find the "lost" message.
    assert impatient.messages.list(to=TO)[0].sid == msg.sid


def test_answer_delay_holds_every_create_but_a_scripted_fault_takes_its_place(emulator, client):
    """answer_delay: each create is stored at once and answered that much later (Twilio's own answer time,
    for bench/sms.py); a scripted fault for a create replaces it; other requests are not held."""
    emulator.answer_delay = 0.5
    started = time.monotonic()
    first = client.messages.create(to=TO, from_=SENDER, body="held")
    assert 0.5 <= time.monotonic() - started < 2.5
    assert emulator.attempts[-1].outcome == "201"
    emulator.script(TO, [("error", 500, 20500)])
    started = time.monotonic()
    with pytest.raises(TwilioRestException):
        client.messages.create(to=TO, from_=SENDER, body="refused")
    assert time.monotonic() - started < 0.45
    started = time.monotonic()
    assert client.messages(first.sid).fetch().body == "held"
    assert time.monotonic() - started < 0.45
    emulator.answer_delay = 0.0
    started = time.monotonic()
    client.messages.create(to=TO, from_=SENDER, body="at once")
    assert time.monotonic() - started < 0.45


def test_accept_then_drop_closes_without_answer(client, emulator):
    emulator.script(TO, [("accept_then_drop",)])
    with pytest.raises(requests.exceptions.ConnectionError):
        client.messages.create(to=TO, from_=SENDER, body="dropped")
    assert [m.body for m in emulator.messages] == ["dropped"]
    assert emulator.attempts[-1].outcome == "dropped"
    assert client.messages.create(to=TO, from_=SENDER, body="again").status == "queued"


def test_fail_all_with_until_reset(client, emulator):
    emulator.fail_all_with(("error", 503, 20503, "Service Unavailable"))
    for to in (TO, OTHER):
        with pytest.raises(TwilioRestException) as caught:
            client.messages.create(to=to, from_=SENDER, body="hi")
        assert caught.value.status == 503
    with pytest.raises(TwilioException) as caught:  # list pages fail as the base class, not TwilioRestException
        client.messages.list(to=TO)
    assert caught.value.args[1].status_code == 503
    emulator.reset_faults()
    assert client.messages.create(to=TO, from_=SENDER, body="hi").status == "queued"


def test_list_with_filters_and_paging(client, emulator):
    first = client.messages.create(to=TO, from_=SENDER, body="one")
    client.messages.create(to=OTHER, from_=SENDER, body="two")
    third = client.messages.create(to=TO, from_=SENDER, body="three")
    now = datetime.now(UTC)
    assert [m.sid for m in client.messages.list(to=TO)] == [third.sid, first.sid]  # newest first
    assert len(client.messages.list(from_=SENDER)) == 3
    assert len(client.messages.list(to=TO, date_sent_after=now - timedelta(hours=1))) == 2
    assert client.messages.list(to=TO, date_sent_before=now - timedelta(days=1)) == []
    # Paging: the client follows next_page_uri (absolute https://api.twilio.com/..., rewritten by the http client).
    assert [m.body for m in client.messages.list(to=TO, page_size=1)] == ["three", "one"]
    # Twilio's documented date-only form.
    today = now.date().isoformat()
    page = requests.get(f"{emulator.base_url}/2010-04-01/Accounts/{ACCOUNT}/Messages.json",
                        params={"To": TO, "DateSent>": today, "PageSize": 1}, auth=(ACCOUNT, TOKEN), timeout=3).json()
    assert [m["body"] for m in page["messages"]] == ["three"]
    assert (page["page"], page["page_size"], page["start"], page["end"]) == (0, 1, 0, 0)
    assert "Page=1" in page["next_page_uri"] and page["previous_page_uri"] is None
    yesterday = (now - timedelta(days=1)).date().isoformat()
    assert client.messages.list(date_sent=yesterday) == []


def test_fetch_by_sid(client):
    sid = client.messages.create(to=TO, from_=SENDER, body="fetch me").sid
    assert client.messages(sid).fetch().body == "fetch me"
    with pytest.raises(TwilioRestException) as caught:
        client.messages("SM" + "0" * 32).fetch()
    assert (caught.value.status, caught.value.code) == (404, 20404)


def test_bad_credentials_get_401(emulator):
    wrong = Client(ACCOUNT, "wrong-token", http_client=EmulatorHttpClient(emulator.base_url))
    with pytest.raises(TwilioRestException) as caught:
        wrong.messages.create(to=TO, from_=SENDER, body="hi")
    assert (caught.value.status, caught.value.code) == (401, 20003)
    answer = requests.get(f"{emulator.base_url}/2010-04-01/Accounts/{ACCOUNT}/Messages.json", timeout=3)
    assert answer.status_code == 401 and answer.headers["WWW-Authenticate"].startswith("Basic")
    assert set(answer.json()) >= {"code", "message", "more_info", "status"}
    assert emulator.messages == [] and emulator.requests == 2


def test_api_key_credentials(emulator):
    keyed = Client("SK" + "2e" * 16, "key-secret", ACCOUNT, http_client=EmulatorHttpClient(emulator.base_url))
    assert keyed.messages.create(to=TO, from_=SENDER, body="via key").status == "queued"
    other_account = Client(ACCOUNT.replace("1f", "2f"), TOKEN, http_client=EmulatorHttpClient(emulator.base_url))
    with pytest.raises(TwilioRestException) as caught:
        other_account.messages.create(to=TO, from_=SENDER, body="hi")
    assert caught.value.status == 401


def test_wait_for_counts_concurrent_senders(emulator):
    def send(i):  # the client is not documented as thread-safe: one per thread
        Client(ACCOUNT, TOKEN, http_client=EmulatorHttpClient(emulator.base_url)).messages.create(
            to=f"+4477009001{i:02d}", from_=SENDER, body=f"n{i}")

    threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    assert len(emulator.wait_for(8, timeout=5)) == 8
    for t in threads:
        t.join()
    assert len({m.sid for m in emulator.messages}) == 8
    with pytest.raises(AssertionError):
        emulator.wait_for(9, timeout=0.2)


def test_signed_status_callbacks(client, emulator, receiver):
    sid = client.messages.create(to=TO, from_=SENDER, body="hi",
                                 status_callback=f"{receiver.base_url}/sms/status?centre=north").sid
    assert emulator.send_status(sid, "sent") == 204
    assert emulator.send_status(sid, "undelivered", error_code=30003) == 204
    assert emulator.send_status(sid, "delivered", auth_token="not-the-token") == 403
    assert emulator.send_status(sid, "delivered", sign=False) == 403
    assert [c["valid"] for c in receiver.calls] == [True, True, False, False]
    sent, undelivered = receiver.calls[0]["form"], receiver.calls[1]["form"]
    assert receiver.calls[0]["path"] == "/sms/status?centre=north"
    assert sent == {"MessageSid": sid, "SmsSid": sid, "MessageStatus": "sent", "SmsStatus": "sent",
                    "AccountSid": ACCOUNT, "To": TO, "From": SENDER, "ApiVersion": "2010-04-01"}
    assert (undelivered["MessageStatus"], undelivered["ErrorCode"]) == ("undelivered", "30003")
    fetched = client.messages(sid).fetch()  # the resource follows the callbacks
    assert (fetched.status, fetched.error_code) == ("delivered", None) and fetched.date_sent is not None


def test_deliver_all(client, emulator, receiver):
    for to in (TO, OTHER):
        client.messages.create(to=to, from_=SENDER, body="hi", status_callback=f"{receiver.base_url}/cb")
    client.messages.create(to=TO, from_=SENDER, body="no callback")
    assert emulator.deliver_all() == [204] * 4
    assert [c["form"]["MessageStatus"] for c in receiver.calls] == ["sent", "delivered"] * 2
    assert emulator.deliver_all() == []  # delivered is final


def test_signed_inbound_sms():
    rec = Receiver(reply="<Response><Message>Thanks</Message></Response>")
    try:
        with TwilioEmulator(ACCOUNT, TOKEN) as emu:
            status, text = emu.inbound(f"{rec.base_url}/sms/inbound", from_=TO, to=SENDER, body="STOP")
            assert (status, text) == (200, "<Response><Message>Thanks</Message></Response>")
            form = rec.calls[0]["form"]
            assert form["MessageSid"].startswith("SM") and form["SmsSid"] == form["MessageSid"]
            assert (form["From"], form["To"], form["Body"], form["NumMedia"], form["AccountSid"]) == (
                TO, SENDER, "STOP", "0", ACCOUNT)
            assert emu.inbound(f"{rec.base_url}/sms/inbound", TO, SENDER, "x", sid="SM" + "9" * 32,
                               auth_token="wrong")[0] == 403
            assert emu.inbound(f"{rec.base_url}/sms/inbound", TO, SENDER, "x", sign=False)[0] == 403
            assert rec.calls[1]["form"]["MessageSid"] == "SM" + "9" * 32
    finally:
        rec.close()


def test_callbacks_signed_for_the_public_url_behind_a_proxy():
    public = "https://ipoa.example.org"
    rec = Receiver(public_base=public)
    try:
        with TwilioEmulator(ACCOUNT, TOKEN, callback_base_url=rec.base_url) as emu:
            client = Client(ACCOUNT, TOKEN, http_client=EmulatorHttpClient(emu.base_url))
            sid = client.messages.create(to=TO, from_=SENDER, body="hi",
                                         status_callback=f"{public}/sms/status?x=1").sid
            assert emu.send_status(sid, "delivered") == 204
            assert rec.calls[0]["path"] == "/sms/status?x=1" and rec.calls[0]["valid"]
    finally:
        rec.close()


def test_webhooks_never_leave_loopback(client, emulator):
    sid = client.messages.create(to=TO, from_=SENDER, body="hi", status_callback="https://ipoa.example.org/cb").sid
    with pytest.raises(ValueError, match="off this machine"):
        emulator.send_status(sid, "sent")
    with pytest.raises(ValueError):
        emulator.inbound("http://10.0.0.1/sms", TO, SENDER, "hi")


def test_injected_clock_dates_messages(emulator):
    emulator.clock = lambda: datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    client = Client(ACCOUNT, TOKEN, http_client=EmulatorHttpClient(emulator.base_url))
    msg = client.messages.create(to=TO, from_=SENDER, body="hi")
    assert msg.date_created == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert len(client.messages.list(date_sent_after=datetime(2026, 11, 23, tzinfo=UTC))) == 1
    assert client.messages.list(date_sent_after=datetime(2026, 11, 24, tzinfo=UTC)) == []


def test_reset_and_stop_with_a_pending_delay(emulator, client):
    client.messages.create(to=TO, from_=SENDER, body="hi")
    emulator.reset()
    assert (emulator.messages, emulator.requests, emulator.attempts) == ([], 0, [])
    emulator.script(TO, [("delay", 30)])
    slow = Client(ACCOUNT, TOKEN, http_client=EmulatorHttpClient(emulator.base_url, timeout=0.2))
    with pytest.raises(requests.exceptions.Timeout):
        slow.messages.create(to=TO, from_=SENDER, body="slow")
    started = time.monotonic()
    emulator.stop()  # wakes the sleeping handler instead of waiting 30 s
    assert time.monotonic() - started < 3
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(emulator.base_url, timeout=1)
