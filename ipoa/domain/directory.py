"""The directory of the organisations, their points of access (centres) and onward services, and the
localities.

It is configuration an administrator edits (workflows/directory.yaml), so loading checks everything a
typo could break and names the file and the entry: a wrong entry here once sent a patient on a
25-mile round trip.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import Field, StrictBool, StringConstraints, ValidationError, field_validator

from .calendar import BankHolidays, Calendar, calendar_from_spec
from .input_models import NonBlank as _Text
from .input_models import Strict
from .postcodes import outward_code
from .telephony.centre_voice import CentreVoice, LineFacts, VoiceIn, reference_problems
from .validation import normalise_uk_mobile, normalise_uk_phone


class DirectoryError(ValueError):
    """The directory data is invalid; the message names the source and the problem."""


@dataclass(frozen=True)
class Organisation:
    """A body that runs centres and services. Sharing a person's details between organisations needs
    consent or a lawful basis; within one it does not (domain/sharing.py)."""

    code: str
    name: str


@dataclass(frozen=True)
class Centre:
    code: str
    name: str
    run_by: str
    calendar: Calendar
    description: str = ""
    organisation: str = ""  # an Organisation code; always set when loaded from directory.yaml
    phone: str | None = None  # E.164: the number professionals ring back the centre on, if listed
    # The centre's phone line as ipoa answers it (Twilio Voice: domain/telephony, docs/telephony.md); None:
    # its calls do not come to ipoa.
    voice: CentreVoice | None = None


@dataclass(frozen=True)
class Service:
    code: str
    name: str
    calendar: Calendar
    response_target: str
    needs_locality: bool = False
    description: str = ""
    duty_lead: str | None = None  # E.164 mobile: the fallback when no professional is on duty
    organisation: str = ""  # an Organisation code; always set when loaded from directory.yaml
    # At a shift change, re-send the referrals still waiting for acceptance to the incoming shift
    # (service/shift_handover.py; docs/domain.md, "Rotas"). On unless the directory says `resend_at_handover: false`.
    resend_at_handover: bool = True


@dataclass(frozen=True)
class Locality:
    name: str
    districts: tuple[str, ...]


@dataclass(frozen=True)
class LocalityMatch:
    locality: str | None
    out_of_area: bool


@dataclass(frozen=True)
class Directory:
    centres: dict[str, Centre]
    services: dict[str, Service]
    localities: tuple[Locality, ...]
    organisations: dict[str, Organisation] = field(default_factory=dict)
    _by_district: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_district = {d: loc.name for loc in self.localities for d in loc.districts}
        object.__setattr__(self, "_by_district", by_district)

    def locality_for(self, postcode: str | None) -> LocalityMatch:
        """The person's locality by postcode district. No postcode is "unknown", not out of area;
        an invalid postcode raises ValueError so the handler can correct it."""
        # Forms submit an empty field as "": that is no postcode, not a malformed one.
        if postcode is None or not postcode.strip():
            return LocalityMatch(None, False)
        name = self._by_district.get(outward_code(postcode))
        return LocalityMatch(name, name is None)

    def centre_for_number(self, number: str) -> Centre | None:
        """The centre whose line ipoa answers on this number (E.164, as Twilio sends `To`)."""
        return next((c for c in self.centres.values() if c.voice is not None and c.phone == number), None)

    def organisation_of_centre(self, code: str) -> Organisation | None:
        centre = self.centres.get(code)
        return self.organisations.get(centre.organisation) if centre else None

    def organisation_of_service(self, code: str) -> Organisation | None:
        service = self.services.get(code)
        return self.organisations.get(service.organisation) if service else None


# --- loading -------------------------------------------------------------------------------------

_Code = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]*$")]
_DISTRICT = re.compile(r"[A-Z]{1,2}[0-9][0-9A-Z]?")


class _OrganisationIn(Strict):
    code: _Code
    name: _Text


class _CentreIn(Strict):
    code: _Code
    name: _Text
    organisation: _Code
    run_by: _Text
    description: str = ""
    calendar: Any
    phone: str | None = None
    voice: VoiceIn | None = None

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        if v is None:
            return None
        norm = normalise_uk_phone(v)
        if norm is None:
            raise ValueError("phone must be a UK phone number")
        return norm


class _ServiceIn(Strict):
    code: _Code
    name: _Text
    organisation: _Code
    description: str = ""
    calendar: Any
    response_target: _Text
    needs_locality: StrictBool = False
    duty_lead: str | None = None
    resend_at_handover: StrictBool = True

    @field_validator("duty_lead")
    @classmethod
    def _mobile(cls, v: str | None) -> str | None:
        if v is None:
            return None
        norm = normalise_uk_mobile(v)
        if norm is None:
            raise ValueError("duty_lead must be a UK mobile number")
        return norm


class _LocalityIn(Strict):
    name: _Text
    districts: list[str] = Field(min_length=1)


class _DirectoryIn(Strict):
    organisations: list[_OrganisationIn] = Field(min_length=1)
    centres: list[_CentreIn] = Field(min_length=1)
    services: list[_ServiceIn] = Field(min_length=1)
    localities: list[_LocalityIn] = []


def _where(data: Any, loc: tuple[Any, ...]) -> str:
    """Render a pydantic error location, naming the entry by its code when the data has one."""
    text, node = "", data
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            label = node.get("code") or node.get("name") if isinstance(node, dict) else None
            if label:
                text += f" ({label})"
        else:
            text += f".{part}" if text else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return text or "top level"


def _validation_message(source: str, data: Any, exc: ValidationError) -> str:
    # Pydantic's wording for a misspelt key does not say which way round the mistake is.
    problems = [
        f"{_where(data, tuple(e['loc']))}: {'unknown key' if e['type'] == 'extra_forbidden' else e['msg']}"
        for e in exc.errors()
    ]
    return f"{source}: " + "; ".join(problems)


class _CalendarResolver:
    """Builds calendars, resolving complement_of references to centre or service codes."""

    def __init__(self, raw: _DirectoryIn, bank_holidays: BankHolidays, source: str):
        self._source = source
        self._bank_holidays = bank_holidays
        self._specs: dict[str, list[tuple[str, Any]]] = {}
        for kind, items in (("centre", raw.centres), ("service", raw.services)):
            for item in items:
                self._specs.setdefault(item.code, []).append((f"{kind} {item.code}", item.calendar))
        self._resolved: dict[str, Calendar] = {}

    def build(self, what: str, code: str, spec: Any, stack: tuple[str, ...] = ()) -> Calendar:
        stack = (*stack, code)
        refs: dict[str, Calendar] = {}
        if isinstance(spec, dict) and isinstance(spec.get("complement_of"), str):
            name = spec["complement_of"]
            refs[name] = self._reference(what, name, stack)
        try:
            return calendar_from_spec(spec, refs, self._bank_holidays)
        except ValueError as exc:
            raise DirectoryError(f"{self._source}: {what}: calendar: {exc}") from None

    def _reference(self, what: str, name: str, stack: tuple[str, ...]) -> Calendar:
        if name in self._resolved:
            return self._resolved[name]
        if name not in self._specs:
            raise DirectoryError(
                f"{self._source}: {what}: unknown calendar reference {name!r} "
                "(complement_of must name a centre or service code)"
            )
        if name in stack:
            cycle = " -> ".join((*stack, name))
            raise DirectoryError(f"{self._source}: {what}: calendar reference cycle {cycle}")
        owners = self._specs[name]
        if any(spec != owners[0][1] for _, spec in owners):
            raise DirectoryError(
                f"{self._source}: {what}: calendar reference {name!r} is ambiguous: "
                f"{' and '.join(o for o, _ in owners)} have different hours"
            )
        calendar = self.build(owners[0][0], name, owners[0][1], stack)
        self._resolved[name] = calendar
        return calendar


def _check_unique(source: str, kind: str, codes: list[str]) -> None:
    seen: set[str] = set()
    for code in codes:
        if code in seen:
            raise DirectoryError(f"{source}: duplicate {kind} {code!r}")
        seen.add(code)


def _organisations(raw: _DirectoryIn, source: str) -> dict[str, Organisation]:
    """The organisations, after checking every centre and service names one of them: who runs a service
    decides whether a referral needs consent, so a typo here must stop the load, not pass silently."""
    _check_unique(source, "organisation code", [o.code for o in raw.organisations])
    known = {o.code: Organisation(o.code, o.name) for o in raw.organisations}
    for kind, items in (("centre", raw.centres), ("service", raw.services)):
        for item in items:
            if item.organisation not in known:
                raise DirectoryError(
                    f"{source}: {kind} {item.code}: unknown organisation {item.organisation!r} "
                    f"(organisations: {', '.join(known)})")
    return known


def _localities(raw: _DirectoryIn, source: str) -> tuple[Locality, ...]:
    _check_unique(source, "locality", [loc.name for loc in raw.localities])
    owner: dict[str, str] = {}
    result = []
    for loc in raw.localities:
        districts = []
        for district in loc.districts:
            norm = district.strip().upper()
            if not _DISTRICT.fullmatch(norm):
                raise DirectoryError(
                    f"{source}: locality {loc.name!r}: {district!r} is not a postcode district (e.g. LE11)"
                )
            if norm in owner:
                where = "twice" if owner[norm] == loc.name else f"in {owner[norm]!r} and {loc.name!r}"
                raise DirectoryError(f"{source}: postcode district {norm} is listed {where}")
            owner[norm] = loc.name
            districts.append(norm)
        result.append(Locality(loc.name, tuple(districts)))
    return tuple(result)


def load_directory(
    data: Any, bank_holidays: BankHolidays | None = None, source: str = "<directory data>"
) -> Directory:
    if not isinstance(data, dict):
        raise DirectoryError(f"{source}: expected a mapping with organisations, centres, services and localities")
    try:
        raw = _DirectoryIn.model_validate(data)
    except ValidationError as exc:
        raise DirectoryError(_validation_message(source, data, exc)) from None
    _check_unique(source, "centre code", [c.code for c in raw.centres])
    _check_unique(source, "service code", [s.code for s in raw.services])
    organisations = _organisations(raw, source)

    resolver = _CalendarResolver(raw, bank_holidays or BankHolidays(), source)
    centres = {
        c.code: Centre(
            c.code, c.name, c.run_by, resolver.build(f"centre {c.code}", c.code, c.calendar), c.description,
            c.organisation, c.phone, c.voice.build() if c.voice else None,
        )
        for c in raw.centres
    }
    problems = reference_problems({code: LineFacts(c.phone, c.voice) for code, c in centres.items()})
    if problems:
        raise DirectoryError(f"{source}: " + "; ".join(problems))
    services = {
        s.code: Service(
            s.code,
            s.name,
            resolver.build(f"service {s.code}", s.code, s.calendar),
            s.response_target,
            s.needs_locality,
            s.description,
            s.duty_lead,
            s.organisation,
            s.resend_at_handover,
        )
        for s in raw.services
    }
    return Directory(centres, services, _localities(raw, source), organisations)


def load_directory_file(path: str | Path, bank_holidays: BankHolidays | None = None) -> Directory:
    source = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise DirectoryError(f"{source}: cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise DirectoryError(f"{source}: not valid YAML: {exc}") from exc
    return load_directory(data, bank_holidays, source=source)
