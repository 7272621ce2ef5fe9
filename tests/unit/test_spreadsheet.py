"""The one rule for exported cells (ipoa/domain/spreadsheet.py): no cell starts as a formula, and nothing of
what was typed is lost (docs/security.md, "Exports")."""
import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipoa.domain.spreadsheet import FORMULA_START, safe_cell
from tests.helpers.properties import examples


@pytest.mark.parametrize("typed", ['=HYPERLINK("http://x","Open")', "+44 7700 900123", "-2+3", "@SUM(A1:A9)",
                                   "\t=1+1", "\r=1+1", "=", "-"])
def test_a_cell_a_spreadsheet_would_run_is_written_as_text(typed):
    assert safe_cell(typed) == "'" + typed


@pytest.mark.parametrize("typed", ["Fell, no injury", "07700 900123", " =1+1", "'=1+1", "2026-12-05", "", "É=1"])
def test_any_other_cell_is_written_as_typed(typed):
    assert safe_cell(typed) == typed


def test_none_is_an_empty_cell_and_other_values_their_text():
    assert (safe_cell(None), safe_cell(3), safe_cell(-1)) == ("", "3", "'-1")


@settings(max_examples=examples(300), deadline=None, database=None)
@given(st.text())
def test_no_written_cell_starts_a_formula_and_the_text_is_kept(typed):
    cell = safe_cell(typed)
    assert not cell.startswith(FORMULA_START)
    assert cell in (typed, "'" + typed)
    # Through the csv module as the exports write it, the cell reads back the same.
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow([cell, "next"])
    assert next(csv.reader(io.StringIO(buf.getvalue(), newline=""))) == [cell, "next"]
