"""What the twilio client's HTTP layer (ipoa/adapters/twilio_http.py) puts on the wire, against twilio's own
requests-based client making the same calls: the same method, path, query, form, credentials and content
type, to a local server that records each request and answers as Twilio would. And what the gateways make
of a Twilio that cannot be reached or does not answer in time: an error they can retry, naming no number."""
from __future__ import annotations

import json
import socket
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from ipoa.adapters.sms_gateway import TransientSmsError, TwilioGateway
from ipoa.adapters.twilio_http import TwilioHttp
from ipoa.adapters.voice_gateway import TwilioVoiceGateway, VoiceGatewayError
from tests.twilio_emulator import TwilioEmulator

ACCOUNT = "AC" + "3c" * 16
TOKEN = "wire-auth-token"
CALL = "CA" + "4d" * 16
NUMBER = "+447700900123"
MESSAGE = {"sid": "SM" + "5e" * 16, "status": "queued", "account_sid": ACCOUNT, "to": NUMBER,
           "body": "x", "date_created": "Sat, 05 Dec 2026 10:00:00 +0000"}


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[dict] = []

    def _answer(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen.append({"method": self.command, "target": self.path, "body": body,
                          "headers": {k.lower(): v for k, v in self.headers.items()}})
        path = urlsplit(self.path).path
        if path.endswith("Messages.json") and self.command == "GET":
            payload = {"messages": [MESSAGE], "next_page_uri": None, "page": 0, "page_size": 50}
        elif "/Calls/" in path:
            payload = {"sid": CALL, "status": "in-progress", "account_sid": ACCOUNT}
        else:
            payload = MESSAGE
        out = json.dumps(payload).encode()
        self.send_response(200 if self.command == "GET" or "/Calls/" in path else 201)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def recorder(monkeypatch):
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    handler = type("Recorder", (_Recorder,), {"seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield server, handler.seen
    finally:
        server.shutdown()
        server.server_close()


class _TwiliosOwn(TwilioHttpClient):
    """twilio's requests-based client, its Twilio requests sent to the recorder instead."""

    def __init__(self, base_url: str):
        super().__init__(timeout=5)
        self.base_url = base_url
        self.session.trust_env = False

    def request(self, method, url, *args, **kwargs):
        parts = urlsplit(url)
        url = self.base_url + parts.path + (f"?{parts.query}" if parts.query else "")
        return super().request(method, url, *args, **kwargs)


def _calls(client: Client):
    """The calls the gateways make: a text, the search for one already sent, a live call redirected."""
    message = client.messages.create(to=NUMBER, from_="+441632960999", body="Café & 50% — ACCEPT?",
                                     status_callback="https://ipoa.example/webhooks/twilio/sms/status?a=1&b=2")
    found = client.messages.list(to=NUMBER, date_sent_after=datetime(2026, 12, 5, tzinfo=UTC).date(), limit=50)
    call = client.calls(CALL).update(twiml="<Response><Dial>+441632960101</Dial></Response>")
    return message.sid, message.status, [m.sid for m in found], call.sid


def _wire(seen: list[dict]) -> list[tuple]:
    out = []
    for r in seen:
        target = urlsplit(r["target"])
        out.append((r["method"], target.path, sorted(parse_qsl(target.query)), r["body"], r["headers"]["authorization"],
                    r["headers"].get("content-type"), r["headers"].get("user-agent"), r["headers"].get("accept")))
    return out


def test_the_same_calls_put_the_same_requests_on_the_wire_as_twilios_own_client(recorder):
    server, seen = recorder
    base = f"http://127.0.0.1:{server.server_address[1]}"
    ours = _calls(Client(ACCOUNT, TOKEN, http_client=TwilioHttp(base, 5)))
    ours_wire = _wire(seen)
    seen.clear()
    theirs = _calls(Client(ACCOUNT, TOKEN, http_client=_TwiliosOwn(base)))
    assert ours == theirs == (MESSAGE["sid"], "queued", [MESSAGE["sid"]], CALL)
    assert ours_wire == _wire(seen)
    assert [w[0] for w in ours_wire] == ["POST", "GET", "POST"]
    assert ours_wire[1][2] and ours_wire[0][5] == "application/x-www-form-urlencoded"
    assert ours_wire[0][4].startswith("Basic ")


def test_through_a_proxy_from_the_environment_with_its_credentials(recorder, monkeypatch):
    server, seen = recorder
    monkeypatch.setenv("HTTP_PROXY", f"http://trust%40user:s3cret@127.0.0.1:{server.server_address[1]}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = Client(ACCOUNT, TOKEN, http_client=TwilioHttp("http://twilio-staging.invalid:8080", 5))
    assert client.messages.create(to=NUMBER, from_="+441632960999", body="x").sid == MESSAGE["sid"]
    (request,) = seen
    # The proxy is asked for the absolute URL (the staging host never resolved here), with its credentials.
    assert request["target"].startswith("http://twilio-staging.invalid:8080/2010-04-01/Accounts/")
    assert request["headers"]["proxy-authorization"] == "Basic dHJ1c3RAdXNlcjpzM2NyZXQ="  # trust@user:s3cret


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_a_twilio_that_cannot_be_reached_is_a_transient_error_naming_no_number():
    gateway = TwilioGateway(account_sid=ACCOUNT, auth_token=TOKEN, from_="+441632960999",
                            api_base_url=_closed_port(), timeout=2)
    with pytest.raises(TransientSmsError) as refused:
        gateway.send(NUMBER, "Details: https://ipoa.example/r/abc")
    assert refused.value.maybe_sent and NUMBER not in str(refused.value) and "900123" not in str(refused.value)
    with pytest.raises(TransientSmsError, match="cannot check"):
        gateway.find_submitted(NUMBER, "x", datetime.now(UTC))
    voice = TwilioVoiceGateway(account_sid=ACCOUNT, auth_token=TOKEN, api_base_url=_closed_port(), timeout=2)
    with pytest.raises(VoiceGatewayError, match="could not be reached"):
        voice.redirect(CALL, "<Response/>")


def test_a_twilio_that_does_not_answer_in_time_is_a_transient_error_that_may_have_sent():
    with TwilioEmulator(account_sid=ACCOUNT, auth_token=TOKEN) as emulator:
        emulator.script(NUMBER, [("delay", 3)])
        gateway = TwilioGateway(account_sid=ACCOUNT, auth_token=TOKEN, from_="+441632960999",
                                api_base_url=emulator.base_url, timeout=0.3)
        with pytest.raises(TransientSmsError) as late:
            gateway.send(NUMBER, "Details: https://ipoa.example/r/abc")
        assert late.value.maybe_sent and "Timeout" in str(late.value)
        emulator.wait_for(1, timeout=5)  # it was created all the same: why the retry asks first
        # The pool's next send gets a connection that works.
        assert gateway.send(NUMBER, "again").status == "queued"
