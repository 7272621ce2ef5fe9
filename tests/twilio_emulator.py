"""A small local stand-in for Twilio's Messages REST API and for Twilio's webhooks, for the test suite.

The SMS gateway reaches it through TWILIO_API_BASE_URL (a TwilioHttpClient subclass rewrites https://*.twilio.com to
`base_url`), so the real `twilio` client builds every request and parses every answer exactly as in production.
Only loopback is ever contacted: the server binds 127.0.0.1 and webhooks refuse any other host.

    with TwilioEmulator(account_sid, auth_token) as twilio:
        twilio.script("+447700900001", [("error", 429, 20429, "Too Many Requests")])
        ...  # the app sends; its first attempt gets 429, the retry succeeds
        [msg] = twilio.wait_for(1)
        assert twilio.send_status(msg.sid, "delivered") == 204
"""
from __future__ import annotations

import base64
import hmac
import json
import math
import operator
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from twilio.request_validator import RequestValidator

API_VERSION = "2010-04-01"
ROUTE = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages(?:/(?P<sid>[^/]+))?\.json$")
E164 = re.compile(r"^\+[1-9]\d{1,14}$")
GSM7 = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
           "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXT = set("^{}\\[~]|€\f")  # escape + character: two septets each
FAULT_KINDS = {"error": (3, 4), "delay": (2,), "accept_then_drop": (1,)}
FINAL = {"delivered", "undelivered", "failed", "canceled"}


def segments(body: str) -> int:
    """Segments Twilio bills for `body`: GSM-7 fits 160 septets (153 per part when split), UCS-2 70 (67)."""
    if all(c in GSM7 or c in GSM7_EXT for c in body):
        units, single, part = sum(2 if c in GSM7_EXT else 1 for c in body), 160, 153
    else:  # UTF-16 code units, so an emoji costs two
        units, single, part = len(body.encode("utf-16-le")) // 2, 70, 67
    return 1 if units <= single else math.ceil(units / part)


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def error_body(status: int, code: int, message: str) -> dict:
    # Twilio's legacy error shape: the client turns it into TwilioRestException(.status, .code, .msg).
    return {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status}


def rfc2822(when: datetime | None) -> str | None:
    return format_datetime(when.astimezone(UTC)) if when else None  # "Mon, 23 Nov 2026 10:00:00 +0000"


def parse_when(text: str) -> date:
    """`DateSent` filters: Twilio documents YYYY-MM-DD; the python client sends YYYY-MM-DDTHH:MM:SSZ."""
    return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text.replace("Z", "+00:00"))


def check_fault(fault: tuple) -> tuple:
    if not fault or fault[0] not in FAULT_KINDS or len(fault) not in FAULT_KINDS[fault[0]]:
        raise ValueError(f"unknown fault {fault!r}")
    return tuple(fault)


@dataclass
class SentMessage:
    sid: str
    account_sid: str
    to: str
    from_: str | None
    body: str
    messaging_service_sid: str | None
    status_callback: str | None
    validity_period: int | None
    status: str
    date_created: datetime  # from the emulator's clock (injectable)
    received_at: float      # time.monotonic(): for measuring rates and back-off gaps
    received_wall: datetime  # real UTC wall time
    error_code: int | None = None
    date_sent: datetime | None = None
    date_updated: datetime | None = None

    def resource(self) -> dict:
        """The Message resource as api.twilio.com answers it (numbers are strings there too)."""
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}"
        return {"account_sid": self.account_sid, "api_version": API_VERSION, "body": self.body,
                "date_created": rfc2822(self.date_created), "date_sent": rfc2822(self.date_sent),
                "date_updated": rfc2822(self.date_updated or self.date_created), "direction": "outbound-api",
                "error_code": self.error_code, "error_message": None, "from": self.from_,
                "messaging_service_sid": self.messaging_service_sid, "num_media": "0",
                "num_segments": str(segments(self.body)), "price": None, "price_unit": "USD", "sid": self.sid,
                "status": self.status, "subresource_uris": {"media": f"{uri}/Media.json"}, "to": self.to,
                "uri": f"{uri}.json"}


@dataclass(frozen=True)
class Attempt:
    """One Messages create request, whatever became of it: lets tests assert retry counts and back-off gaps."""
    to: str
    at: float       # time.monotonic() when the request arrived
    outcome: str    # "201", "429", "400", ..., or "dropped"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive like api.twilio.com, so the client's pooled connections are exercised
    timeout = 30                   # idle keep-alive connections end on their own
    emulator: TwilioEmulator       # set on a per-instance subclass

    def setup(self):
        super().setup()
        self.emulator._track(self.connection, add=True)

    def finish(self):
        self.emulator._track(self.connection, add=False)
        try:
            super().finish()
        except OSError:
            pass

    def do_GET(self):
        self.emulator._dispatch(self, "GET")

    def do_POST(self):
        self.emulator._dispatch(self, "POST")

    def log_message(self, *args):  # keep pytest output clean
        pass


class TwilioEmulator:
    def __init__(self, account_sid: str = "AC" + "0" * 32, auth_token: str = "test-auth-token", *,
                 api_keys: dict[str, str] | None = None, clock=None, callback_base_url: str | None = None,
                 webhook_timeout: float = 10.0, answer_delay: float = 0.0):
        self.account_sid, self.auth_token = account_sid, auth_token
        # Seconds each message create waits before it is answered (the message stored first), unless a fault
        # is scripted for it: Twilio's API answers in tens to hundreds of milliseconds, this emulator at once
        # (bench/sms.py --emulator-delay-ms).
        self.answer_delay = answer_delay
        self.api_keys = dict(api_keys or {})  # {"SK...": secret}
        self.clock = clock or (lambda: datetime.now(UTC))
        # When set, webhooks go to this base URL (path and query kept) but are signed for the URL Twilio would call,
        # as behind a reverse proxy: the app must validate against its configured public URL.
        self.callback_base_url = callback_base_url
        self.webhook_timeout = webhook_timeout
        self._lock = threading.RLock()
        self._received = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._conns: set = set()
        self._http = requests.Session()
        self._http.trust_env = False  # no proxy from the environment may carry webhooks off this machine
        self.reset()

    # -- lifecycle ------------------------------------------------------------------------------------------------
    def start(self) -> TwilioEmulator:
        handler = type("Handler", (_Handler,), {"emulator": self})
        self._stopping.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)  # port 0: the OS picks a free one
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="twilio-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # wakes scripted delays at once
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:  # idle keep-alive connections would otherwise hold their threads
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(5)
        self._server = None

    def __enter__(self) -> TwilioEmulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- scripting ------------------------------------------------------------------------------------------------
    def script(self, to: str, faults: list[tuple]) -> None:
        """Queue faults for creates to `to`, one per request, in order; then normal service resumes.
        ("error", http_status, code[, message]) | ("delay", seconds) | ("accept_then_drop",)"""
        with self._lock:
            self._scripts.setdefault(to, []).extend(check_fault(f) for f in faults)

    def fail_all_with(self, fault: tuple) -> None:
        """Every API request (create, list, fetch) meets `fault` until reset_faults(): Twilio is down."""
        with self._lock:
            self._fail_all = check_fault(fault)

    def reset_faults(self) -> None:
        with self._lock:
            self._scripts, self._fail_all = {}, None

    def reset(self) -> None:
        """Forget messages, counters and faults (between tests sharing one emulator)."""
        with self._lock:
            self._messages: list[SentMessage] = []
            self._attempts: list[Attempt] = []
            self._requests = 0
            self.reset_faults()

    # -- recording ------------------------------------------------------------------------------------------------
    @property
    def messages(self) -> list[SentMessage]:
        with self._lock:
            return list(self._messages)

    def message(self, sid: str) -> SentMessage:
        with self._lock:
            found = next((m for m in self._messages if m.sid == sid), None)
        if found is None:
            raise KeyError(sid)
        return found

    @property
    def requests(self) -> int:
        with self._lock:
            return self._requests

    @property
    def attempts(self) -> list[Attempt]:
        with self._lock:
            return sorted(self._attempts, key=lambda a: a.at)  # concurrent requests log out of order

    def wait_for(self, count: int, timeout: float = 5.0) -> list[SentMessage]:
        with self._received:
            if not self._received.wait_for(lambda: len(self._messages) >= count, timeout):
                raise AssertionError(f"expected {count} messages within {timeout}s, got {len(self._messages)}")
            return list(self._messages)

    # -- webhooks -------------------------------------------------------------------------------------------------
    def send_status(self, sid: str, status: str, error_code: int | None = None, *, sign: bool = True,
                    auth_token: str | None = None) -> int:
        """POST a status callback as Twilio would; `auth_token` signs with another (wrong) token.
        Returns the HTTP status the app answered."""
        with self._lock:
            msg, now = self.message(sid), self.clock()
            msg.status, msg.error_code, msg.date_updated = status, error_code, now
            if status in ("sent", "delivered") and msg.date_sent is None:
                msg.date_sent = now
            params = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status,
                      "AccountSid": self.account_sid, "To": msg.to, "From": msg.from_ or "", "ApiVersion": API_VERSION}
            if msg.messaging_service_sid:
                params["MessagingServiceSid"] = msg.messaging_service_sid
            if error_code is not None:
                params["ErrorCode"] = str(error_code)
            url = msg.status_callback
        if not url:
            raise ValueError(f"message {sid} has no StatusCallback")
        return self._post(url, params, sign, auth_token)[0]

    def deliver_all(self) -> list[int]:
        """sent then delivered for every unfinished message with a StatusCallback; returns the app's answers."""
        answers = []
        for msg in self.messages:
            if msg.status_callback and msg.status not in FINAL:
                answers += [self.send_status(msg.sid, "sent"), self.send_status(msg.sid, "delivered")]
        return answers

    def inbound(self, url: str, from_: str, to: str, body: str, sid: str | None = None, sign: bool = True,
                auth_token: str | None = None) -> tuple[int, str]:
        """POST an incoming SMS webhook; returns (HTTP status, response text)."""
        sid = sid or new_sid("SM")
        params = {"MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid, "AccountSid": self.account_sid,
                  "From": from_, "To": to, "Body": body, "NumMedia": "0", "NumSegments": str(segments(body)),
                  "SmsStatus": "received", "ApiVersion": API_VERSION}
        return self._post(url, params, sign, auth_token)

    def _post(self, url: str, params: dict, sign: bool, auth_token: str | None) -> tuple[int, str]:
        target = url
        if self.callback_base_url:
            parts = urlsplit(url)
            target = self.callback_base_url.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")
        if urlsplit(target).hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"refusing to send a webhook off this machine: {target}")
        headers = {"User-Agent": "TwilioProxy/1.1"}
        if sign:  # signed over the URL Twilio calls (the public one), exactly as the app must check it
            headers["X-Twilio-Signature"] = RequestValidator(auth_token or self.auth_token).compute_signature(
                url, params)
        answer = self._http.post(target, data=params, headers=headers, timeout=self.webhook_timeout,
                                 allow_redirects=False)
        return answer.status_code, answer.text

    # -- the HTTP side --------------------------------------------------------------------------------------------
    def _track(self, conn, add: bool) -> None:
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)

    def _dispatch(self, h: _Handler, method: str) -> None:
        with self._lock:
            self._requests += 1
        raw = h.rfile.read(int(h.headers.get("Content-Length") or 0)).decode()  # read fully: keep-alive
        url = urlsplit(h.path)
        form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            if not self._authorised(h.headers.get("Authorization", "")):
                body = error_body(401, 20003, "Authenticate") | {
                    "detail": "Your AccountSid or AuthToken was incorrect."}
                return self._reply(h, 401, body, {"WWW-Authenticate": 'Basic realm="Twilio API"'})
            route = ROUTE.match(url.path)
            if not route or route["account"] != self.account_sid:
                return self._reply(h, 404, error_body(404, 20404, f"The requested resource {url.path} was not found"))
            if method == "POST" and not route["sid"]:
                return self._create(h, form)
            if method != "GET":
                return self._reply(h, 405, error_body(405, 20004, "Method not allowed"))
            with self._lock:
                fault = self._fail_all
            self._answer(h, fault,
                         lambda: self._list(query, url.path) if not route["sid"] else self._fetch(route["sid"]))
        except Exception as exc:  # an emulator bug must surface as an answer, not as a hung client
            self._reply(h, 500, error_body(500, 20500, f"emulator error: {exc!r}"))

    def _authorised(self, header: str) -> bool:
        if not header.startswith("Basic "):
            return False
        try:
            user, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        expected = self.auth_token if user == self.account_sid else self.api_keys.get(user)
        return expected is not None and hmac.compare_digest(secret.encode(), expected.encode())

    def _create(self, h: _Handler, form: dict) -> None:
        to, arrived = form.get("To", ""), time.monotonic()
        with self._lock:
            queue = self._scripts.get(to)
            fault = queue.pop(0) if queue else self._fail_all
        if fault is None and self.answer_delay > 0:
            fault = ("delay", self.answer_delay)

        def log(outcome: str) -> None:
            with self._lock:
                self._attempts.append(Attempt(to, arrived, outcome))

        self._answer(h, fault, lambda: self._store(form), log)

    def _answer(self, h: _Handler, fault: tuple | None, work, log=lambda outcome: None) -> None:
        """Answer `work()` (which returns (status, payload)) through `fault`. `log` runs before the client hears
        anything, so a test that has its answer (or its error) also sees the record."""
        if fault and fault[0] == "error":
            status, code, *message = fault[1:]
            payload = error_body(status, code, message[0] if message else "Scripted error")
        else:
            status, payload = work()  # a delayed or dropped request still takes effect: a lost response
        if fault and fault[0] == "accept_then_drop":
            log("dropped")
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        log(str(status))
        if fault and fault[0] == "delay":
            self._stopping.wait(fault[1])
        self._reply(h, status, payload)

    def _store(self, form: dict) -> tuple[int, dict]:
        problem = self._invalid(form)
        if problem:
            return 400, error_body(400, *problem)
        service = form.get("MessagingServiceSid") or None
        now = self.clock()
        msg = SentMessage(sid=new_sid("SM"), account_sid=self.account_sid, to=form["To"],
                          from_=form.get("From") or None,
                          body=form["Body"], messaging_service_sid=service,
                          status_callback=form.get("StatusCallback") or None,
                          validity_period=int(form["ValidityPeriod"]) if form.get("ValidityPeriod") else None,
                          status="accepted" if service else "queued", date_created=now, received_at=time.monotonic(),
                          received_wall=datetime.now(UTC))
        with self._received:
            self._messages.append(msg)
            self._received.notify_all()
            return 201, msg.resource()

    @staticmethod
    def _invalid(form: dict) -> tuple[int, str] | None:
        to, validity = form.get("To", ""), form.get("ValidityPeriod")
        if not to:
            return 21604, "A 'To' phone number is required."
        if not E164.match(to):
            return 21211, f"The 'To' number {to} is not a valid phone number."
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return 21603, "A 'From' phone number is required."
        if not form.get("Body"):
            return 21602, "Message body is required."
        if validity is not None and not (validity.isdigit() and 1 <= int(validity) <= 36000):
            return 21624, "Invalid validity period value"
        return None

    def _fetch(self, sid: str) -> tuple[int, dict]:
        with self._lock:
            found = [m.resource() for m in self._messages if m.sid == sid]
        if not found:
            path = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json"
            return 404, error_body(404, 20404, f"The requested resource {path} was not found")
        return 200, found[0]

    def _list(self, query: dict, path: str) -> tuple[int, dict]:
        with self._lock:
            chosen = list(reversed(self._messages))  # newest first, as Twilio lists
            for key, attr in (("To", "to"), ("From", "from_")):
                if query.get(key):
                    chosen = [m for m in chosen if getattr(m, attr) == query[key]]
            for key, compare in (("DateSent", operator.eq), ("DateSent>", operator.ge), ("DateSent<", operator.le)):
                if query.get(key):
                    bound = parse_when(query[key])
                    # Messages not yet sent have no date_sent: fall back to date_created so they can be found.
                    def when(m):
                        return m.date_sent or m.date_created
                    chosen = [m for m in chosen
                              if compare(when(m).date() if type(bound) is date else when(m), bound)]
            size, page = int(query.get("PageSize") or 50), int(query.get("Page") or 0)
            rows = [m.resource() for m in chosen[page * size:(page + 1) * size]]
        kept = {k: v for k, v in query.items() if k not in ("Page", "PageSize", "PageToken")}
        uri = lambda p: f"{path}?{urlencode({**kept, 'PageSize': size, 'Page': p})}"  # noqa: E731
        more = (page + 1) * size < len(chosen)
        return 200, {"messages": rows, "page": page, "page_size": size, "start": page * size,
                     "end": page * size + len(rows) - 1, "uri": uri(page), "first_page_uri": uri(0),
                     "next_page_uri": uri(page + 1) if more else None,
                     "previous_page_uri": uri(page - 1) if page else None}

    @staticmethod
    def _reply(h: _Handler, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json; charset=utf-8")
            h.send_header("Content-Length", str(len(data)))
            h.send_header("Twilio-Request-Id", new_sid("RQ"))
            for name, value in (headers or {}).items():
                h.send_header(name, value)
            h.end_headers()
            h.wfile.write(data)
        except OSError:  # the client gave up (a time-out): its response is lost, which is the point
            h.close_connection = True
