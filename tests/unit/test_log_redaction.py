"""The logging filter that keeps identifiers out of every log line (ipoa.log_redaction): each kind of
identifier is replaced by a token whichever way it is written, what logs are made of (ids, call references,
Twilio SIDs, durations, ports) is left alone, exceptions and stacks are scrubbed, and install() reaches
handlers that exist, handlers added later and uncaught exceptions, once however often it is called.
Every identifier here is invented: NHS numbers from the never-issued 999 range, Ofcom's drama numbers."""
from __future__ import annotations

import io
import logging
import sys
import threading
import uuid
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipoa import log_redaction
from ipoa.log_redaction import RedactingFilter, install, redact
from tests.helpers.properties import examples

REF_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"


def _nhs_check_digit(nine: str) -> int | None:
    remainder = sum(int(d) * w for d, w in zip(nine, range(10, 1, -1), strict=True)) % 11
    check = 11 - remainder
    return 0 if check == 11 else None if check == 10 else check


@st.composite
def nhs_numbers(draw) -> str:
    nine = "999" + draw(st.text("0123456789", min_size=6, max_size=6))
    check = _nhs_check_digit(nine)
    if check is None:
        nine = nine[:-1] + ("1" if nine[-1] == "0" else "0")
        check = _nhs_check_digit(nine)
    if check is None:  # both ways invalid: extremely rare, pick a known one
        return "9990000026"
    return nine + str(check)


def _spaced(digits: str, sep: str) -> str:
    return f"{digits[:3]}{sep}{digits[3:6]}{sep}{digits[6:]}"


@st.composite
def uk_mobiles(draw) -> str:
    """A UK mobile as people and systems write it; the digits after 07 are free."""
    rest = draw(st.text("0123456789", min_size=9, max_size=9))
    national = "7" + rest  # 10 digits
    return draw(st.sampled_from([
        f"0{national}", f"0{national[:4]} {national[4:]}", f"0{national[:4]} {national[4:7]} {national[7:]}",
        f"+44{national}", f"+44 {national[:4]} {national[4:]}", f"+44 (0){national[:4]} {national[4:]}",
        f"0044{national}", f"0{national[:4]}-{national[4:]}",
    ]))


OUTWARD_1 = "ABCDEFGHIJKLMNOPRSTUWYZ"   # first letter of a postcode (never Q V X)
OUTWARD_2 = "ABCDEFGHKLMNOPQRSTUVWXY"   # second letter (never I J Z)
OUTWARD_A9A = "ABCDEFGHJKPSTUW"
OUTWARD_AA9A = "ABEHMNPRVWXY"
INWARD = "ABDEFGHJLNPQRSTUWXYZ"        # never C I K M O V


@st.composite
def postcodes(draw) -> str:
    d = st.sampled_from("0123456789")
    shape = draw(st.sampled_from(["A9", "A99", "AA9", "AA99", "A9A", "AA9A"]))
    outward = {
        "A9": lambda: draw(st.sampled_from(OUTWARD_1)) + draw(d),
        "A99": lambda: draw(st.sampled_from(OUTWARD_1)) + draw(d) + draw(d),
        "AA9": lambda: draw(st.sampled_from(OUTWARD_1)) + draw(st.sampled_from(OUTWARD_2)) + draw(d),
        "AA99": lambda: draw(st.sampled_from(OUTWARD_1)) + draw(st.sampled_from(OUTWARD_2)) + draw(d) + draw(d),
        "A9A": lambda: draw(st.sampled_from(OUTWARD_1)) + draw(d) + draw(st.sampled_from(OUTWARD_A9A)),
        "AA9A": lambda: (draw(st.sampled_from(OUTWARD_1)) + draw(st.sampled_from(OUTWARD_2)) + draw(d)
                         + draw(st.sampled_from(OUTWARD_AA9A))),
    }[shape]()
    inward = draw(d) + draw(st.sampled_from(INWARD)) + draw(st.sampled_from(INWARD))
    text = outward + draw(st.sampled_from(["", " ", "  "])) + inward
    return draw(st.sampled_from([text, text.lower()]))


DATE_FORMATS = ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%d/%m/%y", "%m/%d/%Y",
                "%d %b %Y", "%d %B %Y", "%d-%b-%Y", "%B %d, %Y", "%b %d %Y"]


def _assert_redacted(value: str, token: str | None = None) -> str:
    out = redact(f"before {value} after")
    assert value not in out
    assert out.startswith("before ") and out.endswith(" after"), out
    if token:
        assert token in out, out
    return out


@settings(max_examples=examples(200))
@given(nhs_numbers(), st.sampled_from(["", " ", "-"]))
def test_nhs_numbers_are_redacted(number, sep):
    assert _assert_redacted(_spaced(number, sep), "[nhs-number]") == "before [nhs-number] after"


@settings(max_examples=examples(200))
@given(uk_mobiles())
def test_uk_mobiles_are_redacted(mobile):
    assert _assert_redacted(mobile, "[phone]") == "before [phone] after"


@pytest.mark.parametrize("number", ["020 7946 0000", "0116 496 0000", "(0116) 496 0000", "01632 960000",
                                    "0300 123 4567", "+44 20 7946 0000", "+14155550123", "+33 1 23 45 67 89"])
def test_other_phone_numbers_are_redacted(number):
    assert _assert_redacted(number, "[phone]") == "before [phone] after"


def test_a_mobile_without_its_leading_zero_is_redacted_too():
    _assert_redacted("7700900123")


@pytest.mark.parametrize("number", ["447700900123", "441164960000", "442079460000"])
def test_a_uk_number_in_e164_without_its_plus_is_redacted(number):
    """As a client, or Twilio's error, may write a number: "The 'To' number 447700900123 is not valid"."""
    assert _assert_redacted(number, "[phone]") == "before [phone] after"


@settings(max_examples=examples(300))
@given(postcodes())
def test_postcodes_are_redacted(postcode):
    assert _assert_redacted(postcode, "[postcode]") == "before [postcode] after"


@pytest.mark.parametrize("postcode", ["LE11 3AB", "le11 3ab", "LE113AB", "le11   3ab", "GIR 0AA", "gir0aa",
                                      "W1A 0AX", "EC1A 1BB", "LE15%206XY", "LE15+6XY"])
def test_postcodes_as_typed_and_as_in_urls_are_redacted(postcode):
    _assert_redacted(postcode, "[postcode]")


@settings(max_examples=examples(300))
@given(st.dates(min_value=date(1890, 1, 1), max_value=date(2099, 12, 31)), st.sampled_from(DATE_FORMATS))
def test_dates_are_redacted(day, fmt):
    assert _assert_redacted(day.strftime(fmt), "[date]") == "before [date] after"


@pytest.mark.parametrize("text", ["19th July 1931", "July 19, 1931", "19 Jul. 1931", "2026-11-23T10:00:00+00:00",
                                  "2026-11-23 10:00:00.123456", "2026-11-23T10:00Z", "1931-7-19"])
def test_other_ways_of_writing_a_date_are_redacted(text):
    assert _assert_redacted(text, "[date]") == "before [date] after"


@pytest.mark.parametrize("text, token", [
    # As a URL's query string writes them, in an access log line: a space as + or %20, + as %2B, / as %2F.
    ("07700+900123", "[phone]"), ("07700%20900123", "[phone]"), ("%2B447700900123", "[phone]"),
    ("%2B44+7700+900123", "[phone]"), ("%2b14155550100", "[phone]"), ("+44+7700+900123", "[phone]"),
    ("19%2F07%2F1931", "[date]"), ("1931%2F07%2F19", "[date]"), ("1931.07.19", "[date]"),
    # A date object's repr (a row, an argument): datetime.date(1931, 7, 19).
    ("datetime.date(1931, 7, 19)", "[date]"), ("datetime.datetime(2026, 11, 23, 10, 0, tzinfo=UTC)", "[date]"),
])
def test_identifiers_as_urls_and_reprs_write_them_are_redacted(text, token):
    assert _assert_redacted(text, token) == f"before {token} after"


def test_sqlalchemys_debug_rows_are_never_logged():
    logger, stream = _logger_with_stream("sqlalchemy.engine.Engine.test")
    logger.setLevel(logging.DEBUG)
    logger.handlers[0].addFilter(RedactingFilter())
    logger.debug("Row %r", (1, "2T43-PWTG", "Wilhelmina", "7 Quincewhistle Lane", "Marmalade-kettle"))
    logger.debug("Col %r", ("id", "ref", "given_name"))
    out = stream.getvalue()
    assert "Row [row]" in out and "Wilhelmina" not in out and "Quincewhistle" not in out
    assert "given_name" in out  # the columns' names are no one's details


def test_a_weekday_in_front_of_a_date_stays():
    assert redact("on Sunday 19 July 1931, Sun 19th Jul 1931") == "on Sunday [date], Sun [date]"


def test_postgres_failing_row_detail_is_redacted_even_across_lines():
    message = ('(psycopg.errors.CheckViolation) new row for relation "calls" violates check constraint "x"\n'
               'DETAIL:  Failing row contains (7, ABCD-2345, Zebedee, Quixotically\n(the summary), 1931-07-19).\n'
               '[SQL: INSERT INTO calls (ref) VALUES (%(ref)s)]\n[SQL parameters hidden due to hide_parameters=True]')
    out = redact(message)
    for secret in ("Zebedee", "Quixotically", "the summary", "1931"):
        assert secret not in out
    assert "Failing row contains [row]." in out
    assert "[SQL: INSERT INTO calls (ref) VALUES (%(ref)s)]" in out  # the statement stays: it names columns


def test_postgres_failing_row_detail_in_a_traceback_is_redacted():
    text = ('psycopg.errors.RaiseException: forced\nDETAIL:  Failing row contains (Zebedee, x).\n\n'
            'The above exception was the direct cause of the following exception:\n\nTraceback ...')
    out = redact(text)
    assert "Zebedee" not in out and "The above exception was the direct cause" in out


def test_a_failing_row_ends_where_the_next_field_of_the_error_starts():
    text = ('psycopg.errors.RaiseException: forced\nDETAIL:  Failing row contains (1,"Zeb\n(x)").\n'
            'CONTEXT:  PL/pgSQL function f() line 2 at RAISE\n\nThe above exception ...\n'
            'sqlalchemy.exc.InternalError: (psycopg.errors.RaiseException) forced\n'
            '(Background on this error at: https://sqlalche.me/e/21/2j85)')
    assert redact(text) == text.replace('(1,"Zeb\n(x)")', "[row]")


def test_a_failing_row_without_its_usual_ending_is_redacted_to_the_end_of_the_line():
    out = redact("failed (Failing row contains (Zebedee, Quixotically; retrying)\nnext line")
    assert "Zebedee" not in out and out.endswith("\nnext line")


@pytest.mark.parametrize("detail, expected", [
    ("DETAIL:  Key (nhs_number)=(Quixotically) already exists.", "DETAIL:  Key (nhs_number)=([value]) already exists."),
    ('Key (professional_id)=(Zebedee (x)) is not present in table "professionals".',
     'Key (professional_id)=([value]) is not present in table "professionals".'),
    ("Key (lower(name::text))=(Zebedee) conflicts with existing key (lower(name::text))=(Wilhelmina).",
     "Key (lower(name::text))=([value]) conflicts with existing key (lower(name::text))=([value])."),
])
def test_postgres_key_details_keep_the_columns_and_lose_the_values(detail, expected):
    assert redact(detail) == expected


@settings(max_examples=examples(200))
@given(st.uuids(), st.text(REF_ALPHABET, min_size=8, max_size=8), st.uuids())
def test_ids_references_and_sids_are_left_alone(an_id, ref_chars, sid):
    ref = f"{ref_chars[:4]}-{ref_chars[4:]}"
    line = (f"outbox {an_id.hex} topic=referral.sent ref={ref} sms {sid.hex} provider_sid=SM{sid.hex} "
            f"job {an_id} console CONSOLE{an_id.hex[:26]}")
    assert redact(line) == line


@pytest.mark.parametrize("line", [
    "GET /api/v1/calls/ABCD-2345 HTTP/1.1 200 took 12.5s",
    'POST /webhooks/twilio/sms/inbound HTTP/1.1" 500 265 "-" "python-requests/2.32.3"',
    '127.0.0.1 - - [02/Dec/2026:21:35:00 +0000] "GET /healthz HTTP/1.1" 200 16',
    "listening at http://127.0.0.1:43517 (12345)",
    "connected to 127.0.0.1:5432 and localhost:6379 in 350ms, p95 3ms, p99 12ms",
    "sla breach ref=ABCD-2345 clock=triage late=3600s",
    "scheduler handed over 12 due timer(s) at 10:00:00",
    "relay swept 3 event(s) and 10 text(s) left behind",
    "Worker exiting (pid: 12345)",
    "at 0x7f3a2b1c9d00 line 1234",
    "SMS (console) to +4477009******: ABCD-2345 accepted by DN",
])
def test_ordinary_log_lines_are_left_alone(line):
    if "+4477009" in line:  # a masked number keeps its mask; the visible part may go too
        assert "******" in redact(line) and "ABCD-2345" in redact(line)
    else:
        assert redact(line) == line


def _logger_with_stream(name: str) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


def test_the_filter_redacts_message_args_exception_and_stack():
    logger, stream = _logger_with_stream("test.redaction.filter")
    logger.handlers[0].addFilter(RedactingFilter())
    try:
        raise ValueError("no call for 9990000026 born 1931-07-19")
    except ValueError:
        logger.exception("lookup of %s at %s failed", "07700 900123", "LE15 6XY", stack_info=True)
    out = stream.getvalue()
    for secret in ("9990000026", "1931-07-19", "07700 900123", "LE15 6XY"):
        assert secret not in out
    assert "lookup of [phone] at [postcode] failed" in out
    assert "ValueError: no call for [nhs-number] born [date]" in out
    assert "Traceback (most recent call last)" in out and "Stack (most recent call last)" in out


def test_a_record_is_redacted_once_and_its_raw_exception_dropped():
    try:
        raise RuntimeError("9990000026")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "for %s", ("LE15 6XY",), sys.exc_info())
    f = RedactingFilter()
    assert f.filter(record) is True
    assert record.msg == "for [postcode]" and record.args == ()
    assert record.exc_info is None and "RuntimeError: [nhs-number]" in record.exc_text
    first = record.msg
    f.filter(record)
    assert record.msg is first
    assert logging.Formatter().format(record).endswith("RuntimeError: [nhs-number]")


def test_a_message_that_cannot_be_formatted_is_still_redacted():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "two %s %s", ("9990000026",), None)
    RedactingFilter().filter(record)
    assert "9990000026" not in record.msg and "[nhs-number]" in record.msg


@pytest.fixture
def pristine_logging():
    """install() changes process-wide state: start from the standard library's and put back what was."""
    saved = (logging.getLogRecordFactory(), sys.excepthook, threading.excepthook)
    logging.setLogRecordFactory(logging.LogRecord)
    sys.excepthook, threading.excepthook = sys.__excepthook__, threading.__excepthook__
    yield
    logging.setLogRecordFactory(saved[0])
    sys.excepthook, threading.excepthook = saved[1], saved[2]


def test_install_filters_existing_handlers_and_is_idempotent(pristine_logging):
    logger, stream = _logger_with_stream("test.redaction.existing")
    handler = logger.handlers[0]
    install()
    factory = logging.getLogRecordFactory()
    install()
    assert logging.getLogRecordFactory() is factory  # wrapped once
    assert getattr(factory, "ipoa_redacting", False)
    assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
    assert sys.excepthook is log_redaction._log_uncaught
    assert threading.excepthook is log_redaction._log_uncaught_in_thread
    logger.info("caller %s", "+447700900123")
    assert stream.getvalue() == "INFO caller [phone]\n"


def test_handlers_added_after_install_get_redacted_records(pristine_logging):
    install()
    logger, stream = _logger_with_stream(f"test.redaction.later.{uuid.uuid4().hex}")  # as RQ and gunicorn do
    assert not logger.handlers[0].filters
    try:
        {}["LE15 6XY"]
    except KeyError:
        logger.exception("failed for %s", "999 000 0026")
    out = stream.getvalue()
    assert "LE15 6XY" not in out and "999 000 0026" not in out
    assert "failed for [nhs-number]" in out and "KeyError: '[postcode]'" in out


def test_uncaught_exceptions_are_logged_redacted(pristine_logging):
    install()
    _, stream = _logger_with_stream("ipoa.uncaught")
    try:
        raise ValueError("Quixotically 9990000026")
    except ValueError:
        sys.excepthook(*sys.exc_info())
    thread = threading.Thread(target=lambda: int("07700 900123"), name="t-redaction")
    thread.start()
    thread.join()
    out = stream.getvalue()
    assert "9990000026" not in out and "07700 900123" not in out
    assert "CRITICAL uncaught ValueError" in out and "ValueError: Quixotically [nhs-number]" in out
    assert "uncaught ValueError in thread t-redaction" in out and "'[phone]'" in out
    uncaught = logging.getLogger("ipoa.uncaught")
    uncaught.handlers.clear()
    uncaught.propagate, uncaught.level = True, logging.NOTSET


def test_redaction_is_cheap():
    import time

    lines = ["outbox 0f3c9a1b2c3d4e5f60718293a4b5c6d7 topic=referral.sent ref=ABCD-2345 sms=1"] * 2000 + [
        "GET /healthz HTTP/1.1 200"] * 2000
    started = time.perf_counter()
    for line in lines:
        redact(line)
    assert (time.perf_counter() - started) / len(lines) < 200e-6  # tens of microseconds a line, in fact


@pytest.mark.timeout(20)
@pytest.mark.parametrize("text", [
    "Failing row contains (" + "x) " * 50_000,
    "Key (a)=(" + "b) " * 50_000,
    "0 1 2 3 4 5 6 7 8 9 " * 10_000,
    "07700 " * 20_000,
    "LE15 " * 20_000 + "Jan " * 20_000 + "12/" * 20_000,
])
def test_no_input_makes_redaction_slow(text):
    import time

    started = time.perf_counter()
    redact(text)
    assert time.perf_counter() - started < 2


def test_a_failed_jobs_exception_is_redacted_on_the_exceptions_panel():
    # RQ keeps a failed job's exception text in Redis; the supervisor's panel shows its last line.
    from ipoa.service.dashboard import _last_line

    text = ('Traceback (most recent call last):\n  File "x.py", line 1, in f\n'
            "psycopg.errors.NotNullViolation: null value\nDETAIL:  Failing row contains (1, Edith, 9990000026, "
            "1938-04-02, LE11 3AB, 07911 123456).")
    shown = _last_line(text)
    assert shown.startswith("psycopg.errors.NotNullViolation")
    for secret in ("Edith", "9990000026", "1938-04-02", "LE11 3AB", "07911 123456"):
        assert secret not in shown


def test_a_uuid_whose_first_group_reads_as_a_date_is_left_alone():
    # Found by hypothesis: 22170521 is a valid compact date, and a UUID's first group.
    line = "job 22170521-81c2-7651-4ce1-16055ccc1f6d done; born 19310719"
    assert redact(line) == "job 22170521-81c2-7651-4ce1-16055ccc1f6d done; born [date]"
