"""SMS to professionals: templates, the GSM-7 budget and two-way replies.

An SMS travels in clear text over networks and lands on phones that are shared, lost and read on lock
screens, so nothing that identifies a patient may ever be in one (DOMAIN.md, "SMS to professionals").
The guarantee is built here, not left to whoever writes a template:

* Templates can refer only to the fields in ``ALLOWED_FIELDS``, and only as plain ``{{ field }}``:
  no attribute or item access, filters, tests, conditions or loops. A template is therefore its own
  literal text plus the field values, so rendering it once with every field at its longest allowed
  value gives the true worst case, and loading can promise that no message will ever exceed one
  segment (160 GSM-7 characters).
* Every field value is checked against a narrow format when rendering (a reference, a service code,
  a time, a link to the secure page...). A name, NHS number or postcode passed by mistake does not
  match any of them, so it is refused rather than sent, and errors never echo the refused value.
* Replies are parsed into a command, a reference and (for DECLINE) a reason; acting on them, and
  checking that the sender may act on that referral, belongs to the service layer.

Pure: jinja2 only, no Flask, SQLAlchemy, Redis or Twilio.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Iterable, Mapping

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import TemplateError
from jinja2.sandbox import SandboxedEnvironment

from .calendar import LONDON

__all__ = [
    "ALLOWED_FIELDS",
    "COMMANDS",
    "DEFAULT_LINK_BASE",
    "FIELD_MAX_LENGTHS",
    "FIELD_FORMATS",
    "LINK_CODE_ALPHABET",
    "LINK_CODE_LENGTH",
    "LINK_TOKEN_LENGTH",
    "SMS_LIMIT",
    "TEMPLATE_NAMES",
    "URGENCY_TEXT",
    "Reply",
    "SmsTemplateError",
    "SmsTemplates",
    "gsm7_length",
    "is_gsm7",
    "local_time_text",
    "new_link_code",
    "normalise_link_code",
    "normalise_ref",
    "parse_reply",
    "segments",
]

# ---------------------------------------------------------------------------------------------------
# GSM-7 (3GPP TS 23.038, formerly GSM 03.38)
# ---------------------------------------------------------------------------------------------------

# The default alphabet, in code-point order 0x00-0x7F. 0x1B (ESC) is left out: it only introduces an
# extension character and is never a character of the text.
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
# Sent as ESC + one septet, so each costs two of the 160.
_GSM7_EXTENSION = frozenset("^{}\\[~]|€")

SMS_LIMIT = 160  # one GSM-7 segment: DOMAIN.md asks for one segment per message
_GSM7_PART = 153  # a multipart message spends 7 septets of each part on the concatenation header
_UCS2_SINGLE = 70
_UCS2_PART = 67


def is_gsm7(text: str) -> bool:
    """True if every character is in the GSM-7 default alphabet or its extension table."""
    return all(ch in _GSM7_BASIC or ch in _GSM7_EXTENSION for ch in text)


def gsm7_length(text: str) -> int:
    """Length in septets: extension characters count two. Raises ValueError if not GSM-7."""
    total = 0
    for ch in text:
        if ch in _GSM7_BASIC:
            total += 1
        elif ch in _GSM7_EXTENSION:
            total += 2
        else:
            raise ValueError(f"not a GSM-7 character: {ch!r} (U+{ord(ch):04X})")
    return total


def segments(text: str) -> int:
    """How many SMS parts the text needs: GSM-7 when it fits that alphabet, otherwise UCS-2.

    An empty text still costs one part if sent. Multipart counting packs whole characters, because
    an escape pair (GSM-7) or a surrogate pair (UCS-2) is never split across parts, which can make
    a long message one part longer than a plain division suggests.
    """
    if is_gsm7(text):
        units = [2 if ch in _GSM7_EXTENSION else 1 for ch in text]
        single, part = SMS_LIMIT, _GSM7_PART
    else:
        units = [2 if ord(ch) > 0xFFFF else 1 for ch in text]  # UTF-16 code units
        single, part = _UCS2_SINGLE, _UCS2_PART
    if sum(units) <= single:
        return 1
    parts, used = 1, 0
    for size in units:
        if used + size > part:
            parts, used = parts + 1, 0
        used += size
    return parts


def _non_gsm7(text: str) -> list[str]:
    seen: dict[str, None] = {}
    for ch in text:
        if not is_gsm7(ch):
            seen.setdefault(ch)
    return [f"{ch!r} (U+{ord(ch):04X})" for ch in seen]


# ---------------------------------------------------------------------------------------------------
# References and times
# ---------------------------------------------------------------------------------------------------

# Same alphabet as model.new_ref (no 0/O, 1/I/L, U); repeated here so parsing stays a pure function
# of its input, and checked against model's by the tests.
REF_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
_REF = re.compile(rf"[{REF_ALPHABET}]{{4}}-[{REF_ALPHABET}]{{4}}")


def normalise_ref(text: str) -> str | None:
    """'k7m4qx9z', 'K7M4 QX9Z' or 'k7m4-qx9z' -> 'K7M4-QX9Z'; None if it cannot be a reference."""
    body = re.sub(r"[\s-]", "", text).upper()
    if len(body) != 8 or any(ch not in REF_ALPHABET for ch in body):
        return None
    return f"{body[:4]}-{body[4:]}"


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def local_time_text(at: datetime, now: datetime | None = None) -> str:
    """The time a professional reads in an SMS: Europe/London, '14:30' when it falls on the same
    local day as `now`, otherwise 'Mon 23 Nov 14:30'. Names are spelt out here rather than taken
    from strftime so the server's locale cannot change them (or their length)."""
    if at.tzinfo is None or (now is not None and now.tzinfo is None):
        raise ValueError("local_time_text needs timezone-aware datetimes (instants are stored in UTC)")
    local = at.astimezone(LONDON)
    clock = f"{local:%H:%M}"
    today: date | None = now.astimezone(LONDON).date() if now is not None else None
    if local.date() == today:
        return clock
    return f"{_DAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]} {clock}"


# ---------------------------------------------------------------------------------------------------
# Fields a template may use
# ---------------------------------------------------------------------------------------------------

# urgency codes (model.URGENCY_RANK) as a professional reads them; the text form is accepted as well.
URGENCY_TEXT = MappingProxyType(
    {"emergency": "emergency", "urgent": "urgent", "same_day": "same day", "routine": "routine"}
)
_ACTIONS = ("ACCEPT", "DECLINE", "DONE", "STATUS")
_TIME = re.compile(
    rf"(?:(?:{'|'.join(_DAYS)}) (?:[1-9]|[12][0-9]|3[01]) (?:{'|'.join(_MONTHS)}) )?"
    r"(?:[01][0-9]|2[0-3]):[0-5][0-9]"
)
_CODE = re.compile(r"[A-Z][A-Z0-9_]*")  # the directory's code format
# Lower-case words only: a state or breach is a workflow word, never a sentence someone typed.
_WORDS = re.compile(r"[a-z]+(?:[ -][a-z]+)*")

LINK_TOKEN_LENGTH = 22  # the longest token a link may carry: the referral id in base64url, as texts had it
_LINK_TOKEN_MIN = 16  # shorter tokens could be guessed
DEFAULT_LINK_BASE = "https://ipoa.example.nhs.uk"

# The short codes texts carry from now on (`<link base>/r/<code>`). Random, kept in the database with what
# they lead to (service/sms.py), not derived from anything: 10 characters of the references' alphabet (no
# 0/O, 1/I/L, U, so a code read off a lock screen and typed is typed right), 30^10 = 5.9e14 codes (49
# bits). The page behind a link needs sign-in and then the access policy's say-so, so a code is a pointer,
# not a key: guessing one gains nothing the guesser may not already see, and even so a signed-in guesser
# making 100 guesses a second for a year against 10 million codes in use would hit about 50 pointers.
# Twelve characters fewer than the 22-character tokens: what lets a real NHS host name (40 characters)
# fit every template (docs/security.md, "Links in texts").
LINK_CODE_ALPHABET = REF_ALPHABET
LINK_CODE_LENGTH = 10


def new_link_code() -> str:
    import secrets

    return "".join(secrets.choice(LINK_CODE_ALPHABET) for _ in range(LINK_CODE_LENGTH))


def normalise_link_code(text: str) -> str | None:
    """A code as typed or tapped ('k7m4qx9zab' or 'K7M4QX9ZAB') -> 'K7M4QX9ZAB'; None if it cannot be one."""
    code = (text or "").strip().upper()
    if len(code) != LINK_CODE_LENGTH or any(ch not in LINK_CODE_ALPHABET for ch in code):
        return None
    return code


@dataclass(frozen=True)
class _Field:
    max_length: int
    worst: str  # max_length characters in the field's format: what loading renders with
    format: str  # for error messages and documentation
    pattern: re.Pattern[str] | None = None
    choices: Mapping[str, str] | None = None  # accepted value -> what is sent


# Deliberately left out: service_name (names run to 100 characters, e.g. FCPW's, and would crowd out
# the link; the code is what staff use and the secure page shows the name), centre names, need
# (it says what is wrong with the person), any reason (a decline reason is free text and may hold anything: it stays on the secure page),
# and everything about the person. `link` is not here: its format depends on the link base.
# Codes get 6 characters: the directory's are 2-4, and a deployment adding its own needs some room,
# but every character given to a code is taken from the text around the link.
_FIELDS: dict[str, _Field] = {
    "ref": _Field(9, "K7M4-QX9Z", "a call reference like K7M4-QX9Z", _REF),
    "service": _Field(6, "MHCRHT", "a service code like CRT (up to 6 characters)", _CODE),
    "centre": _Field(6, "CHSSPA", "a centre code like CHS (up to 6 characters)", _CODE),
    "urgency": _Field(9, "emergency", "one of: " + ", ".join(sorted(set(URGENCY_TEXT.values()))),
                      choices={**URGENCY_TEXT, **{v: v for v in URGENCY_TEXT.values()}}),
    "due": _Field(16, "Wed 30 Sep 23:59", "a local time like 14:30 or Mon 23 Nov 14:30", _TIME),
    "sent_at": _Field(16, "Wed 30 Sep 23:59", "a local time like 14:30 or Mon 23 Nov 14:30", _TIME),
    "state": _Field(20, "awaiting first visit", "lower-case words like accepted or in progress "
                    "(underscores read as spaces), up to 20 characters", _WORDS),
    "breach": _Field(20, "first visit not made", "lower-case words like not accepted, up to 20 "
                     "characters", _WORDS),
    "action": _Field(7, "DECLINE", "one of: " + ", ".join(_ACTIONS), choices={a: a for a in _ACTIONS}),
    # How many escalations a digest stands for (a storm of breaches for one recipient: one text).
    "total": _Field(4, "9999", "a whole number from 1 to 9999", re.compile(r"[1-9][0-9]{0,3}")),
}
assert all(len(f.worst) == f.max_length for f in _FIELDS.values())

ALLOWED_FIELDS: frozenset[str] = frozenset({*_FIELDS, "link"})
FIELD_MAX_LENGTHS: Mapping[str, int] = MappingProxyType({k: f.max_length for k, f in _FIELDS.items()})
FIELD_FORMATS: Mapping[str, str] = MappingProxyType(
    {**{k: f.format for k, f in _FIELDS.items()},
     "link": f"the secure page: <link base>/r/<a {LINK_CODE_LENGTH}-character code> (the length the templates "
             f"were loaded for; links of earlier texts: {_LINK_TOKEN_MIN}-{LINK_TOKEN_LENGTH} URL-safe characters)"}
)

# The shipped set; the app passes it as `required` so a missing file stops start-up, not a send.
TEMPLATE_NAMES: tuple[str, ...] = (
    "referral_sent",
    "referral_accepted",
    "referral_declined",
    "referral_completed",
    "escalation",
    "escalation_call",
    "escalation_digest",
    "reply_ack",
    "reply_status",
    "reply_unknown",
)


class SmsTemplateError(ValueError):
    """An SMS template or the values given to it are unsafe or too long; the message says which."""


_WHITESPACE = re.compile(r"[ \t\r\n\f\v]+")


def _collapse(text: str) -> str:
    # Templates may wrap lines for readability; a message is one line.
    return _WHITESPACE.sub(" ", text).strip()


def _describe(node: nodes.Node) -> str:
    kinds = {
        nodes.Filter: "a filter", nodes.Test: "a test", nodes.If: "an if", nodes.CondExpr: "an if",
        nodes.For: "a loop", nodes.Const: "a quoted value", nodes.Call: "a call",
        nodes.Assign: "a set", nodes.AssignBlock: "a set", nodes.Macro: "a macro",
        nodes.Include: "an include", nodes.Extends: "an extends", nodes.Block: "a block",
        nodes.Import: "an import", nodes.FromImport: "an import",
    }
    for kind, text in kinds.items():
        if isinstance(node, kind):
            return text
    return f"an expression ({type(node).__name__})"


# ---------------------------------------------------------------------------------------------------
# Templates
# ---------------------------------------------------------------------------------------------------


class SmsTemplates:
    """The checked SMS templates of one folder. Build with `SmsTemplates.load`."""

    def __init__(self, folder: Path, link_base: str, templates: Mapping[str, object],
                 variables: Mapping[str, frozenset[str]], link_code_length: int = LINK_TOKEN_LENGTH):
        self.folder = folder
        self.link_base = link_base
        self.link_code_length = link_code_length
        self._templates = dict(templates)
        self._variables = dict(variables)
        # Nothing longer than the templates were checked with may be rendered.
        shortest = min(_LINK_TOKEN_MIN, link_code_length)
        self._link = re.compile(
            re.escape(link_base) + rf"/r/[A-Za-z0-9_-]{{{shortest},{link_code_length}}}"
        )

    # -- loading ------------------------------------------------------------------------------------

    @classmethod
    def load(cls, folder: Path, link_base: str = DEFAULT_LINK_BASE, *,
             required: Iterable[str] = (), link_code_length: int = LINK_TOKEN_LENGTH) -> SmsTemplates:
        """Load and check every `*.txt` in `folder`; the template's name is the file's stem.

        `link_code_length` is the length of the codes the links will carry: the length check renders
        every link at `link_base` + `/r/` + that many characters, and `render` refuses longer ones. The
        app passes LINK_CODE_LENGTH (ipoa/bootstrap.py); the default, the 22-character token of earlier
        texts, is the longest a link may be, so templates checked with it fit with any code.

        Raises SmsTemplateError listing every problem in every file, so the app refuses to start
        with one message to fix from, rather than failing on the first send.
        """
        folder = Path(folder)
        base = cls._check_link_base(link_base)
        if not 1 <= link_code_length <= LINK_TOKEN_LENGTH:
            raise SmsTemplateError(f"link codes must be 1-{LINK_TOKEN_LENGTH} characters, not {link_code_length}")
        if not folder.is_dir():
            raise SmsTemplateError(f"SMS templates folder {folder} does not exist")
        env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                                   keep_trailing_newline=False)
        # Nothing but the given fields may reach a message, not even Jinja's own helpers.
        env.globals.clear()
        worst = {name: field.worst for name, field in _FIELDS.items()}
        worst["link"] = f"{base}/r/{'Q' * link_code_length}"

        problems: list[str] = []
        templates: dict[str, object] = {}
        variables: dict[str, frozenset[str]] = {}
        paths = sorted(p for p in folder.glob("*.txt") if p.is_file() and not p.name.startswith("."))
        for path in paths:
            found = cls._check_file(env, path, worst)
            if isinstance(found, list):
                problems.extend(f"{path}: {p}" for p in found)
            else:
                templates[path.stem], variables[path.stem] = found

        missing = sorted(set(required) - {p.stem for p in paths})
        if missing:
            problems.append(f"{folder}: missing SMS template(s): " + ", ".join(f"{m}.txt" for m in missing))
        if not paths and not missing:
            problems.append(f"{folder}: no SMS templates (*.txt) found")
        if problems:
            raise SmsTemplateError("SMS templates refused:\n  " + "\n  ".join(problems))
        return cls(folder, base, templates, variables, link_code_length)

    @staticmethod
    def _check_link_base(link_base: str) -> str:
        base = link_base.rstrip("/")
        # Plain http only on this machine's own loopback (the embedded demo); anywhere else the secure
        # page must be reached over https.
        if not re.fullmatch(r"(?:https://[A-Za-z0-9.-]+|http://(?:127\.0\.0\.1|localhost))(?::[0-9]+)?"
                            r"(?:/[A-Za-z0-9._-]+)*", base):
            raise SmsTemplateError(
                f"SMS link base {link_base!r} must be an https:// address with no query or fragment "
                "(links go to the secure page and must carry nothing but its token); plain http only "
                "for 127.0.0.1 or localhost"
            )
        return base

    @staticmethod
    def _check_file(env: SandboxedEnvironment, path: Path, worst: Mapping[str, str]):
        """(template, variables) or a list of problems."""
        try:
            source = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            return [f"not UTF-8 text ({exc.reason} at byte {exc.start})"]
        try:
            tree = env.parse(source, name=path.name)
        except TemplateSyntaxError as exc:
            return [f"line {exc.lineno}: template syntax error: {exc.message}"]

        problems: list[str] = []
        used = meta.find_undeclared_variables(tree)
        forbidden = sorted(used - ALLOWED_FIELDS)
        if forbidden:
            problems.append(
                "refers to " + ", ".join(forbidden) + " which may not be sent by SMS; allowed fields: "
                + ", ".join(sorted(ALLOWED_FIELDS))
            )
        problems.extend(SmsTemplates._check_nodes(tree))
        if problems:
            return problems

        try:
            template = env.from_string(tree)
            text = _collapse(template.render(**worst))
        except TemplateError as exc:
            return [f"cannot be rendered: {exc}"]
        if not text:
            return ["is empty"]
        if not is_gsm7(text):
            return ["renders characters outside GSM-7: " + ", ".join(_non_gsm7(text))]
        length = gsm7_length(text)
        if length > SMS_LIMIT:
            over = length - SMS_LIMIT
            fix = f"shorten its own text by {over} character{'s' if over > 1 else ''}"
            if "link" in used:
                # The link is the one part an operator sets (PUBLIC_BASE_URL): say how long it may be.
                base = worst["link"].rsplit("/r/", 1)[0]
                room = len(base) - over
                fix += (f", or use a link base (PUBLIC_BASE_URL) of at most {room} characters: its links are "
                        f"{base!r} ({len(base)} characters) + '/r/' + a {len(worst['link']) - len(base) - 3}"
                        f"-character code") if room >= len("https://a.b") else (
                        f"; its links alone take {len(worst['link'])} characters on {base!r}")
            return [
                f"renders to {length} GSM-7 characters with the longest allowed values, over the "
                f"{SMS_LIMIT} limit by {over}: {fix}. Longest text: {text!r}"
            ]
        return template, frozenset(used)

    @staticmethod
    def _check_nodes(tree: nodes.Template) -> list[str]:
        problems: list[tuple[int, str]] = []
        stack: list[nodes.Node] = list(tree.iter_child_nodes())
        while stack:
            node = stack.pop()
            line = getattr(node, "lineno", 0) or 0
            if isinstance(node, (nodes.Getattr, nodes.Getitem)):
                # The sandbox blocks the worst of it, but any reach into a value is a way to send more
                # than the value itself.
                problems.append((line, "attribute or item access (like ref.x or ref['x']) is not "
                                       "allowed; use plain {{ field }}"))
            elif isinstance(node, nodes.TemplateData):
                odd = _non_gsm7(_collapse(node.data))
                if odd:
                    problems.append((line, "text has characters outside GSM-7: " + ", ".join(odd)
                                     + " (use plain quotes, hyphens and letters)"))
            elif isinstance(node, nodes.Name) and node.ctx == "load":
                pass
            elif isinstance(node, nodes.Output):
                stack.extend(node.iter_child_nodes())
            else:
                problems.append((line, f"{_describe(node)} is not allowed; an SMS template is plain "
                                       "text and {{ field }} only"))
        return [f"line {line}: {text}" for line, text in sorted(problems)]

    # -- use ----------------------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return sorted(self._templates)

    @property
    def max_lengths(self) -> dict[str, int]:
        """Longest value accepted for each allowed field, the link included."""
        return {**FIELD_MAX_LENGTHS, "link": len(self.link_base) + 3 + self.link_code_length}

    def fields(self, name: str) -> frozenset[str]:
        """The fields template `name` needs."""
        self._template(name)
        return self._variables[name]

    def link_for(self, token: str) -> str:
        """The secure-page link for a token, in the only form `render` accepts."""
        link = f"{self.link_base}/r/{token}"
        if not self._link.fullmatch(link):
            shortest = min(_LINK_TOKEN_MIN, self.link_code_length)
            raise SmsTemplateError(
                f"a link token must be {shortest}-{self.link_code_length} URL-safe characters"
                if shortest < self.link_code_length else
                f"a link code must be {self.link_code_length} URL-safe characters"
            )
        return link

    def render(self, name: str, /, **fields: str) -> str:
        """The message text: one line, GSM-7, at most 160 septets.

        Fields the template does not use may be given (callers can pass one standard set), but every
        value must match its field's format. Errors name the field, never the value, since a refused
        value may be exactly what must not leave the system.
        """
        template = self._template(name)
        unknown = sorted(set(fields) - ALLOWED_FIELDS)
        if unknown:
            raise SmsTemplateError(
                f"SMS template {name!r}: " + ", ".join(unknown) + " may not be sent by SMS; allowed fields: "
                + ", ".join(sorted(ALLOWED_FIELDS))
            )
        missing = sorted(self._variables[name] - set(fields))
        if missing:
            raise SmsTemplateError(f"SMS template {name!r} needs " + ", ".join(missing))
        values = {key: self._value(name, key, value) for key, value in fields.items()}
        text = _collapse(template.render(**values))  # type: ignore[attr-defined]
        # The value checks should make these unreachable; they are what DOMAIN.md promises, so they
        # are checked on the text actually sent rather than inferred.
        if not is_gsm7(text):
            raise SmsTemplateError(f"SMS template {name!r} rendered characters outside GSM-7")
        length = gsm7_length(text)
        if length > SMS_LIMIT:
            raise SmsTemplateError(
                f"SMS template {name!r} rendered {length} GSM-7 characters, over the {SMS_LIMIT} limit"
            )
        return text

    def _template(self, name: str):
        try:
            return self._templates[name]
        except KeyError:
            raise SmsTemplateError(
                f"no SMS template {name!r}; known: {', '.join(self.names) or 'none'}"
            ) from None

    def _value(self, name: str, key: str, value: object) -> str:
        def refuse(why: str) -> SmsTemplateError:
            return SmsTemplateError(f"SMS template {name!r}: field {key!r} {why}; expected {FIELD_FORMATS[key]}")

        if not isinstance(value, str):
            raise refuse(f"must be text, not {type(value).__name__}")
        if key == "link":
            if not self._link.fullmatch(value):
                raise refuse("is not a secure-page link (use link_for)")
            return value
        spec = _FIELDS[key]
        if key in ("state", "breach"):
            value = value.replace("_", " ")
        if spec.choices is not None:
            if value not in spec.choices:
                raise refuse("is not one of the allowed values")
            value = spec.choices[value]
        elif spec.pattern is None or not spec.pattern.fullmatch(value):
            raise refuse("does not have the expected format")
        if len(value) > spec.max_length:
            raise refuse(f"is {len(value)} characters, over its maximum of {spec.max_length}")
        return value


# ---------------------------------------------------------------------------------------------------
# Replies
# ---------------------------------------------------------------------------------------------------

COMMANDS = ("ACCEPT", "DECLINE", "DONE", "STATUS", "STOP", "START", "HELP", "UNKNOWN")

# Twilio's default keywords. Like Twilio, only a message that is the keyword alone counts: a
# professional writing "Cancel K7M4-QX9Z, visit done" must not be opted out of alerts.
_KEYWORDS = {
    **dict.fromkeys(("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"), "STOP"),
    **dict.fromkeys(("START", "YES", "UNSTOP"), "START"),
    **dict.fromkeys(("HELP", "INFO"), "HELP"),
}
_REF_COMMANDS = ("ACCEPT", "DECLINE", "DONE", "STATUS")
_PUNCTUATION = ".,;:!?#\"'()"


@dataclass(frozen=True)
class Reply:
    """A parsed reply. `command` is one of COMMANDS; `ref` is normalised ('K7M4-QX9Z') when one was
    read; `reason` is set only for a complete DECLINE.

    Anything that cannot be acted on as written is UNKNOWN, so a caller that only looks at `command`
    never changes a referral on a partial reply. `problem` says why, for the audit and for choosing
    the neutral reply: 'unknown_command', 'missing_ref', 'bad_ref' or 'missing_reason'.
    """

    command: str
    ref: str | None = None
    reason: str | None = None
    problem: str | None = None


def parse_reply(body: str) -> Reply:
    """Read `ACCEPT <ref>`, `DECLINE <ref> <reason>`, `DONE <ref>`, `STATUS <ref>` and the opt-out
    keywords, forgiving case, spacing, stray punctuation and a reference typed without its dash (or
    split by a space). Words after the reference of ACCEPT, DONE and STATUS are ignored."""
    words = (body or "").split()
    if not words:
        return Reply("UNKNOWN", problem="unknown_command")
    command = words[0].strip(_PUNCTUATION).upper()

    if command in _KEYWORDS:
        if len(words) == 1:
            return Reply(_KEYWORDS[command])
        return Reply("UNKNOWN", problem="unknown_command")
    if command not in _REF_COMMANDS:
        return Reply("UNKNOWN", problem="unknown_command")

    rest = [w.strip(_PUNCTUATION) for w in words[1:]]
    rest = [w for w in rest if w]
    if not rest:
        return Reply("UNKNOWN", problem="missing_ref")
    ref, used = normalise_ref(rest[0]), 1
    if ref is None and len(rest) > 1:
        ref, used = normalise_ref(rest[0] + rest[1]), 2
    if ref is None:
        return Reply("UNKNOWN", problem="bad_ref")

    if command != "DECLINE":
        return Reply(command, ref)
    # The reason keeps the sender's words (it goes to the audit, never into an SMS).
    reason = " ".join(words[1:][_raw_index(words[1:], used):]).strip()
    if not any(ch.isalnum() for ch in reason):
        return Reply("UNKNOWN", ref, problem="missing_reason")
    return Reply("DECLINE", ref, reason)


def _raw_index(raw: list[str], used: int) -> int:
    """Index in `raw` just past the `used` non-empty (after punctuation strip) words."""
    seen = 0
    for i, word in enumerate(raw):
        if word.strip(_PUNCTUATION):
            seen += 1
            if seen == used:
                return i + 1
    return len(raw)
