"""The routing decision table: need x urgency x local time x locality -> recommended route.

The table is data (workflows/routing.yaml) so a deployment can describe its own services; the first
matching row wins and the last row must catch everything, because a call that no rule can place
goes to tier 3 review in the receiving centre, never silently nowhere.

A service rule may name an out-of-hours alternative: while the rule's service is closed, the decision
still recommends it (with when it opens) and also offers the alternative if that is open at the same
instant, so the call handler is not "left not knowing" what happens meanwhile (docs/domain.md, Routing).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import ConfigDict, Field, StrictBool, StringConstraints, ValidationError

from .calendar import LONDON, parse_time
from .date_parts import london_clock
from .directory import Directory, LocalityMatch
from .input_models import NonBlank as _Text
from .input_models import Strict, describe_validation_errors
from .urgency import URGENCIES

OUTCOMES = ("divert_999", "resolved_at_first_contact")
CONDITION_KEYS = ("need", "urgency", "local_time", "service_open", "service_closed", "locality")
LOCALITY_CONDITIONS = ("out_of_area",)

_TIER3_TARGET = "tier 3 review in the receiving centre"
_OUTCOME_TEXT = {
    "divert_999": "tier 1: advise or transfer to 999, no referral",
    "resolved_at_first_contact": "tier 1: resolved at first contact",
}


class RoutingError(ValueError):
    """The routing table is invalid; the message names the source, the rule and the problem."""


@dataclass(frozen=True)
class Alternative:
    """The routing table's out-of-hours alternative to a closed recommended service: offered only when
    it is open at the decision instant (open_now), so a referral to it is seen now."""

    service: str
    open_now: bool


@dataclass(frozen=True)
class Decision:
    tier: int
    service: str | None
    outcome: str | None
    locality: str | None
    rule: str
    reason: str
    alert_supervisor: bool
    out_of_area: bool
    next_open: datetime | None
    # The rule's out-of-hours alternative, when the recommended service is closed and the alternative is
    # open at the instant; None otherwise (the service open, no alternative, or the alternative closed).
    out_of_hours: Alternative | None = None

    def to_dict(self) -> dict[str, Any]:
        # Field by field rather than asdict(), whose deep copy of every value cost six times as much, on
        # every intake (docs/performance.md, "Intake's app CPU cut"): the values are plain but one.
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["next_open"] = self.next_open.isoformat() if self.next_open else None
        # Stored with each call as its recommendation: the key only when an alternative is offered, so a
        # recommendation stored before alternatives existed reads the same as one without.
        if self.out_of_hours is None:
            del data["out_of_hours"]
        else:
            data["out_of_hours"] = asdict(self.out_of_hours)
        return data


@dataclass(frozen=True)
class TimeWindow:
    """Local wall-clock [start, end); an end at or before the start wraps past midnight."""

    start: time
    end: time

    def contains(self, local: time) -> bool:
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def describe(self) -> str:
        # Shown inclusively to match how the published table reads ("08:00-19:59").
        end_minutes = (self.end.hour * 60 + self.end.minute - 1) % (24 * 60)
        return f"{self.start:%H:%M}-{end_minutes // 60:02d}:{end_minutes % 60:02d}"


@dataclass(frozen=True)
class Conditions:
    need: tuple[str, ...] | None = None
    urgency: tuple[str, ...] | None = None
    local_time: TimeWindow | None = None
    service_open: str | None = None
    service_closed: str | None = None
    locality: str | None = None

    @property
    def is_empty(self) -> bool:
        return self == Conditions()

    def describe(self) -> str:
        parts = []
        if self.need:
            parts.append("need " + " or ".join(self.need))
        if self.urgency:
            parts.append("urgency " + " or ".join(self.urgency))
        if self.local_time:
            parts.append(f"local time {self.local_time.describe()}")
        if self.service_open:
            parts.append(f"{self.service_open} open")
        if self.service_closed:
            parts.append(f"{self.service_closed} closed")
        if self.locality == "out_of_area":
            parts.append("postcode outside all localities")
        return "; ".join(parts) or "anything else"


@dataclass(frozen=True)
class OutOfHours:
    """A rule's `out_of_hours`: while the rule's service is closed, this other service may be offered
    instead if it is open then; urgency limits it to those levels (None: any level the rule takes), since
    a routine call can wait for the service to open."""

    service: str
    urgency: tuple[str, ...] | None = None

    def applies_to(self, urgency: str) -> bool:
        return self.urgency is None or urgency in self.urgency


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    when: Conditions
    tier: int
    service: str | None = None
    outcome: str | None = None
    alert_supervisor: bool = False
    note: str | None = None
    out_of_hours: OutOfHours | None = None

    @property
    def label(self) -> str:
        return f"Row {self.id}" if self.id.isdigit() else f"Rule {self.id}"

    def describe_result(self) -> str:
        if self.service:
            text = self.service
        elif self.outcome:
            text = _OUTCOME_TEXT[self.outcome]
        else:
            text = _TIER3_TARGET
        if self.alert_supervisor:
            text += ", supervisor alerted"
        return text


class RoutingTable:
    def __init__(self, needs: dict[str, str], rules: tuple[Rule, ...], directory: Directory):
        self.needs = needs
        self.urgencies = URGENCIES
        self.rules = rules
        self.directory = directory

    def decide(self, need: str, urgency: str, at: datetime, postcode: str | None = None) -> Decision:
        if need not in self.needs:
            raise ValueError(f"unknown need {need!r}; known: {', '.join(self.needs)}")
        if urgency not in URGENCIES:
            raise ValueError(f"unknown urgency {urgency!r}; known: {', '.join(URGENCIES)}")
        if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("routing needs a timezone-aware instant")
        match = self.directory.locality_for(postcode)
        for rule in self.rules:
            if self._matches(rule.when, need, urgency, at, match):
                return self._decision(rule, need, urgency, at, match)
        raise AssertionError("the loader guarantees a final catch-all rule")

    def _matches(
        self, when: Conditions, need: str, urgency: str, at: datetime, match: LocalityMatch
    ) -> bool:
        services = self.directory.services
        return (
            (when.need is None or need in when.need)
            and (when.urgency is None or urgency in when.urgency)
            and (when.local_time is None or when.local_time.contains(at.astimezone(LONDON).time()))
            and (when.service_open is None or services[when.service_open].calendar.is_open(at))
            and (when.service_closed is None or not services[when.service_closed].calendar.is_open(at))
            and (when.locality is None or match.out_of_area)
        )

    def _decision(
        self, rule: Rule, need: str, urgency: str, at: datetime, match: LocalityMatch
    ) -> Decision:
        facts = [f"{need.replace('_', ' ')} need", urgency.replace("_", " ")]
        if rule.when.local_time:
            facts.append(rule.when.local_time.describe())
        if rule.when.service_open:
            facts.append(f"{rule.when.service_open} open")
        if rule.when.service_closed:
            facts.append(f"{rule.when.service_closed} closed")
        if rule.when.locality == "out_of_area":
            facts.append("postcode outside all localities")
        situation = ", ".join(facts)

        if rule.service is None:
            target = _OUTCOME_TEXT[rule.outcome] if rule.outcome else _TIER3_TARGET
            return Decision(
                tier=rule.tier,
                service=None,
                outcome=rule.outcome,
                rule=rule.id,
                reason=self._reason(rule, f"{rule.label}: {situation} -> {target}"),
                alert_supervisor=rule.alert_supervisor,
                next_open=None,
                locality=match.locality,
                out_of_area=match.out_of_area,
            )

        service = self.directory.services[rule.service]
        if service.needs_locality and match.locality is None:
            return self._no_locality(rule, service.name, situation, match)
        target = f"{service.name} ({match.locality})" if service.needs_locality else service.name
        next_open = None if service.calendar.is_open(at) else service.calendar.next_open(at)
        reason = self._reason(rule, f"{rule.label}: {situation} -> {target}")
        if next_open is not None:
            reason += f"; closed now, opens {london_clock(next_open, '%a %d %b %H:%M')}"
        alternative = None if next_open is None else self._alternative(rule, urgency, at, match)
        return Decision(
            tier=2,
            service=service.code,
            outcome=None,
            rule=rule.id,
            reason=reason,
            alert_supervisor=rule.alert_supervisor,
            next_open=next_open,
            locality=match.locality,
            out_of_area=match.out_of_area,
            out_of_hours=alternative,
        )

    def _alternative(self, rule: Rule, urgency: str, at: datetime, match: LocalityMatch) -> Alternative | None:
        """The rule's out-of-hours alternative if it applies to this urgency and is open at `at` (and has
        the locality it needs): only an open service is worth offering instead of waiting."""
        ooh = rule.out_of_hours
        if ooh is None or not ooh.applies_to(urgency):
            return None
        service = self.directory.services[ooh.service]
        if not service.calendar.is_open(at) or (service.needs_locality and match.locality is None):
            return None
        return Alternative(service=service.code, open_now=True)

    def _no_locality(
        self, rule: Rule, service_name: str, situation: str, match: LocalityMatch
    ) -> Decision:
        catch_all = self.rules[-1]
        why = "the postcode is outside all localities" if match.out_of_area else "there is no postcode"
        reason = (
            f"{catch_all.label}: {rule.label.lower()} ({situation}) would refer to {service_name}, which needs "
            f"the person's locality, but {why} -> {_TIER3_TARGET}"
        )
        return Decision(
            tier=3,
            service=None,
            outcome=None,
            locality=None,
            rule=catch_all.id,
            reason=self._reason(catch_all, reason),
            alert_supervisor=catch_all.alert_supervisor,
            out_of_area=match.out_of_area,
            next_open=None,
        )

    @staticmethod
    def _reason(rule: Rule, text: str) -> str:
        if rule.alert_supervisor:
            text += "; supervisor alerted"
        if rule.note:
            text += f"; {rule.note}"
        return text


# --- loading -------------------------------------------------------------------------------------

class _RoutingIn(Strict):
    # YAML reads some values the table means as text as numbers (a bare 17:00 is the number 1020, a
    # label of digits is an int): they are taken as text and checked as text.
    model_config = ConfigDict(coerce_numbers_to_str=True)


class _NeedIn(_RoutingIn):
    code: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
    label: _Text


class _TableIn(_RoutingIn):
    needs: list[_NeedIn] = Field(min_length=1)
    urgencies: list[str]
    rules: list[Any] = Field(min_length=1)


class _TimeIn(_RoutingIn):
    start: str = Field(alias="from")
    to: str


class _WhenIn(_RoutingIn):
    need: list[str] | None = Field(default=None, min_length=1)
    urgency: list[str] | None = Field(default=None, min_length=1)
    local_time: _TimeIn | None = None
    service_open: str | None = None
    service_closed: str | None = None
    locality: Literal["out_of_area"] | None = None


class _RuleIn(_RoutingIn):
    id: _Text
    description: _Text
    when: dict[str, Any] | None = None
    tier: Literal[1, 2, 3] | None = None
    outcome: Literal["divert_999", "resolved_at_first_contact"] | None = None
    service: str | None = None
    alert_supervisor: StrictBool = False
    note: _Text | None = None
    out_of_hours: dict[str, Any] | None = None


class _OutOfHoursIn(_RoutingIn):
    service: str
    urgency: list[str] | None = Field(default=None, min_length=1)


class _RuleBuilder:
    def __init__(self, needs: dict[str, str], directory: Directory, source: str):
        self._needs, self._directory, self._source = needs, directory, source

    def fail(self, rule_id: str, problem: str) -> RoutingError:
        return RoutingError(f"{self._source}: rule {rule_id}: {problem}")

    def build(self, index: int, raw: Any) -> Rule:
        rule_id = f"#{index + 1}"
        if isinstance(raw, dict) and raw.get("id") is not None:
            rule_id = str(raw["id"])
        if not isinstance(raw, dict):
            raise self.fail(rule_id, "must be a mapping with id, description, when and a result")
        try:
            rule_in = _RuleIn.model_validate(raw)
        except ValidationError as exc:
            raise self.fail(rule_id, describe_validation_errors(exc)) from None
        when = self._conditions(rule_id, rule_in.when or {})
        tier, service, outcome = self._result(rule_id, rule_in)
        out_of_hours = (None if rule_in.out_of_hours is None
                        else self._out_of_hours(rule_id, rule_in.out_of_hours, service, when))
        return Rule(
            id=rule_in.id,
            description=rule_in.description,
            when=when,
            tier=tier,
            service=service,
            outcome=outcome,
            alert_supervisor=rule_in.alert_supervisor,
            note=rule_in.note,
            out_of_hours=out_of_hours,
        )

    def _out_of_hours(
        self, rule_id: str, raw: dict[str, Any], service: str | None, when: Conditions
    ) -> OutOfHours:
        # A single urgency is as natural to write as a one-item list (as in `when`).
        if isinstance(raw.get("urgency"), str):
            raw = {**raw, "urgency": [raw["urgency"]]}
        try:
            ooh = _OutOfHoursIn.model_validate(raw)
        except ValidationError as exc:
            raise self.fail(rule_id, f"out_of_hours: {describe_validation_errors(exc)}") from None
        if service is None:
            raise self.fail(rule_id, "out_of_hours is for a tier 2 rule: it needs the rule's own service: CODE")
        if ooh.service not in self._directory.services:
            raise self.fail(rule_id, f"out_of_hours: unknown service code {ooh.service!r}")
        if ooh.service == service:
            raise self.fail(rule_id, f"out_of_hours: the alternative must be another service than {service}")
        for urgency in ooh.urgency or ():
            if urgency not in URGENCIES:
                raise self.fail(
                    rule_id, f"out_of_hours: unknown urgency {urgency!r} (allowed: {', '.join(URGENCIES)})")
            if when.urgency is not None and urgency not in when.urgency:
                raise self.fail(rule_id, f"out_of_hours: urgency {urgency!r} never reaches this rule "
                                         f"(its when: urgency {', '.join(when.urgency)})")
        return OutOfHours(service=ooh.service, urgency=tuple(ooh.urgency) if ooh.urgency else None)

    def _conditions(self, rule_id: str, raw: dict[str, Any]) -> Conditions:
        unknown = [k for k in raw if k not in CONDITION_KEYS]
        if unknown:
            raise self.fail(
                rule_id,
                f"unknown condition {', '.join(map(repr, unknown))} (allowed: {', '.join(CONDITION_KEYS)})",
            )
        # A single value is as natural to write as a one-item list.
        raw = {k: [v] if k in ("need", "urgency") and isinstance(v, str) else v for k, v in raw.items()}
        try:
            when = _WhenIn.model_validate(raw)
        except ValidationError as exc:
            raise self.fail(rule_id, f"when: {describe_validation_errors(exc)}") from None
        for need in when.need or ():
            if need not in self._needs:
                raise self.fail(rule_id, f"unknown need {need!r}")
        for urgency in when.urgency or ():
            if urgency not in URGENCIES:
                raise self.fail(rule_id, f"unknown urgency {urgency!r} (allowed: {', '.join(URGENCIES)})")
        for key in ("service_open", "service_closed"):
            code = getattr(when, key)
            if code is not None and code not in self._directory.services:
                raise self.fail(rule_id, f"{key}: unknown service code {code!r}")
        if when.service_open and when.service_open == when.service_closed:
            raise self.fail(rule_id, f"{when.service_open} cannot be both open and closed")
        window = None
        if when.local_time is not None:
            try:
                window = TimeWindow(
                    parse_time(when.local_time.start), parse_time(when.local_time.to, closing=True)
                )
            except ValueError as exc:
                raise self.fail(rule_id, f"local_time: {exc}") from None
            if window.start == window.end:
                raise self.fail(rule_id, "local_time: from and to are the same; omit local_time for any time")
        return Conditions(
            need=tuple(when.need) if when.need else None,
            urgency=tuple(when.urgency) if when.urgency else None,
            local_time=window,
            service_open=when.service_open,
            service_closed=when.service_closed,
            locality=when.locality,
        )

    def _result(self, rule_id: str, rule: _RuleIn) -> tuple[int, str | None, str | None]:
        if rule.service is not None:
            if rule.service not in self._directory.services:
                raise self.fail(rule_id, f"unknown service code {rule.service!r}")
            if rule.outcome is not None or rule.tier not in (None, 2):
                raise self.fail(rule_id, "a rule with a service is a tier 2 referral: no outcome, tier 2")
            return 2, rule.service, None
        if rule.tier == 1:
            if rule.outcome is None:
                raise self.fail(rule_id, f"tier 1 needs an outcome ({' or '.join(OUTCOMES)})")
            return 1, None, rule.outcome
        if rule.tier == 3:
            if rule.outcome is not None:
                raise self.fail(rule_id, "tier 3 is a review, it takes no outcome")
            return 3, None, None
        raise self.fail(rule_id, "needs a result: service: CODE, tier: 1 with an outcome, or tier: 3")


def load_routing(data: Any, directory: Directory, source: str = "<routing data>") -> RoutingTable:
    if not isinstance(data, dict):
        raise RoutingError(f"{source}: expected a mapping with needs, urgencies and rules")
    try:
        table = _TableIn.model_validate(data)
    except ValidationError as exc:
        raise RoutingError(f"{source}: {describe_validation_errors(exc)}") from None

    needs: dict[str, str] = {}
    for need in table.needs:
        if need.code in needs:
            raise RoutingError(f"{source}: duplicate need {need.code!r}")
        needs[need.code] = need.label
    # SLA clocks and the screens rank by these four; a table cannot rename or drop one.
    if tuple(table.urgencies) != URGENCIES:
        raise RoutingError(f"{source}: urgencies must be exactly {list(URGENCIES)}, got {table.urgencies}")

    builder = _RuleBuilder(needs, directory, source)
    rules: list[Rule] = []
    for index, raw in enumerate(table.rules):
        rule = builder.build(index, raw)
        if any(r.id == rule.id for r in rules):
            raise builder.fail(rule.id, "duplicate rule id")
        if rules and rules[-1].when.is_empty:
            raise builder.fail(rule.id, f"never reached: rule {rules[-1].id} before it matches everything")
        rules.append(rule)
    last = rules[-1]
    if not last.when.is_empty or last.tier != 3 or last.service is not None:
        raise builder.fail(
            last.id, "the last rule must be the catch-all: empty `when` and tier: 3, so no call goes nowhere"
        )
    return RoutingTable(needs, tuple(rules), directory)


def load_routing_file(path: str | Path, directory: Directory) -> RoutingTable:
    source = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise RoutingError(f"{source}: cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise RoutingError(f"{source}: not valid YAML: {exc}") from exc
    return load_routing(data, directory, source=source)
