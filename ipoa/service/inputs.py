"""Inputs of the use cases, validated with pydantic. Every problem is reported against the field it
belongs to (dotted paths, as the API's clients send them)."""
from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from ..domain import field_messages as fm
from ..domain.input_models import Strict
from ..domain.sharing import CONSENT
from ..domain.urgency import Urgency
from ..domain.validation import (
    INVISIBLE,
    blank_problem,
    invisible_problem,
    normalise_nhs_number,
    normalise_postcode,
    normalise_uk_mobile,
    normalise_uk_phone,
    text_errors,
    text_problem,
)

CallerType = Literal["patient", "carer", "professional", "care_home", "public"]
CALLER_TYPES: tuple[str, ...] = get_args(CallerType)


class InvalidInput(Exception):
    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


# Pydantic's error types, as the kinds of problem domain/field_messages.py has a message for.
_KINDS = {"missing": fm.REQUIRED, "string_too_short": fm.REQUIRED, "string_too_long": fm.TOO_LONG,
          "too_short": fm.REQUIRED, "too_long": fm.TOO_LONG,
          "literal_error": fm.CHOOSE, "enum": fm.CHOOSE, "extra_forbidden": fm.NOT_EXPECTED,
          "greater_than_equal": fm.RANGE, "less_than_equal": fm.RANGE, "greater_than": fm.RANGE,
          "less_than": fm.RANGE}
_EXPECTED = {"string": "text", "bool": "true or false", "int": "a whole number", "float": "a number",
             "dict": "an object", "model": "an object", "list": "a list"}


class Refusal(ValueError):
    """A validator's refusal as a kind of problem (domain/field_messages.py): parse() words it for the
    field it is found at, so one validator serves every field it is used on."""

    def __init__(self, kind: str, **params: object):
        self.kind, self.params = kind, params
        super().__init__(fm.message("", kind, **params))


def refuse(kind: str, **params: object) -> Refusal:
    return Refusal(kind, **params)


def _message(path: str, err: Mapping[str, Any]) -> str:
    """The field's own message (domain/field_messages.py) for a pydantic error: never pydantic's words."""
    kind, ctx = str(err["type"]), dict(err.get("ctx") or {})
    refusal = ctx.get("error")
    if isinstance(refusal, Refusal):  # raised by our validators
        return fm.message(path, refusal.kind, **refusal.params)
    if kind == "value_error":  # a validator's own plain message
        return str(err["msg"]).removeprefix("Value error, ")
    if kind in _KINDS:
        own = _KINDS[kind]
    elif kind.startswith(("date", "datetime", "time")):
        own = fm.FORMAT
    else:
        own = fm.TYPE
        ctx["expected"] = next((v for k, v in _EXPECTED.items() if kind.startswith(k)), "a value")
    if own in (fm.TYPE, fm.CHOOSE, fm.UNKNOWN, fm.FORMAT, fm.INVALID) and err.get("input") in (None, ""):
        own = fm.REQUIRED  # an empty box or a null: say what to enter, not what was wrong with nothing
    params: dict[str, object] = {k: v for k, v in ctx.items() if isinstance(v, (str, int))}
    if own == fm.TOO_LONG:
        params["max"] = ctx.get("max_length", "fewer")
    if own == fm.RANGE:
        params.setdefault("min", ctx.get("ge", ctx.get("gt", "")))
        params.setdefault("max", ctx.get("le", ctx.get("lt", "")))
    return fm.message(path, own, **params)


def _errors(exc: ValidationError) -> dict[str, str]:
    out: dict[str, str] = {}
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        if "[key]" in loc:  # a key that is not a valid string (a lone surrogate): at its parent, not echoed
            loc = loc[:max(loc.index("[key]") - 1, 0)]
        for i, part in enumerate(loc):
            if text_problem(part):  # a key with a control character: at its parent, never echoed
                loc = loc[:i]
                break
        path = ".".join(loc) or "body"
        out.setdefault(path, _message(path, err))
    return out


def parse(model: type[BaseModel], data: Any, **context: Any) -> Any:
    if not isinstance(data, dict):
        raise InvalidInput({"body": "Expected a JSON object."})
    # Every string in the input, wherever it sits (free-form trigger data and consent overrides too), is
    # checked as it came: before pydantic strips whitespace, which would hide a leading control
    # character, and before anything reaches the database (PostgreSQL cannot store a NUL).
    bad_text = text_errors(data)
    try:
        cmd = model.model_validate(data, context=context)
    except ValidationError as exc:
        raise InvalidInput({**_errors(exc), **bad_text}) from None
    if bad_text:
        raise InvalidInput(bad_text)
    return cmd


def _single_line(v: str, info: ValidationInfo) -> str:
    problem = (text_problem(v, field=info.field_name) or invisible_problem(v, field=info.field_name)
               or blank_problem(v, field=info.field_name))
    if problem:
        raise ValueError(problem)
    return v


def _multi_line(v: str, info: ValidationInfo) -> str:
    problem = text_problem(v, multiline=True, field=info.field_name) or blank_problem(v, field=info.field_name)
    if problem:
        raise ValueError(problem)
    return v


# The shared validated strings: Line for names, codes and the like (no control characters, no line
# breaks, no bidirectional overrides, no invisible characters such as a zero-width space); Text for
# multi-line free text (summaries, reasons, notes), which may hold tabs and line breaks. See
# domain/validation.py for what is refused and why.
# The patterns only tell API clients (and the fuzzing in tests/security) what is refused; the
# validators enforce it (and unpaired surrogates, which a pattern cannot name, and a value in which
# nothing shows: domain/validation.looks_blank).
_REFUSED = "\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f\\u202a-\\u202e\\u2066-\\u2069"
LINE_PATTERN = f"^[^{_REFUSED}\\t\\n\\r\\u2028\\u2029{INVISIBLE}]*$"
TEXT_PATTERN = f"^[^{_REFUSED}]*$"
Line = Annotated[str, AfterValidator(_single_line), Field(json_schema_extra={"pattern": LINE_PATTERN})]
Text = Annotated[str, AfterValidator(_multi_line), Field(json_schema_extra={"pattern": TEXT_PATTERN})]

# Sane ranges for dates people give: nobody alive was born before 1900, and a date that far out is a
# typing slip (and dates near the ends of the calendar overflow arithmetic on them).
EARLIEST_BIRTH = date(1900, 1, 1)
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # ASCII digits only ([0-9], not \d)
# The instants a routing decision may be asked about: the routing table and calendars are meaningful
# only near the present; far-off years overflowed the calendar's arithmetic.
DECIDE_FROM = datetime(2000, 1, 1, tzinfo=UTC)
DECIDE_UNTIL = datetime(2100, 1, 1, tzinfo=UTC)
# The address's parts: the column widths (adapters/orm.py calls).
ADDRESS_LINE_MAX = 100
TOWN_MAX = 60


def _check_postcode(v: str | None) -> str | None:
    if not v:
        return None
    norm = normalise_postcode(v)
    if norm is None:
        raise refuse(fm.INVALID)
    return norm


def _check_known(v: str | None, info: ValidationInfo, key: str, what: str) -> str | None:
    known = (info.context or {}).get(key)
    if v is not None and known is not None and v not in known:
        raise refuse(fm.UNKNOWN)
    return v


class Input(Strict):
    """A use case's input: unknown keys refused (domain/input_models.py), whitespace around text
    stripped (after every string was checked as it came: parse())."""

    model_config = ConfigDict(str_strip_whitespace=True)


class Caller(Input):
    type: CallerType
    name: Line | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, description="A UK number; stored in E.164")
    # Strict: JSON's true or false only. Lax, "no", "off", 0 and "false" were read as booleans and "yes",
    # 1 and 1.0 asked for texts to the caller's phone (docs/security.md, "Headers and hostile input").
    wants_updates: bool = Field(default=False, strict=True,
                                description="A referring professional asks for SMS updates "
                                            "(accepted, declined, completed) on their mobile")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        return v or None

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        if not v:
            return None
        norm = normalise_uk_phone(v)
        if norm is None:
            raise refuse(fm.INVALID)
        return norm

    @field_validator("wants_updates")
    @classmethod
    def _updates_need_a_professional_mobile(cls, v: bool, info: ValidationInfo) -> bool:
        if v:
            if info.data.get("type") != "professional":
                raise refuse(fm.NOT_PROFESSIONAL)
            phone = info.data.get("phone")
            if not phone or normalise_uk_mobile(phone) is None:
                raise refuse(fm.NEEDS_MOBILE)
        return v


class Subject(Input):
    nhs_number: str | None = Field(default=None, description="10 digits passing the Modulus 11 check")
    given_name: Line = Field(min_length=1, max_length=100)
    family_name: Line = Field(min_length=1, max_length=100)
    date_of_birth: date | None = None
    postcode: str | None = None
    # The address for a visit, as the caller gives it (optional: the postcode chooses the locality team).
    address_line_1: Line | None = Field(default=None, max_length=ADDRESS_LINE_MAX,
                                        description="The first line of the address, like 12 Station Road")
    town: Line | None = Field(default=None, max_length=TOWN_MAX, description="The town or city, like Loughborough")

    @field_validator("address_line_1", "town")
    @classmethod
    def _blank_is_none(cls, v: str | None) -> str | None:
        return v or None

    @field_validator("nhs_number")
    @classmethod
    def _nhs(cls, v: str | None) -> str | None:
        if not v:
            return None
        norm = normalise_nhs_number(v)
        if norm is None:
            digits = "".join(ch for ch in v if not ch.isspace() and ch != "-")
            ten = len(digits) == 10 and digits.isascii() and digits.isdigit()
            raise refuse(fm.CHECK_DIGIT if ten else fm.INVALID)
        return norm

    _postcode = field_validator("postcode")(_check_postcode)

    @field_validator("date_of_birth", mode="before")
    @classmethod
    def _iso_date(cls, v: Any) -> Any:
        # A calendar date written YYYY-MM-DD only, as the document says (api/openapi.py). Pydantic's lax
        # date also took a JSON number as seconds since 1970 (0 stored a birth on 1970-01-01) and a date
        # and time at midnight, silently dropping its time and offset.
        if v is None or v == "" or (isinstance(v, date) and not isinstance(v, datetime)):
            return v or None
        if not isinstance(v, str) or not ISO_DATE.fullmatch(v):
            raise refuse(fm.FORMAT)
        return v

    @field_validator("date_of_birth")
    @classmethod
    def _dob(cls, v: date | None, info: ValidationInfo) -> date | None:
        today = (info.context or {}).get("today")
        if v is not None and today is not None and v > today:
            raise refuse(fm.FUTURE)
        if v is not None and v < EARLIEST_BIRTH:  # a slip: nobody alive was born before 1900
            raise refuse(fm.TOO_EARLY, year=str(EARLIEST_BIRTH.year))
        return v


class LogCall(Input):
    centre: Line
    caller: Caller
    subject: Subject
    need: Line
    urgency: Urgency
    summary: Text = Field(min_length=1, max_length=4000)
    consent: Literal["given", "refused", "not_asked", "lacks_capacity_best_interests"] = Field(
        description="Consent to share the person's details with services of other organisations: given, "
                    "refused, not_asked (an emergency: no chance to ask) or lacks_capacity_best_interests. "
                    "A referral outside the centre's organisation needs given, "
                    "lacks_capacity_best_interests, or a lawful basis with a reason (docs/information-governance.md).")

    _centre = field_validator("centre")(lambda v, info: _check_known(v, info, "centres", "centre"))
    _need = field_validator("need")(lambda v, info: _check_known(v, info, "needs", "need"))


CONSENT_OVERRIDE_DOC = (
    "A lawful basis to share the person's details with a service of another organisation without their "
    "consent: {\"basis\": \"vital_interests\" | \"safeguarding\" | \"legal_duty\", \"reason\": text, "
    "at most 2000 characters}. Needed when the consent is refused or not_asked (or was never recorded) and "
    "the service is run by another organisation than the centre holding the call; not used otherwise. "
    "Recorded on the referral (sharing_basis, sharing_reason) and in the audit trail.")


class FireTrigger(Input):
    trigger: Line = Field(min_length=1, max_length=40)
    data: dict[str, Any] = Field(
        default_factory=dict,
        description="The trigger's inputs. refer: service (a service code) and, to share with another "
                    "organisation without consent, consent_override (" + CONSENT_OVERRIDE_DOC + "). "
                    "transfer: centre. promise_callback: callback_at (ISO 8601 with its offset). A refer "
                    "the consent does not allow is refused with 422 and the field 'consent'.")
    reason: Text | None = Field(default=None, max_length=2000)
    expected_version: int = Field(ge=1, le=2**31 - 1, strict=True)


class DecideRoute(Input):
    need: Line
    urgency: Urgency
    at: datetime
    postcode: Line | None = None
    centre: Line | None = None

    _centre = field_validator("centre")(lambda v, info: _check_known(v, info, "centres", "centre"))
    _need = field_validator("need")(lambda v, info: _check_known(v, info, "needs", "need"))
    _postcode = field_validator("postcode")(_check_postcode)

    @field_validator("at", mode="before")
    @classmethod
    def _iso_text(cls, v: Any) -> Any:
        if not isinstance(v, (str, datetime)):
            raise refuse(fm.FORMAT)
        return v

    @field_validator("at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None or v.utcoffset() is None:
            raise refuse(fm.FORMAT)
        if not DECIDE_FROM <= v < DECIDE_UNTIL:
            raise refuse(fm.RANGE, start=str(DECIDE_FROM.year), end=str(DECIDE_UNTIL.year - 1))
        return v


class RecordConsent(Input):
    """A change to the person's consent to share: who recorded it and when are the caller's and now."""

    consent: Literal["given", "refused", "not_asked", "lacks_capacity_best_interests"] = Field(
        description="The consent now: given, refused, not_asked or lacks_capacity_best_interests")
    expected_version: int = Field(ge=1, le=2**31 - 1, strict=True, description="The call's version, as last read")
    reason: Text | None = Field(default=None, max_length=2000,
                               description="Optional: how consent was asked, or why it changed")

    @field_validator("consent", mode="before")
    @classmethod
    def _known(cls, v: Any) -> Any:
        if not isinstance(v, str) or v not in CONSENT:
            raise refuse(fm.REQUIRED if v in (None, "") else fm.CHOOSE)
        return v

    @field_validator("reason")
    @classmethod
    def _blank_is_none(cls, v: str | None) -> str | None:
        return v or None
