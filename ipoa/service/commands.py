"""Inputs of the use cases, validated with pydantic. Every problem is reported against the field it
belongs to (dotted paths, as the API's clients send them)."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from ..domain.sharing import CONSENT
from ..domain.validation import normalise_nhs_number, normalise_postcode, normalise_uk_mobile, normalise_uk_phone

CALLER_TYPES = ("patient", "carer", "professional", "care_home", "public")
URGENCIES = ("emergency", "urgent", "same_day", "routine")


class InvalidInput(Exception):
    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


def _errors(exc: ValidationError) -> dict[str, str]:
    out: dict[str, str] = {}
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "body"
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        out.setdefault(path, msg)
    return out


def parse(model: type[BaseModel], data: Any, **context: Any) -> Any:
    if not isinstance(data, dict):
        raise InvalidInput({"body": "Expected a JSON object."})
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise InvalidInput(_errors(exc)) from None


def _check_postcode(v: str | None) -> str | None:
    if not v:
        return None
    norm = normalise_postcode(v)
    if norm is None:
        raise ValueError("Not a valid UK postcode.")
    return norm


def _check_known(v: str | None, info: ValidationInfo, key: str, what: str) -> str | None:
    known = (info.context or {}).get(key)
    if v is not None and known is not None and v not in known:
        raise ValueError(f"Unknown {what}; one of {', '.join(sorted(known))}.")
    return v


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Caller(_Strict):
    type: Literal["patient", "carer", "professional", "care_home", "public"]
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, description="A UK number; stored in E.164")
    wants_updates: bool = Field(default=False, description="A referring professional asks for SMS updates "
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
            raise ValueError("Not a valid UK phone number.")
        return norm

    @field_validator("wants_updates")
    @classmethod
    def _updates_need_a_professional_mobile(cls, v: bool, info: ValidationInfo) -> bool:
        if v:
            if info.data.get("type") != "professional":
                raise ValueError("Only a referring professional can ask for SMS updates.")
            phone = info.data.get("phone")
            if not phone or normalise_uk_mobile(phone) is None:
                raise ValueError("SMS updates need the professional's UK mobile number.")
        return v


class Subject(_Strict):
    nhs_number: str | None = Field(default=None, description="10 digits passing the Modulus 11 check")
    given_name: str = Field(min_length=1, max_length=100)
    family_name: str = Field(min_length=1, max_length=100)
    date_of_birth: date | None = None
    postcode: str | None = None

    @field_validator("nhs_number")
    @classmethod
    def _nhs(cls, v: str | None) -> str | None:
        if not v:
            return None
        norm = normalise_nhs_number(v)
        if norm is None:
            raise ValueError("Not a valid NHS number (10 digits passing the Modulus 11 check).")
        return norm

    _postcode = field_validator("postcode")(_check_postcode)

    @field_validator("date_of_birth")
    @classmethod
    def _dob(cls, v: date | None, info: ValidationInfo) -> date | None:
        today = (info.context or {}).get("today")
        if v is not None and today is not None and v > today:
            raise ValueError("Date of birth is in the future.")
        if v is not None and v.year < 1890:
            raise ValueError("Date of birth is implausibly early.")
        return v


class LogCall(_Strict):
    centre: str
    caller: Caller
    subject: Subject
    need: str
    urgency: Literal["emergency", "urgent", "same_day", "routine"]
    summary: str = Field(min_length=1, max_length=4000)
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


class FireTrigger(_Strict):
    trigger: str = Field(min_length=1, max_length=40)
    data: dict[str, Any] = Field(
        default_factory=dict,
        description="The trigger's inputs. refer: service (a service code) and, to share with another "
                    "organisation without consent, consent_override (" + CONSENT_OVERRIDE_DOC + "). "
                    "transfer: centre. promise_callback: callback_at (ISO 8601 with its offset). A refer "
                    "the consent does not allow is refused with 422 and the field 'consent'.")
    reason: str | None = Field(default=None, max_length=2000)
    expected_version: int = Field(ge=1, strict=True)


class DecideRoute(_Strict):
    need: str
    urgency: Literal["emergency", "urgent", "same_day", "routine"]
    at: datetime
    postcode: str | None = None
    centre: str | None = None

    _centre = field_validator("centre")(lambda v, info: _check_known(v, info, "centres", "centre"))
    _need = field_validator("need")(lambda v, info: _check_known(v, info, "needs", "need"))
    _postcode = field_validator("postcode")(_check_postcode)

    @field_validator("at", mode="before")
    @classmethod
    def _iso_text(cls, v: Any) -> Any:
        if not isinstance(v, (str, datetime)):
            raise ValueError("Give the instant as ISO 8601 text with its UTC offset.")
        return v

    @field_validator("at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("Give the instant with its UTC offset (ISO 8601).")
        return v


class RecordConsent(_Strict):
    """A change to the person's consent to share: who recorded it and when are the caller's and now."""

    consent: Literal["given", "refused", "not_asked", "lacks_capacity_best_interests"] = Field(
        description="The consent now: given, refused, not_asked or lacks_capacity_best_interests")
    expected_version: int = Field(ge=1, strict=True, description="The call's version, as last read")
    reason: str | None = Field(default=None, max_length=2000,
                               description="Optional: how consent was asked, or why it changed")

    @field_validator("consent", mode="before")
    @classmethod
    def _known(cls, v: Any) -> Any:
        if not isinstance(v, str) or v not in CONSENT:
            raise ValueError("Choose the person's consent to share: given, refused, not asked, or lacks "
                             "capacity (best interests).")
        return v

    @field_validator("reason")
    @classmethod
    def _blank_is_none(cls, v: str | None) -> str | None:
        return v or None
