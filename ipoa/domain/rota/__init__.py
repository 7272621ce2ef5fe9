"""Rotas: shifts per service, who is on duty at an instant, who a referral's text goes to, the gaps a rota
leaves and its shift changes, and the rota CSV (docs/domain.md, "Rotas"). Pure: no store, no clock."""
from __future__ import annotations

from .coverage import Gaps, Handover, gaps, handover_due, handover_key
from .csv_io import CsvProblem, RotaCsv, export_csv, parse_rota_csv
from .recipients import Contact, RecipientChoice, choose_recipients
from .shifts import (
    NEVER,
    Cover,
    Leave,
    NextOnDuty,
    Occurrence,
    OccurrenceRef,
    OnDuty,
    OneOffShift,
    PatternShift,
    ProfessionalId,
    Rota,
    RotaError,
    StandingDutyLead,
    Swap,
    next_on_duty,
    occurrences,
    on_duty,
    pattern_problem,
    shift_problem,
    wall_instant,
)

__all__ = [
    "NEVER", "Contact", "Cover", "CsvProblem", "Gaps", "Handover", "Leave", "NextOnDuty", "Occurrence", "OccurrenceRef",
    "OnDuty", "OneOffShift", "PatternShift", "ProfessionalId", "RecipientChoice", "Rota", "RotaCsv", "RotaError",
    "StandingDutyLead", "Swap", "choose_recipients", "export_csv", "gaps", "handover_due", "handover_key",
    "next_on_duty", "occurrences", "on_duty", "parse_rota_csv", "pattern_problem", "shift_problem",
    "wall_instant",
]
