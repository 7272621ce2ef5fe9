"""A local stand-in for Twilio Voice, for the test suite: it plays the caller's side of the real webhook
sequence against the app, with requests signed exactly as Twilio signs them (incoming call, menu key, the
queue's wait URL, the enqueue's action, a Dial's action with the outcome a test chooses, status callbacks
with CallDuration and Timestamp), runs the TwiML the app answers (Say, Gather, Redirect, Enqueue, Dial, Pause,
Leave, Hangup), and accepts the REST API's updates of a live call
(`client.calls(sid).update(twiml=...)`, the Answer button's bridge), its fetch, and the list of the calls a
call's <Dial>s made (`client.calls.list(parent_call_sid=...)`) on the SMS emulator's server
(tests/twilio_emulator.py), which it extends. Only loopback is ever contacted.

    with VoiceEmulator(SID, TOKEN, voice_url=f"{base}/webhooks/twilio/voice/incoming",
                       status_url=f"{base}/webhooks/twilio/voice/status", clock=clock.now) as voice:
        call = voice.ring(from_="+447700900123", to="+441632960101")
        voice.press(call, "1")            # the menu: a professional
        assert call.queue == "CNH"
        voice.hang_up(call)               # abandoned: the app makes a callback call
"""
from __future__ import annotations

import re
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import parse_qs, urlsplit

from tests.twilio_emulator import API_VERSION, TwilioEmulator, error_body, new_sid

CALLS_ROUTE = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Calls/(?P<sid>[^/]+)\.json$")
CALLS_LIST_ROUTE = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Calls\.json$")


@dataclass
class ChildCall:
    """A call a <Dial> made from the caller's call (Twilio's child call: its ParentCallSid is the caller's)."""

    sid: str
    to: str
    status: str = "ringing"  # then completed (answered, and over), busy, no-answer, failed or canceled


@dataclass
class EmulatedCall:
    sid: str
    from_: str
    to: str
    status: str = "ringing"
    answered_at: datetime | None = None  # when Twilio answered it (the incoming webhook's answer): CallDuration's start
    heard: list[str] = field(default_factory=list)  # every <Say> the caller heard, in order
    dialled: list[str] = field(default_factory=list)  # numbers the call was put through to
    queue: str | None = None  # the queue the caller waits in now
    enqueue_action: str | None = None
    wait_url: str | None = None
    queued_at: datetime | None = None
    gather_action: str | None = None  # waiting for a key
    dial_action: str | None = None  # the <Dial> it is in: Twilio requests this when the Dial ends
    no_input_url: str | None = None  # where the call goes if no key is pressed
    bridged: bool = False  # dequeued by a handler's <Dial><Queue>
    bridged_after: int = 0  # its QueueTime then (whole seconds), sent with `bridged` when the bridged call ends
    updates: list[dict] = field(default_factory=list)  # REST updates received
    answers: list[tuple[str, int, str]] = field(default_factory=list)  # (url, HTTP status, body) of each webhook
    ended_at: datetime | None = None  # when the call ended, as Twilio's Call resource says (end_time)
    children: list[ChildCall] = field(default_factory=list)  # the calls its <Dial>s made, in order

    @property
    def ended(self) -> bool:
        return self.status in ("completed", "busy", "failed", "no-answer", "canceled")


class VoiceEmulator(TwilioEmulator):
    def __init__(self, account_sid: str, auth_token: str, *, voice_url: str, status_url: str | None = None,
                 clock=None, **kw):
        super().__init__(account_sid, auth_token, clock=clock, **kw)
        self.voice_url, self.status_url = voice_url, status_url
        self._voice_lock = threading.RLock()
        self.calls: dict[str, EmulatedCall] = {}
        self.queues: dict[str, list[str]] = {}  # Twilio's own FIFO per queue name

    # -- the caller's side -------------------------------------------------------------------------------------
    def ring(self, from_: str, to: str, *, sid: str | None = None, sign: bool = True,
             auth_token: str | None = None) -> EmulatedCall:
        call = EmulatedCall(sid=sid or new_sid("CA"), from_=from_, to=to)
        with self._voice_lock:
            self.calls[call.sid] = call
        self._status(call, "ringing", post=False)
        status, body = self.webhook(call, self.voice_url, {"CallStatus": "ringing"}, sign=sign,
                                    auth_token=auth_token)
        if status == 200:
            call.status, call.answered_at = "in-progress", self.clock()
            self._run(call, body)
        return call

    def press(self, call: EmulatedCall, digits: str) -> None:
        url, call.gather_action, call.no_input_url = call.gather_action, None, None
        if url is None:
            raise AssertionError(f"{call.sid} is not at a menu")
        self._run(call, self.webhook(call, url, {"Digits": digits, "FinishedOnKey": ""})[1])

    def no_input(self, call: EmulatedCall) -> None:
        url, call.gather_action, call.no_input_url = call.no_input_url, None, None
        if url is None:
            raise AssertionError(f"{call.sid} is not at a menu")
        self._run(call, self.webhook(call, url, {})[1])

    def wait(self, call: EmulatedCall) -> list[str]:
        """Twilio asks the wait URL again (when the last answer ended): returns what the caller heard."""
        if call.queue is None or call.wait_url is None:
            raise AssertionError(f"{call.sid} is not in a queue")
        before = len(call.heard)
        queue = self.queues[call.queue]
        params = {"QueueSid": "QU" + call.queue.encode().hex().ljust(32, "0")[:32],
                  "QueuePosition": str(queue.index(call.sid) + 1), "CurrentQueueSize": str(len(queue)),
                  "QueueTime": str(self._queue_time(call)), "AvgQueueTime": "0", "MaxQueueSize": "100"}
        self._run(call, self.webhook(call, call.wait_url, params)[1], in_wait=True)
        return call.heard[before:]

    def hang_up(self, call: EmulatedCall) -> None:
        """The caller hangs up: out of the queue first (the enqueue's action says `hangup`), then the status
        callback says `completed`; a bridged call's action says `bridged` as the two are disconnected."""
        if call.queue is not None:
            self._leave_queue(call, "hangup")
        elif call.bridged and call.enqueue_action:
            self.webhook(call, call.enqueue_action, {"QueueResult": "bridged", "QueueTime": str(call.bridged_after)})
        elif call.dial_action:  # put through by a <Dial> with an action: Twilio requests it, the answer unused
            self._dial_ended(call, "completed")
        self._end(call)

    def dial_outcome(self, call: EmulatedCall, dial_status: str) -> tuple[int, str]:
        """The <Dial> the caller is in ends as `dial_status` (completed, answered, busy, no-answer, failed,
        canceled): Twilio requests the Dial's action with DialCallStatus and runs the TwiML it is answered
        with (back into a queue, or a hang-up)."""
        status, body = self._dial_ended(call, dial_status)
        if status == 200:
            self._run(call, body)
        return status, body

    def dial_outcome_unheard(self, call: EmulatedCall, dial_status: str, *, status_callback: bool = True) -> None:
        """The <Dial> the caller is in ends as `dial_status`, and the Dial's action never reaches ipoa (down for
        a deploy, the network): with no TwiML to go on, Twilio ends the caller's call. Its status callback
        says `completed`, unless `status_callback` is False (lost too). Twilio's own record keeps the child
        call's status (reached() asks for it)."""
        if call.dial_action is None:
            raise AssertionError(f"{call.sid} is not in a <Dial> with an action")
        call.dial_action = None
        self._child_ends(call, dial_status)
        if status_callback:
            self._end(call)
        else:
            call.status, call.ended_at = "completed", self.clock()

    def _dial_ended(self, call: EmulatedCall, dial_status: str) -> tuple[int, str]:
        url, call.dial_action = call.dial_action, None
        if url is None:
            raise AssertionError(f"{call.sid} is not in a <Dial> with an action")
        child = self._child_ends(call, dial_status)
        return self.webhook(call, url, {"DialCallStatus": dial_status, "DialCallSid": child.sid,
                                        "DialCallDuration": "0"})

    @staticmethod
    def _child_ends(call: EmulatedCall, dial_status: str) -> ChildCall:
        """The Dial's call ends: `completed` if it was answered (DialCallStatus completed or answered)."""
        if not call.children:
            raise AssertionError(f"{call.sid} made no <Dial> call")
        child = call.children[-1]
        child.status = "completed" if dial_status in ("completed", "answered") else dial_status
        return child

    def hang_up_unheard(self, call: EmulatedCall) -> None:
        """The caller hangs up and every webhook that would have said so is lost (ipoa down for a deploy,
        the network): Twilio's own record of the call says it ended, now; ipoa is told nothing."""
        with self._voice_lock:
            if call.queue is not None:
                self.queues[call.queue].remove(call.sid)
        call.queue = None
        call.status, call.ended_at = "completed", self.clock()

    def dequeue(self, queue: str) -> EmulatedCall:
        """A handler's <Dial><Queue>: the first caller of Twilio's queue is bridged to them."""
        with self._voice_lock:
            sid = self.queues.get(queue, []).pop(0)
            call = self.calls[sid]
        call.queue, call.bridged, call.bridged_after = None, True, self._queue_time(call)
        return call

    def status_callback(self, call: EmulatedCall, status: str, *, sign: bool = True,
                        auth_token: str | None = None, at: datetime | None = None) -> int:
        """A status callback as Twilio would send it (again, late or out of order, as tests choose). `at`: when
        the event happened (its Timestamp and, for `completed`, CallDuration), for a callback that comes late."""
        return self._status(call, status, sign=sign, auth_token=auth_token, at=at)

    def webhook(self, call: EmulatedCall, url: str, extra: dict, *, sign: bool = True,
                auth_token: str | None = None) -> tuple[int, str]:
        params = {"CallSid": call.sid, "AccountSid": self.account_sid, "From": call.from_, "To": call.to,
                  "Caller": call.from_, "Called": call.to, "Direction": "inbound", "ApiVersion": API_VERSION,
                  "CallStatus": "in-progress" if not call.ended else call.status} | extra
        status, body = self._post(url, params, sign, auth_token)
        call.answers.append((url, status, body))
        return status, body

    # -- running TwiML -----------------------------------------------------------------------------------------
    def _run(self, call: EmulatedCall, twiml: str, *, in_wait: bool = False) -> None:
        root = ET.fromstring(twiml)
        if root.tag != "Response":
            raise AssertionError(f"not TwiML: {twiml[:200]}")
        verbs = list(root)
        for i, verb in enumerate(verbs):
            if verb.tag == "Say":
                call.heard.append(verb.text or "")
            elif verb.tag == "Pause":
                continue
            elif verb.tag == "Gather":
                call.heard += [say.text or "" for say in verb if say.tag == "Say"]
                call.gather_action = verb.get("action")
                rest = verbs[i + 1:]
                call.no_input_url = rest[0].text if rest and rest[0].tag == "Redirect" else None
                return
            elif verb.tag == "Redirect":
                return self._run(call, self.webhook(call, verb.text or "", {})[1], in_wait=in_wait)
            elif verb.tag == "Enqueue":
                if in_wait:
                    raise AssertionError("<Enqueue> is not allowed in a wait URL's TwiML")
                call.queue, call.enqueue_action, call.wait_url = (verb.text or "").strip(), verb.get("action"), \
                    verb.get("waitUrl")
                call.queued_at = self.clock()
                with self._voice_lock:
                    self.queues.setdefault(call.queue, []).append(call.sid)
                if call.wait_url:
                    self.wait(call)  # Twilio asks the wait URL as the caller joins the queue
                return
            elif verb.tag == "Dial":  # a number as its text, or a <Number>, <Client> or <Queue> within
                nouns = [f"{n.tag.lower()}:{(n.text or '').strip()}" if n.tag != "Number" else (n.text or "").strip()
                         for n in verb]
                call.dialled += nouns or [(verb.text or "").strip()]
                call.children.append(ChildCall(new_sid("CA"), (nouns or [(verb.text or "").strip()])[0]))
                if verb.get("action"):  # Twilio requests it when the Dial ends; nothing after it runs
                    call.dial_action = verb.get("action")
                    return
            elif verb.tag == "Leave":
                if not in_wait:
                    raise AssertionError("<Leave> outside a wait URL's TwiML")
                return self._leave_queue(call, "leave")
            elif verb.tag == "Hangup":
                return self._end(call)
            else:
                raise AssertionError(f"the emulator does not play <{verb.tag}>")
        if not in_wait:
            self._end(call)  # the end of the document hangs up

    def _leave_queue(self, call: EmulatedCall, result: str) -> None:
        queue_time = self._queue_time(call)
        with self._voice_lock:
            if call.queue and call.sid in self.queues.get(call.queue, []):
                self.queues[call.queue].remove(call.sid)
        call.queue = None
        status, body = self.webhook(call, call.enqueue_action or "", {"QueueResult": result,
                                                                     "QueueTime": str(queue_time)})
        if result in ("leave", "queue-full", "error", "system-error") and status == 200:
            self._run(call, body)

    def _queue_time(self, call: EmulatedCall) -> int:
        return max(0, int((self.clock() - call.queued_at).total_seconds())) if call.queued_at else 0

    def _end(self, call: EmulatedCall) -> None:
        if not call.ended:
            self._status(call, "completed")

    def _status(self, call: EmulatedCall, status: str, *, post: bool = True, sign: bool = True,
                auth_token: str | None = None, at: datetime | None = None) -> int:
        call.status = status
        at = at or self.clock()
        if call.ended and call.ended_at is None:
            call.ended_at = at
        if not post or not self.status_url:
            return 0
        # As Twilio sends them: Timestamp (RFC 2822, whole seconds, UTC) on each call-progress event, and on
        # `completed` CallDuration, the whole seconds (rounded down) since Twilio answered the call.
        params = {"CallStatus": status, "Timestamp": format_datetime(at.astimezone(UTC).replace(microsecond=0))}
        if status == "completed":
            since = int((at - call.answered_at).total_seconds()) if call.answered_at else 0
            params["CallDuration"] = str(max(0, since))
        return self.webhook(call, self.status_url, params, sign=sign, auth_token=auth_token)[0]

    # -- the REST API: updating a live call ---------------------------------------------------------------------
    def _dispatch(self, h, method: str) -> None:
        listing = CALLS_LIST_ROUTE.match(urlsplit(h.path).path)
        if listing is not None and method == "GET":
            return self._list_calls(h, listing["account"], parse_qs(urlsplit(h.path).query))
        route = CALLS_ROUTE.match(urlsplit(h.path).path)
        if route is None:
            return super()._dispatch(h, method)
        with self._lock:
            self._requests += 1
        raw = h.rfile.read(int(h.headers.get("Content-Length") or 0)).decode()
        form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        try:
            if not self._authorised(h.headers.get("Authorization", "")):
                return self._reply(h, 401, error_body(401, 20003, "Authenticate"))
            call = self.calls.get(route["sid"])
            if route["account"] != self.account_sid or call is None:
                return self._reply(h, 404, error_body(404, 20404, f"The requested resource {h.path} was not found"))
            if method != "POST":
                return self._reply(h, 200, self._resource(call))
            if call.ended:
                return self._reply(h, 400, error_body(400, 21220, "Call is not in-progress. Cannot redirect."))
            call.updates.append(form)
            twiml = form.get("Twiml")
            if call.queue is not None:  # out of the queue: the enqueue's action is told, its answer unused
                queue_time = self._queue_time(call)
                with self._voice_lock:
                    self.queues[call.queue].remove(call.sid)
                call.queue = None
                self.webhook(call, call.enqueue_action or "", {"QueueResult": "redirected",
                                                              "QueueTime": str(queue_time)})
            if twiml:
                self._run(call, twiml, in_wait=True)  # a bridge: Dial runs, the call stays up until hang-up
            self._reply(h, 200, self._resource(call))
        except Exception as exc:  # an emulator bug must surface as an answer, not as a hung client
            self._reply(h, 500, error_body(500, 20500, f"emulator error: {exc!r}"))

    def _list_calls(self, h, account: str, query: dict[str, list[str]]) -> None:
        """GET Calls.json?ParentCallSid=: the calls a call's <Dial>s made (one page: the emulator's are few)."""
        with self._lock:
            self._requests += 1
        if not self._authorised(h.headers.get("Authorization", "")):
            return self._reply(h, 401, error_body(401, 20003, "Authenticate"))
        if account != self.account_sid:
            return self._reply(h, 404, error_body(404, 20404, f"The requested resource {h.path} was not found"))
        parent = self.calls.get((query.get("ParentCallSid") or [""])[0])
        children = parent.children if parent is not None else []
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls.json"
        records = [{"sid": c.sid, "account_sid": self.account_sid, "parent_call_sid": parent.sid if parent else None,
                    "to": c.to, "status": c.status, "direction": "outbound-dial", "api_version": API_VERSION,
                    "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{c.sid}.json"} for c in children]
        self._reply(h, 200, {"calls": records, "first_page_uri": uri, "next_page_uri": None,
                             "previous_page_uri": None, "page": 0, "page_size": 50, "start": 0,
                             "end": max(len(records) - 1, 0), "uri": uri})

    def _resource(self, call: EmulatedCall) -> dict:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{call.sid}.json"
        return {"sid": call.sid, "account_sid": self.account_sid, "from": call.from_, "to": call.to,
                "status": call.status, "direction": "inbound", "api_version": API_VERSION, "uri": uri,
                "subresource_uris": {}, "queue_time": str(self._queue_time(call)),
                "end_time": format_datetime(call.ended_at, usegmt=True) if call.ended_at else None}


__all__ = ["ChildCall", "EmulatedCall", "VoiceEmulator"]
