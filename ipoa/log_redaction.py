"""Defence in depth for "no identifiers in logs, ever": every log record is scrubbed of NHS numbers, UK
phone numbers, postcodes and dates, and of the row values PostgreSQL echoes in an error's DETAIL, before
any handler writes it. The first defence is elsewhere: the SQLAlchemy engines hide statement parameters
(adapters/db.py) and messages name a field, never its value.

`install()` puts a RedactingFilter on every handler that exists and wraps the log record factory, so
records are already scrubbed when they are created, whichever handler (RQ's, gunicorn's, one added
later) writes them; uncaught exceptions go through logging too. Pure: no Flask or SQLAlchemy here."""
from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

__all__ = ["RedactingFilter", "install", "redact", "redact_record"]

_B = r"(?<![0-9A-Za-z])"  # no letter or digit just before: ids, SIDs and references stay whole
_E = r"(?![0-9A-Za-z])"   # ... nor just after
_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
          r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
_DAY = r"(?:0?[1-9]|[12][0-9]|3[01])"
_DAY_TH = _DAY + r"(?:st|nd|rd|th)?"
_TIME = r"(?:[T ][0-2][0-9]:[0-5][0-9](?::[0-5][0-9](?:[.,][0-9]+)?)?(?:Z|[+-][0-2][0-9]:?[0-5][0-9])?)?"
_POSTCODE_SEP = r"(?:[ \t]{0,3}|%20|\+)"
# As a URL's query string writes them (an access log line): a space as + or %20, a + as %2B, a / as %2F.
_GAP = r"(?:[ -]|%20|\+)"
_PLUS = r"(?:\+|%2[Bb])"
_SLASH = r"(?:[-/]|%2[Ff])"

# PostgreSQL's DETAIL lines echo row values: "Failing row contains (...)." and "Key (col)=(value) ...".
# A value can hold brackets and newlines, so the row runs to the bracket that the DETAIL's end follows
# (the next field of the error, "CONTEXT:  ...", SQLAlchemy's "[SQL: ...]", a blank line in a traceback,
# the end of the text); failing that, to the end of the line. PostgreSQL clips each value of the row to 64
# bytes, so a row description is a few thousand characters at most: the search looks no further.
_ROW = re.compile(r"Failing row contains \(.{0,20000}?\)(?=\.?(?:\n\[SQL:|\n[A-Z][A-Z ]*:  |\n\n|\s*\Z))",
                  re.DOTALL)
_ROW_LINE = re.compile(r"Failing row contains \([^\n]*")
_KEY = re.compile(r"(Key \()([^\n]{0,500}?)(\)=\().{0,20000}?\)(?= already exists| is not present"
                  r"| is still referenced| conflicts with|\.?(?:\n|\Z))", re.DOTALL | re.IGNORECASE)

# In order: each pass runs on the text the previous ones left.
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # ISO dates (1931-07-19, 1931/07/19), with a time of day if it has one: the whole instant goes.
    (re.compile(_B + r"(?:1[89]|2[0-9])[0-9]{2}(" + _SLASH + r"|\.)(?:0?[1-9]|1[0-2])\1" + _DAY + _TIME
                + r"(?![0-9])"), "[date]"),
    # A date object's repr, as a row or an argument prints it: datetime.date(1931, 7, 19).
    (re.compile(r"datetime\.date(?:time)?\((?:1[89]|2[0-9])[0-9]{2}, [0-9]{1,2}, [0-9]{1,2}[^)]{0,60}\)"),
     "[date]"),
    # Compact 19310719; not the first group of a UUID that happens to read as one (22170521-81c2-...).
    # Nor the digits after a URL's %20 (07700%20900123 is a phone number, not 2090-01-23).
    (re.compile(_B + r"(?<!%)(?:1[89]|2[0-9])[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])" + _E
                + r"(?!-[0-9A-Fa-f]{4}-)"), "[date]"),
    # 19/07/1931, 19-07-31, 19.07.1931 (either order of day and month).
    (re.compile(_B + _DAY + "(" + _SLASH + ")" + _DAY + r"\1(?:[0-9]{4}|[0-9]{2})" + _E), "[date]"),
    (re.compile(_B + _DAY + r"\." + _DAY + r"\.[0-9]{4}" + _E), "[date]"),
    # 19 Jul 1931, 19th July 1931, 19-Jul-1931; July 19, 1931. (A weekday in front stays: it says nothing.)
    # The day-first form starts with its digit and looks back after it, so the search skips other text fast.
    (re.compile(r"[0-9](?<![0-9A-Za-z].)[0-9]?(?:st|nd|rd|th)?[ -]" + _MONTH + r"\.?,?[ -][0-9]{4}" + _E,
                re.IGNORECASE), "[date]"),
    (re.compile(_B + _MONTH + r"\.?[ ]+" + _DAY_TH + r",?[ ]+[0-9]{4}" + _E, re.IGNORECASE), "[date]"),
    # UK numbers: +44 7700 900123, +44 (0)116 496 0000, 0044..., 07700 900123, 020 7946 0000.
    (re.compile(r"(?<![0-9A-Za-z+])(?:(?:" + _PLUS + r"|00)44" + _GAP + r"?(?:\(0\)" + _GAP + r"?)?|\(?0)[1-9]"
                + r"(?:" + _GAP + r"?\)?" + _GAP + r"?[0-9]){8,9}" + _E), "[phone]"),
    # A UK number in E.164 without its + (447700900123, as a client or a Twilio error may write it): 44 and
    # the 10 or 9 digits after the leading 0, whole.
    (re.compile(r"(?<![0-9A-Za-z+%])44[1-9][0-9]{8,9}" + _E), "[phone]"),
    # Any other E.164 number.
    (re.compile(r"(?<![0-9A-Za-z+])" + _PLUS + r"[1-9](?:" + _GAP + r"?[0-9]){6,14}" + _E), "[phone]"),
    # NHS numbers: ten digits, or 3-3-4 with spaces or hyphens (a UK mobile without its 0, too).
    (re.compile(_B + r"[0-9]{3}([ -]|%20|\+|)[0-9]{3}\1[0-9]{4}" + _E), "[nhs-number]"),
    # Postcodes, spaced or not, any case. The inward letters are Royal Mail's (never C I K M O V), which
    # keeps "p95 3ms" a duration.
    (re.compile(_B + r"(?:GIR" + _POSTCODE_SEP + r"0AA|(?:[A-Z][A-HJ-Y]?[0-9][0-9A-Z]?)" + _POSTCODE_SEP
                + r"[0-9][ABD-HJLNP-UW-Z]{2})" + _E, re.IGNORECASE), "[postcode]"),
)
_NEEDS_A_LOOK = re.compile(r"[0-9]|Failing row|Key \(", re.IGNORECASE)
_FORMATTER = logging.Formatter()


def redact(text: str) -> str:
    """`text` with every identifier the patterns know replaced by a token ([nhs-number], [phone], ...)."""
    if not _NEEDS_A_LOOK.search(text):  # most log lines: nothing to look at
        return text
    if "Failing row" in text:
        text = _ROW_LINE.sub("Failing row contains [row]", _ROW.sub("Failing row contains [row]", text))
    if "ey (" in text:
        text = _KEY.sub(r"\1\2\3[value])", text)
    for pattern, token in _PATTERNS:
        text = pattern.sub(token, text)
    return text


def redact_record(record: logging.LogRecord) -> None:
    """Scrub a record in place: its formatted message (args folded in), exception text and stack. The
    exception is formatted here and exc_info cleared, so no handler formats the raw one again."""
    if getattr(record, "_redacted", None) is record.msg and not record.args and record.exc_info is None:
        return  # already done (at creation, or by another handler's filter)
    if record.msg == "Row %r" and record.name.startswith("sqlalchemy.engine"):
        # SQLAlchemy's engine logger at DEBUG prints every row it reads, whole: names, addresses, summaries
        # (hide_parameters hides only a statement's parameters). What a row held is nobody's log line.
        record.msg, record.args = "Row [row]", ()
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a bad format string: keep what there is, scrubbed
        message = f"{record.msg!s} {record.args!r}"
    record.msg, record.args = redact(message), ()
    if record.exc_info:
        record.exc_text = redact(_FORMATTER.formatException(record.exc_info))
        record.exc_info = None
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    record._redacted = record.msg


class RedactingFilter(logging.Filter):
    """Rewrites every record it sees (it drops none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


_lock = threading.Lock()
_filter = RedactingFilter()


# What install() has put in place carries this attribute, so installing again leaves it be (and does not
# wrap the record factory twice).
_MARK = "ipoa_redacting"
_F = TypeVar("_F", bound=Callable[..., Any])


def _marked(fn: _F) -> _F:
    setattr(fn, _MARK, True)  # a function takes attributes; a Callable's type does not say so
    return fn


def _redacting_factory(base: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    @_marked
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        redact_record(record)
        return record

    return factory


@_marked
def _log_uncaught(exc_type: type[BaseException], exc_value: BaseException,
                  exc_tb: TracebackType | None) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc_value, exc_tb)
        return
    logging.getLogger("ipoa.uncaught").critical("uncaught %s", exc_type.__name__,
                                                exc_info=(exc_type, exc_value, exc_tb))


@_marked
def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    # exc_value is typed Optional, but a thread's uncaught exception always has one (sys.exc_info()).
    exc_info = ((args.exc_type, args.exc_value, args.exc_traceback) if args.exc_value is not None
                else (None, None, None))
    logging.getLogger("ipoa.uncaught").critical("uncaught %s in thread %s", args.exc_type.__name__, name,
                                                exc_info=exc_info)


def _add_filter(handler: logging.Handler) -> None:
    if not any(isinstance(f, RedactingFilter) for f in handler.filters):
        handler.addFilter(_filter)


def install() -> None:
    """Redact every log record of this process from now on. Safe to call again: installs once, and
    puts the filter on handlers added since."""
    with _lock:
        if not getattr(logging.getLogRecordFactory(), _MARK, False):
            logging.setLogRecordFactory(_redacting_factory(logging.getLogRecordFactory()))
        if not getattr(sys.excepthook, _MARK, False):
            sys.excepthook = _log_uncaught
        if not getattr(threading.excepthook, _MARK, False):
            threading.excepthook = _log_uncaught_in_thread
        loggers = [logging.getLogger()] + [lg for lg in list(logging.Logger.manager.loggerDict.values())
                                           if isinstance(lg, logging.Logger)]
        for logger in loggers:
            for handler in list(logger.handlers):
                _add_filter(handler)
