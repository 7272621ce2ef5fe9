"""Cells of the CSV files people open in a spreadsheet (the supervisor's calls export, the reports' CSV).

A spreadsheet runs a cell that starts with one of FORMULA_START as a formula: "=HYPERLINK(...)" in a call's
summary or a decline reason (free text, typed by anyone) would become a live link or a command in the
supervisor's copy. The cell is written with a leading apostrophe, which spreadsheets show as text and do not
run; the rest of the value is kept as it was typed (docs/security.md, "Exports")."""
from __future__ import annotations

# =, +, - and @ start a formula; a tab or a carriage return before one hides it from a first-character check.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """`value` as the text of a cell no spreadsheet runs: None is an empty cell."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text
