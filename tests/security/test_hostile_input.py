"""The hostile tester's inputs, each through the API, the web forms and the SMS webhook: never a 5xx, a 4xx
naming the field (never echoing the value), and nothing stored. Runs on SQLite and on PostgreSQL (CI's
second pass), where a NUL used to reach psycopg and fail as a 500 (docs/security.md, "Headers and
hostile input")."""
from __future__ import annotations

import socket
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator
from werkzeug.serving import make_server

from ipoa.adapters import orm
from ipoa.domain.validation import looks_blank
from ipoa.entry.json_input import MAX_JSON_DEPTH, json_depth_exceeds, loads
from ipoa.service import calls as call_service
from ipoa.service.calls import Actor
from ipoa.service.records import break_glass
from ipoa.web.input_limits import MAX_CONTENT_LENGTH
from tests.conftest import DEFAULT_NOW, PASSWORD, call_payload, csrf_token, sign_in
from tests.helpers.rota import add_on_duty

HANDLER = Actor("handler", "handler", "CNH")
# What must never be stored: NUL, another C0 control, DEL, a C1 control, each bidirectional override
# or isolate, and a lone surrogate (JSON's "\ud800").
HOSTILE = {"nul": "\x00", "escape": "\x1b", "del": "\x7f", "c1": "\x85", "rlo": "\u202e", "lre": "\u202a",
           "rli": "\u2067", "pdi": "\u2069", "surrogate": "\ud800"}
TABLES = (orm.calls, orm.referrals, orm.audit_events, orm.outbox, orm.access_events, orm.break_glass_grants,
          orm.sms_inbound, orm.security_events)


def counts(svc) -> dict[str, int]:
    with svc.uow() as uow:
        return {t.name: uow.session.execute(select(func.count()).select_from(t)).scalar_one() for t in TABLES}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_refused(resp, status: int, field: str | None, value: str) -> None:
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True)[:500])
    body = resp.get_json()
    err = body["error"]
    if field is not None:
        assert field in err.get("fields", {}), err
    assert MARK not in resp.get_data(as_text=True)  # what was typed is never echoed


MARK = "Zq7marker"  # sent after each hostile character: its absence from an answer shows nothing was echoed


def with_value(payload: dict, path: str, value: str) -> dict:
    """A copy of payload with the string at dotted path given `value` added to it."""
    import copy

    out = copy.deepcopy(payload)
    *parents, last = path.split(".")
    node = out
    for p in parents:
        node = node.setdefault(p, {})
    node[last] = (node.get(last) or "Ok") + value + MARK
    return out


@pytest.fixture
def world(svc, users, tokens):
    """A CNH call in triage (version 2) and one referred to district nursing (its referral sent)."""
    in_triage = call_service.log_call(svc, HANDLER, call_payload(), allow_duplicate=True).ref
    call_service.fire_call_trigger(svc, HANDLER, in_triage, {"trigger": "start_triage", "expected_version": 1})
    referred = call_service.log_call(svc, HANDLER, call_payload(), allow_duplicate=True).ref
    call_service.fire_call_trigger(svc, HANDLER, referred, {"trigger": "start_triage", "expected_version": 1})
    call = call_service.fire_call_trigger(svc, HANDLER, referred, {
        "trigger": "refer", "expected_version": 2, "data": {"service": "DN"}, "reason": "setup"})
    return {"triage": in_triage, "referred": referred, "referral": call.referrals[0].id, "tokens": tokens}


# -- the shared check -------------------------------------------------------------------------------------

def test_what_is_refused_and_what_is_not():
    from ipoa.domain.validation import text_errors, text_problem

    for value in HOSTILE.values():
        assert text_problem(f"a{value}b", multiline=True)
        assert text_problem(f"a{value}b")
    for ok in ("Zoë O'Brien-Smith", "Ünïcödé – “quotes” ✓ 東京", "\u200f", "a b"):
        assert text_problem(ok) is None
    assert text_problem("line one\nline two\ttabbed\r\n", multiline=True) is None
    assert "one line" in text_problem("a\nb", field="caller.name")
    for separator in ("\u2028", "\u2029"):  # Unicode's line and paragraph separators are line breaks too
        assert "one line" in text_problem(f"Nia Nurse{separator}(DN)", field="name")
        assert text_problem(f"line one{separator}line two", multiline=True) is None
    message = text_problem("x\x00", field="subject.given_name")
    assert message.startswith("The subject given name ") and "\x00" not in message
    errors = text_errors({"a": ["ok", {"b": "x\u202e"}], "k\x00": "v"})
    assert set(errors) == {"a.1.b", "body"}


def test_json_depth_is_checked_without_recursion():
    assert not json_depth_exceeds("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH)
    assert json_depth_exceeds("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1))
    assert json_depth_exceeds("[" * 1_000_000)  # not even valid JSON: counted all the same, no RecursionError
    assert not json_depth_exceeds('{"a": "' + "[" * 1000 + '"}')  # brackets inside a string are text
    assert not json_depth_exceeds('{"a": "\\"[[[[" }')
    with pytest.raises(ValueError):
        loads('{"a": NaN}')
    with pytest.raises(ValueError):
        loads('{"a": 1e999}')
    with pytest.raises(ValueError):
        loads(b'{"a": "\xff"}')


# -- the API ---------------------------------------------------------------------------------------------

LOG_FIELDS = ["caller.name", "subject.given_name", "subject.family_name", "summary", "subject.postcode",
              "caller.phone", "subject.nhs_number", "centre", "need"]


@pytest.mark.parametrize("kind", sorted(HOSTILE))
@pytest.mark.parametrize("field", LOG_FIELDS)
def test_intake_refuses_hostile_text_in_every_field(client, svc, tokens, field, kind):
    before = counts(svc)
    resp = client.post("/api/v1/calls", json=with_value(call_payload(), field, HOSTILE[kind]),
                       headers=auth(tokens["handler"]))
    assert_refused(resp, 422, field, HOSTILE[kind])
    assert counts(svc) == before


def test_intake_allows_line_breaks_in_the_summary_only(client, svc, tokens):
    ok = client.post("/api/v1/calls", json=call_payload(summary="Fell.\n\tCannot get up.\r\nDaughter on way."),
                     headers=auth(tokens["handler"]))
    assert ok.status_code == 201, ok.get_json()
    before = counts(svc)
    for field in ("caller.name", "subject.given_name", "subject.family_name"):
        resp = client.post("/api/v1/calls", json=with_value(call_payload(), field, "\n"),
                           headers=auth(tokens["handler"]), query_string={"allow_duplicate": "true"})
        assert_refused(resp, 422, field, "\n")
    assert counts(svc) == before


INVISIBLE = {"zero-width space": "\u200b", "word joiner": "\u2060", "byte-order mark": "\ufeff"}


@pytest.mark.parametrize("kind", sorted(INVISIBLE))
@pytest.mark.parametrize("field", ["caller.name", "subject.given_name", "subject.family_name", "subject.address_line_1",
                                   "subject.town"])
def test_a_name_or_an_address_with_an_invisible_character_is_refused(client, svc, tokens, field, kind):
    # "Sm<U+200B>ith" looks like "Smith" and is not, to a search or a check for a duplicate (domain/validation.py)
    before = counts(svc)
    resp = client.post("/api/v1/calls", json=with_value(call_payload(), field, f"Sm{INVISIBLE[kind]}ith"),
                       headers=auth(tokens["handler"]))
    assert_refused(resp, 422, field, INVISIBLE[kind])
    assert "invisible character" in resp.get_json()["error"]["fields"][field]
    assert counts(svc) == before


def test_invisible_characters_are_allowed_where_nothing_is_matched_on_them(client, svc, tokens):
    # the joiners some scripts need and a direction mark in a name; anything in the free-text summary
    ok = client.post("/api/v1/calls", json=call_payload(summary="Fell\u200b at home\ufeff.", caller={
        "type": "carer", "name": "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 \u200f", "phone": "07911 123456"}),
        headers=auth(tokens["handler"]))
    assert ok.status_code == 201, ok.get_json()


def test_the_log_a_call_form_refuses_an_invisible_character_beside_the_field(web, svc):
    web_sign_in(web, "handler")
    before = counts(svc)
    resp = web.post("/calls/new", data={**NEW_CALL_FORM, "given_name": "Ma\ufeffry"})
    assert resp.status_code == 422
    assert "The given name contains an invisible character" in resp.get_data(as_text=True)
    assert counts(svc) == before


@pytest.mark.parametrize("kind", ["nul", "rlo", "surrogate", "escape"])
def test_every_api_text_field_refuses_hostile_text(client, svc, world, kind):
    bad = HOSTILE[kind]
    h, s = auth(world["tokens"]["handler"]), auth(world["tokens"]["supervisor"])
    asc = auth(world["tokens"]["handler_asc"])
    triage, referred, rid = world["triage"], world["referred"], world["referral"]
    cases = [
        (f"/api/v1/calls/{triage}/events", {"trigger": "cancel", "expected_version": 2, "reason": f"x{bad}{MARK}"}, h,
         "reason"),
        (f"/api/v1/calls/{triage}/events", {"trigger": f"cancel{bad}{MARK}", "expected_version": 2, "reason": "x"}, h,
         "trigger"),
        (f"/api/v1/calls/{triage}/events", {"trigger": "refer", "expected_version": 2,
                                            "data": {"service": "DN", "consent_override": {
                                                "basis": "safeguarding", "reason": f"x{bad}{MARK}"}}}, h,
         "data.consent_override.reason"),
        (f"/api/v1/calls/{triage}/events", {"trigger": "transfer", "expected_version": 2, "reason": "x",
                                            "data": {"centre": f"ASC{bad}{MARK}"}}, h, "data.centre"),
        (f"/api/v1/calls/{triage}/events", {"trigger": "refer", "expected_version": 2,
                                            "data": {f"service{bad}{MARK}": "DN"}}, h, "data"),
        (f"/api/v1/calls/{triage}/consent", {"consent": "refused", "expected_version": 2, "reason": f"x{bad}{MARK}"}, h,
         "reason"),
        (f"/api/v1/calls/{triage}/break-glass", {"reason": "other", "note": f"x{bad}{MARK}"}, asc, "note"),
        (f"/api/v1/calls/{referred}/referrals/{rid}/events", {"trigger": "withdraw", "expected_version": 1,
                                                              "reason": f"x{bad}{MARK}"}, h, "reason"),
        (f"/api/v1/calls/{referred}/referrals/{rid}/reroute", {"service": "CRT", "expected_version": 1,
                                                               "reason": f"x{bad}{MARK}"}, s, "reason"),
        (f"/api/v1/calls/{referred}/referrals/{rid}/reroute", {"service": "CRT", "expected_version": 1,
                                                               "reason": "x", "consent_override": {
                                                                   "basis": "safeguarding", "reason": f"y{bad}{MARK}"}},
         s, "consent_override.reason"),
        (f"/api/v1/calls/{referred}/referrals/{rid}/escalate", {"reason": f"x{bad}{MARK}"}, s, "reason"),
        ("/api/v1/routing/decide", {"need": "housing", "urgency": "routine", "at": DEFAULT_NOW.isoformat(),
                                    "postcode": f"LE11{bad}{MARK}"}, h, "postcode"),
    ]
    for url, body, headers, field in cases:
        before = counts(svc)
        resp = client.post(url, json=body, headers=headers)
        assert_refused(resp, 422, field, bad)
        assert counts(svc) == before, url


def test_a_nul_in_a_path_is_404_never_500(client, world):
    h = auth(world["tokens"]["handler"])
    for url in ("/api/v1/calls/AB%00CD", "/api/v1/calls/AB%00CD/access-log", f"/api/v1/calls/{'X' * 300}",
                f"/api/v1/calls/{world['referred']}/referrals/ab%00cd/events", "/api/v1/calls/%E2%80%AEABC",
                "/api/v1/calls/AB%FFCD"):
        resp = client.get(url, headers=h) if "events" not in url else client.post(url, json={}, headers=h)
        assert resp.status_code == 404, (url, resp.status_code)
        assert resp.get_json()["error"]["code"] == "not_found"


def test_a_nul_in_a_query_parameter_is_400_naming_it(client, world):
    resp = client.post("/api/v1/calls?allow_duplicate=tr%00ue", json=call_payload(),
                       headers=auth(world["tokens"]["handler"]))
    assert resp.status_code == 400
    assert "allow_duplicate" in resp.get_json()["error"]["fields"]


def test_nested_json_is_refused_before_it_is_decoded(client, svc, tokens):
    before = counts(svc)
    for depth in (MAX_JSON_DEPTH + 1, 1000, 30_000):  # 30,000 deep: 60 KB, just under the size limit
        resp = client.post("/api/v1/calls", data="[" * depth + "]" * depth, content_type="application/json",
                           headers=auth(tokens["handler"]))
        assert resp.status_code == 400, depth
        assert resp.get_json()["error"]["code"] == "too_deep"
    nested = '{"a": ' * 1000 + "{}" + "}" * 1000  # objects: the same
    resp = client.post("/api/v1/calls", data=nested, content_type="application/json",
                       headers=auth(tokens["handler"]))
    assert resp.status_code == 400
    assert counts(svc) == before


@pytest.mark.parametrize("body", ['{"summary": NaN}', '{"summary": Infinity}', '{"n": 1e999}', '{"a": 1',
                                  b'{"summary": "\xff\xfe"}', "\ufeff{}"])
def test_json_that_is_not_json_is_400(client, tokens, body):
    resp = client.post("/api/v1/calls", data=body, content_type="application/json", headers=auth(tokens["handler"]))
    assert resp.status_code == 400
    assert resp.get_json()["error"]["code"] == "bad_request"


def test_a_body_that_is_not_an_object_is_422_everywhere(client, world):
    s = auth(world["tokens"]["supervisor"])
    ref, rid = world["referred"], world["referral"]
    for url in (f"/api/v1/calls/{ref}/referrals/{rid}/escalate", f"/api/v1/calls/{ref}/events", "/api/v1/calls",
                f"/api/v1/calls/{ref}/break-glass", "/api/v1/routing/decide"):
        resp = client.post(url, json=[1, 2], headers=s)
        assert resp.status_code in (403, 422), (url, resp.status_code)


class CountingStream:
    """A request body of `size` bytes, produced as it is read: how much the server read is recorded."""

    def __init__(self, size: int):
        self.size, self.read_bytes = size, 0

    def read(self, n: int = -1) -> bytes:
        n = self.size - self.read_bytes if n is None or n < 0 else min(n, self.size - self.read_bytes)
        self.read_bytes += n
        return b"[" * n

    def readline(self, n: int = -1) -> bytes:
        return self.read(min(n, 8192) if n and n > 0 else 8192)


HUNDRED_MB = 100 * 1024 * 1024


def post_stream(app, path: str, stream: CountingStream, content_type: str, headers: dict | None = None):
    """POST a body of stream.size bytes straight into the WSGI app (the test client would measure the
    stream by seeking to its end): (status, body)."""
    from werkzeug.test import EnvironBuilder, run_wsgi_app

    environ = EnvironBuilder(path=path, method="POST", headers=headers or {},
                             content_type=content_type).get_environ()
    environ["wsgi.input"], environ["CONTENT_LENGTH"] = stream, str(stream.size)
    app_iter, status, _ = run_wsgi_app(app, environ, buffered=True)
    return int(status.split()[0]), b"".join(app_iter)


def test_a_100_mb_api_body_is_413_without_being_read(app, svc, tokens):
    stream = CountingStream(HUNDRED_MB)
    started = time.monotonic()
    status, body = post_stream(app, "/api/v1/calls", stream, "application/json", auth(tokens["handler"]))
    assert status == 413
    assert b'"too_large"' in body
    assert stream.read_bytes == 0
    assert time.monotonic() - started < 2
    assert counts(svc)["calls"] == 0


def test_a_body_just_over_the_limit_is_413_and_at_the_limit_is_read(client, tokens):
    over = client.post("/api/v1/calls", data=b" " * (MAX_CONTENT_LENGTH + 1), content_type="application/json",
                       headers=auth(tokens["handler"]))
    assert over.status_code == 413
    padded = (b'{"x": "' + b" " * (MAX_CONTENT_LENGTH - 20) + b'"}')[:MAX_CONTENT_LENGTH]
    assert client.post("/api/v1/calls", data=padded, content_type="application/json",
                       headers=auth(tokens["handler"])).status_code in (400, 422)


def test_a_100_mb_web_form_is_413_without_being_read(app, svc, users):
    for url in ("/login", "/calls/new", "/webhooks/twilio/sms/inbound"):
        stream = CountingStream(HUNDRED_MB)
        status, _ = post_stream(app, url, stream, "application/x-www-form-urlencoded")
        assert status == 413, url
        assert stream.read_bytes == 0
    assert counts(svc)["calls"] == 0


def test_a_live_server_answers_413_before_the_body_arrives(app, tokens):
    """Over a real socket: the headers promise 100 MB, 64 KiB are sent, and the answer comes at once."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", server.server_port), timeout=10) as sock:
            started = time.monotonic()
            sock.sendall((f"POST /api/v1/calls HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                          f"Authorization: Bearer {tokens['handler']}\r\nContent-Length: {HUNDRED_MB}\r\n\r\n")
                         .encode() + b"[" * 65536)
            answer = sock.recv(4096).decode("latin-1")
            assert answer.startswith("HTTP/1.1 413"), answer[:200]
            assert time.monotonic() - started < 5
    finally:
        server.shutdown()
        thread.join(10)


# -- dates -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("at, status", [
    ("9999-12-31T00:00:00Z", 422), ("9999-12-31T23:59:59-01:00", 422),
    ((DEFAULT_NOW + timedelta(days=31)).isoformat(), 422), ((DEFAULT_NOW + timedelta(days=29)).isoformat(), 200),
])
def test_a_callback_more_than_30_days_ahead_is_422(client, svc, world, at, status):
    before = counts(svc)
    resp = client.post(f"/api/v1/calls/{world['triage']}/events", headers=auth(world["tokens"]["handler"]),
                       json={"trigger": "promise_callback", "expected_version": 2, "data": {"callback_at": at}})
    assert resp.status_code == status, resp.get_json()
    if status == 422:
        assert "data.callback_at" in resp.get_json()["error"]["fields"]
        assert counts(svc) == before


@pytest.mark.parametrize("dob, status", [("1899-12-31", 422), ("0001-01-01", 422), ("9999-12-31", 422),
                                         ((DEFAULT_NOW.date() + timedelta(days=1)).isoformat(), 422),
                                         ("1900-01-01", 201)])
def test_a_birth_before_1900_or_in_the_future_is_422(client, svc, tokens, dob, status):
    resp = client.post("/api/v1/calls", json=call_payload(subject={"date_of_birth": dob}),
                       headers=auth(tokens["handler"]))
    assert resp.status_code == status, resp.get_json()
    if status == 422:
        assert "subject.date_of_birth" in resp.get_json()["error"]["fields"]
        assert counts(svc)["calls"] == 0


@pytest.mark.parametrize("at", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "1970-01-01T00:00:00Z"])
def test_a_routing_question_about_a_far_off_instant_is_422(client, tokens, at):
    resp = client.post("/api/v1/routing/decide", json={"need": "housing", "urgency": "routine", "at": at},
                       headers=auth(tokens["handler"]))
    assert resp.status_code == 422
    assert "at" in resp.get_json()["error"]["fields"]


@pytest.mark.parametrize("query", ["from=0001-01-01&to=0001-01-05", "from=9999-12-25&to=9999-12-31",
                                   "from=1999-12-31&to=2000-01-02", "from=%00&to=2026-01-01", "centre=%00",
                                   "service=%E2%80%AE"])
def test_report_and_export_dates_outside_a_sane_range_are_400(client, users, query):
    sign_in(client, "supervisor")
    for url in ("/reports/", "/reports/board", "/reports/export.csv", "/supervisor/calls.csv"):
        resp = client.get(f"{url}?{query}")
        assert 400 <= resp.status_code < 500, (url, query, resp.status_code)


def test_query_parameters_with_hostile_text_are_400_on_every_page(client, users):
    sign_in(client, "supervisor")
    for url in ("/queue?centre=CN%00H", "/supervisor/calls?centre=%00&measure=open", "/supervisor/break-glass?show=%1b",
                "/reports/?centre=%E2%81%A6", "/login?next=%2Fqueue%00"):
        assert client.get(url).status_code == 400, url
    admin = client.application.test_client()
    sign_in(admin, "admin")
    assert admin.get("/admin/security?user=a%00b").status_code == 400


# -- web forms ---------------------------------------------------------------------------------------------

NEW_CALL_FORM = {"caller_type": "carer", "caller_name": "Jo Carer", "caller_phone": "07911 123456",
                 "nhs_number": "", "given_name": "Edith", "family_name": "Testperson", "date_of_birth": "1938-04-02",
                 "postcode": "LE11 3AB", "need": "urgent_community_health", "urgency": "urgent",
                 "summary": "Fell, no injury.", "consent": "given"}


@pytest.fixture
def web(app, svc, users):
    """A browser's client without the CSRF token's round trip (CSRF is not what is tested here)."""
    app.config["WTF_CSRF_ENABLED"] = False
    return app.test_client()


def web_sign_in(client, username: str) -> None:
    assert client.post("/login", data={"username": username, "password": PASSWORD}).status_code == 302


@pytest.mark.parametrize("kind", ["nul", "rlo", "escape", "c1"])
@pytest.mark.parametrize("field", ["caller_name", "given_name", "family_name", "summary", "postcode", "caller_phone",
                                   "nhs_number", "need"])
def test_the_intake_form_refuses_hostile_text_beside_the_field(web, svc, field, kind):
    web_sign_in(web, "handler")
    before = counts(svc)
    form = dict(NEW_CALL_FORM)
    form[field] = (form[field] or "ab") + HOSTILE[kind] + "x"  # inside: the form trims only the ends
    resp = web.post("/calls/new", data=form)
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert "not allowed" in html
    assert HOSTILE[kind] not in html.replace(form[field], "")  # only in the value typed back into its field
    assert counts(svc) == before


@pytest.mark.parametrize("kind", ["nul", "rlo"])
def test_every_web_form_refuses_hostile_text_and_stores_nothing(web, svc, world, kind):
    bad = HOSTILE[kind]
    triage, referred, rid = world["triage"], world["referred"], world["referral"]
    grant = break_glass(svc, Actor("walk.outsider", "handler", "FCP"), triage, {"reason": "other", "note": "x"},
                        route="test").id
    as_handler = [
        (f"/calls/{triage}/events", {"trigger": "cancel", "reason": f"x{bad}{MARK}", "expected_version": "2"}),
        (f"/calls/{triage}/events", {"route_choice": "refer:DN", "reason": "x", "consent_basis": "safeguarding",
                                     "consent_reason": f"y{bad}{MARK}", "expected_version": "2"}),
        (f"/calls/{triage}/events", {"trigger": "transfer", "centre": f"ASC{bad}{MARK}", "reason": "x",
                                     "expected_version": "2"}),
        (f"/calls/{triage}/consent", {"consent": "refused", "consent_note": f"x{bad}{MARK}", "expected_version": "2"}),
        (f"/calls/{referred}/referrals/{rid}/events", {"trigger": "withdraw", "reason": f"x{bad}{MARK}",
                                                        "expected_version": "1"}),
    ]
    as_supervisor = [
        (f"/calls/{referred}/referrals/{rid}/reroute", {"service": "CRT", "reason": f"x{bad}{MARK}",
                                                         "expected_version": "1"}),
        (f"/supervisor/calls/{referred}/referrals/{rid}/reroute", {"service": "CRT", "reason": f"x{bad}{MARK}",
                                                                    "expected_version": "1"}),
        (f"/supervisor/calls/{referred}/referrals/{rid}/escalate", {"reason": f"x{bad}{MARK}"}),
        (f"/supervisor/calls/{triage}/transfer", {"centre": "ASC", "reason": f"x{bad}{MARK}", "expected_version": "2"}),
        (f"/supervisor/break-glass/{grant}/review", {"comment": f"x{bad}{MARK}"}),
    ]
    for who, cases in (("handler", as_handler), ("supervisor", as_supervisor)):
        web_sign_in(web, who)
        for url, form in cases:
            # The answer that shows the call again is a view of it (an access event): that is all.
            before = {**counts(svc), "access_events": None}
            resp = web.post(url, data=form)
            assert resp.status_code < 500, (url, resp.status_code)
            assert resp.status_code in (302, 422), (url, resp.status_code)
            page = resp.get_data(as_text=True) if resp.status_code == 422 else web.get(
                resp.headers["Location"]).get_data(as_text=True)
            assert "not allowed" in page, (url, resp.status_code)
            assert {**counts(svc), "access_events": None} == before, url
        web.post("/logout")
    web_sign_in(web, "handler.asc")  # break-glass outside the relationship: the note
    before = counts(svc)
    resp = web.post(f"/calls/{triage}/break-glass", data={"reason": "other", "note": f"x{bad}{MARK}"})
    assert resp.status_code == 422
    assert counts(svc) == before


def test_a_professional_declining_with_hostile_text_stores_nothing(web, svc, world):
    from ipoa.service.professionals import link_user
    from tests.conftest import make_user

    user = make_user(svc, "nurse", "professional", None)
    add_on_duty(svc, name="Nia", service="DN", mobile="07700 900201")
    link_user(svc, "07700 900201", user.id)
    web_sign_in(web, "nurse")
    before = counts(svc)
    resp = web.post(f"/my/referrals/{world['referral']}", data={"trigger": "decline", "reason": "x\x00y",
                                                                "expected_version": "1"})
    assert resp.status_code == 422
    assert counts(svc)["audit_events"] == before["audit_events"]


def test_sign_in_with_a_nul_in_the_username_is_not_a_server_error(app, svc, users):
    client = app.test_client()
    resp = client.post("/login", data={"username": "hand\x00ler", "password": "x"})
    assert resp.status_code < 500


def test_a_line_break_in_next_signs_in_to_the_home_page_not_a_500(app, svc, users):
    client = app.test_client()
    token = csrf_token(client, "/login")
    resp = client.post("/login?next=%2F%0D%0Aqueue", data={"username": "handler", "password": PASSWORD,
                                                          "csrf_token": token})
    assert resp.status_code == 302 and "\r" not in resp.headers["Location"] and "\n" not in resp.headers["Location"]


def test_an_id_beyond_the_databases_integers_is_404_and_a_paging_number_400(client, users):
    huge = "9" * 23
    sign_in(client, "admin")
    for url in (f"/admin/professionals/{huge}", f"/admin/professionals/{huge}/deactivate"):
        assert client.get(url).status_code == 404, url
    for before in (huge, "%C2%B2", "x"):  # too big for the key, "²" (isdigit() but not int()), not a number
        resp = client.get(f"/admin/security?before={before}")
        assert resp.status_code == 400 and "(before)" in resp.get_data(as_text=True), before
    supervisor = client.application.test_client()
    sign_in(supervisor, "supervisor")
    resp = supervisor.post(f"/supervisor/break-glass/{huge}/review",
                           data={"csrf_token": csrf_token(supervisor, "/supervisor/break-glass"), "comment": "ok"})
    assert resp.status_code == 404


def test_a_superscript_digit_where_a_number_goes_is_never_a_500(client, svc, world, twilio):
    web = client.application.test_client()
    sign_in(web, "handler")
    assert web.get(f"/calls/{world['triage']}/live?after=%C2%B2").status_code == 200
    resp = _signed(client, "/webhooks/twilio/sms/status",
                   {"MessageSid": "SM" + "1" * 32, "MessageStatus": "undelivered", "ErrorCode": "\u00b2"})
    assert resp.status_code < 500


def test_acting_on_another_centres_call_through_the_web_is_403(web, svc, world):
    """The hostile tester's 500 (fixed before this work): the API's 403, on the web as well."""
    web_sign_in(web, "handler.asc")
    before = counts(svc)
    for url, form in ((f"/calls/{world['triage']}/events", {"trigger": "cancel", "reason": "x",
                                                            "expected_version": "2"}),
                      (f"/calls/{world['triage']}/consent", {"consent": "refused", "expected_version": "2"}),
                      (f"/calls/{world['referred']}/referrals/{world['referral']}/events",
                       {"trigger": "withdraw", "reason": "x", "expected_version": "1"})):
        assert web.post(url, data=form).status_code == 403, url
    assert counts(svc) == before
    api = web.post(f"/api/v1/calls/{world['triage']}/events", headers=auth(world["tokens"]["handler_asc"]),
                   json={"trigger": "cancel", "reason": "x", "expected_version": 2})
    assert api.status_code == 403


def test_path_junk_on_the_web_is_404(web, world):
    web_sign_in(web, "handler")
    for url in ("/calls/AB%00CD", f"/calls/{'Y' * 300}", "/r/AAAA%00", "/static/app.css%00",
                "/workflows/call%00/1"):
        assert web.get(url).status_code == 404, url


# -- the SMS webhook ---------------------------------------------------------------------------------------

TOKEN = "hostile-test-auth-token"
NIA = "+447700900201"


@pytest.fixture
def twilio(svc, monkeypatch):
    monkeypatch.setattr(svc, "public_base_url", "https://ipoa.example.test")
    monkeypatch.setattr(svc, "twilio", {"account_sid": "AC" + "1" * 32, "auth_token": TOKEN})


def _signed(client, path: str, form: dict):
    url = "https://ipoa.example.test" + path
    return client.post(path, data=form, headers={
        "X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(url, form)})


# A lone surrogate cannot travel in a form's UTF-8 (werkzeug reads its bytes as U+FFFD): not in this list.
@pytest.mark.parametrize("kind", sorted(set(HOSTILE) - {"surrogate"}))
def test_an_sms_reply_with_hostile_text_is_answered_politely_and_changes_nothing(client, svc, world, twilio, kind):
    add_on_duty(svc, name="Nia", service="DN", mobile=NIA)
    before = counts(svc)
    bad = HOSTILE[kind]
    for form in ({"MessageSid": "SM" + "1" * 32, "From": NIA, "Body": f"DECLINE {world['referred']} no{bad}"},
                 {"MessageSid": "SM" + "2" * 32, "From": NIA, "Body": f"ACCEPT {world['referred']}{bad}"},
                 {"MessageSid": "SM" + "3" * 32, "From": NIA + bad, "Body": f"ACCEPT {world['referred']}"},
                 {"MessageSid": "SM" + bad, "From": NIA, "Body": f"ACCEPT {world['referred']}"}):
        resp = _signed(client, "/webhooks/twilio/sms/inbound", form)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        assert "<Message>" in resp.get_data(as_text=True)  # the neutral "could not act on this" answer
    assert counts(svc) == before


def test_an_sms_reply_over_several_lines_still_works(client, svc, world, twilio):
    add_on_duty(svc, name="Nia", service="DN", mobile=NIA)
    resp = _signed(client, "/webhooks/twilio/sms/inbound",
                   {"MessageSid": "SM" + "4" * 32, "From": NIA, "Body": f"ACCEPT {world['referred']}\n"})
    assert resp.status_code == 200
    assert counts(svc)["sms_inbound"] == 1


def test_a_delivery_receipt_with_hostile_text_is_400(client, svc, twilio):
    before = counts(svc)
    resp = _signed(client, "/webhooks/twilio/sms/status",
                   {"MessageSid": "SM\x00" + "1" * 30, "MessageStatus": "delivered"})
    assert resp.status_code == 400
    assert counts(svc) == before


def test_a_decline_by_sms_with_a_reason_the_record_refuses_is_answered_not_500(client, svc, world, twilio):
    # A concatenated text can carry 1,600 characters; with a reason over the record's 2,000 (a long body
    # Twilio joined, a tester's script) the service refuses the reason: the reply says where it stands.
    add_on_duty(svc, name="Nia", service="DN", mobile=NIA)
    before = counts(svc)
    resp = _signed(client, "/webhooks/twilio/sms/inbound",
                   {"MessageSid": "SM" + "5" * 32, "From": NIA,
                    "Body": f"DECLINE {world['referred']} " + "no capacity " * 200})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert f"{world['referred']}" in resp.get_data(as_text=True)  # its status: still sent
    after = counts(svc)
    assert after.pop("sms_inbound") == before.pop("sms_inbound") + 1  # the reply itself, as not_allowed
    assert after == before  # no decline, no audit event, no text


# -- text in which nothing shows ------------------------------------------------------------------------
# Text in which nothing shows (domain/validation.looks_blank): only direction marks, joiners, a soft hyphen,
# marks with no letter, a Hangul filler or the blank Braille pattern. A call was logged for a person "named"
# U+200E, with a summary of U+3164: every page showed them empty. Now 422 naming the field, nothing stored,
# on the API and the Log a call form (docs/security.md, "Hostile input").

SHOWS_NOTHING = ["\u200e", "\u200f\u200f", "\u200d", "\u00ad", "\u0301", "\u3164", "\u115f", "\uffa0", "\u2800",
                 "\ufe0f", "\u061c", "\U000e0020", "\u200c \u200e"]


def test_what_looks_blank_and_what_shows():
    for value in SHOWS_NOTHING:
        assert looks_blank(value), repr(value)
    for value in ("Jo", "\u200fJo", "O'Brien", "\u0645\u06cc\u200c\u062e", "\u6771\u4eac", "\u2713", "\U0001F600",
                  "7", ".", "e\u0301"):
        assert not looks_blank(value), repr(value)


@pytest.mark.parametrize("value", SHOWS_NOTHING)
@pytest.mark.parametrize("field, overrides", [
    ("subject.given_name", lambda v: {"subject": {"given_name": v}}),
    ("subject.family_name", lambda v: {"subject": {"family_name": v}}),
    ("summary", lambda v: {"summary": v}),
    ("caller.name", lambda v: {"caller": {"name": v}}),  # optional, but not as a blank-looking name
    ("subject.address_line_1", lambda v: {"subject": {"address_line_1": v}}),
])
def test_intake_refuses_a_field_in_which_nothing_shows(api, svc, field, overrides, value):
    before = counts(svc)
    resp = api("POST", "/api/v1/calls?allow_duplicate=true", call_payload(**overrides(value)))
    assert resp.status_code == 422, resp.get_json()
    assert "only invisible characters" in resp.get_json()["error"]["fields"][field]
    assert counts(svc) == before


def test_a_trigger_reason_in_which_nothing_shows_is_refused(api, svc):
    ref = api("POST", "/api/v1/calls", call_payload()).get_json()["ref"]
    before = counts(svc)
    resp = api("POST", f"/api/v1/calls/{ref}/events", {"trigger": "cancel", "expected_version": 1, "reason": "\u3164"})
    assert resp.status_code == 422, resp.get_json()
    assert "reason" in resp.get_json()["error"]["fields"]
    assert counts(svc) == before


def test_the_log_a_call_form_shows_the_error_beside_the_name(web, svc):
    web_sign_in(web, "handler")
    before = counts(svc)
    resp = web.post("/calls/new", data={**NEW_CALL_FORM, "family_name": "\u200e\u3164"})
    assert resp.status_code == 422
    page = resp.get_data(as_text=True)
    assert "has only invisible characters" in page and 'href="#family_name"' in page
    assert counts(svc) == before


def test_an_escalation_reason_in_which_nothing_shows_is_refused_and_texts_nobody(api, svc):
    ref = api("POST", "/api/v1/calls", call_payload()).get_json()["ref"]
    api("POST", f"/api/v1/calls/{ref}/events", {"trigger": "start_triage", "expected_version": 1})
    referred = api("POST", f"/api/v1/calls/{ref}/events", {"trigger": "refer", "expected_version": 2,
                                                           "data": {"service": "DN"}, "reason": "setup"})
    referral_id = referred.get_json()["referrals"][0]["id"]
    before = counts(svc)
    resp = api("POST", f"/api/v1/calls/{ref}/referrals/{referral_id}/escalate", {"reason": "\u200e\u00ad"},
               as_="supervisor")
    assert resp.status_code == 422, resp.get_json()
    assert "reason" in resp.get_json()["error"]["fields"]
    assert counts(svc) == before
