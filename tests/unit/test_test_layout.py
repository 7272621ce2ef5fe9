"""Test helpers have one home: fixtures in tests/conftest.py, plain helpers in tests/helpers/ (and the
emulators beside them, tests/twilio_emulator.py, tests/processes.py). No test module imports from another
test module, nor from a conftest but the top one: importing a test module runs its module-level set-up in
the importer and ties one test file's edits to another's, and fixtures pulled in by import (rather than
found by pytest in a conftest) shadow and get shadowed."""
from __future__ import annotations

import ast
import re
from pathlib import Path

from ipoa.config import REPO_ROOT

TESTS = REPO_ROOT / "tests"
# A test module (test_*.py) or a conftest, by absolute, bare (tests/security has no __init__.py) or
# relative module name; tests.conftest itself is allowed.
FORBIDDEN = re.compile(r"(?:^|\.)(?:test_\w+|conftest)$")


def forbidden_imports(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            names = [module + a.name for a in node.names] if node.module is None else [module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found += [f"line {node.lineno}: {name}" for name in names
                  if FORBIDDEN.search(name) and name != "tests.conftest"]
    return found


def test_the_check_sees_every_way_of_importing_a_test_module():
    source = "\n".join([
        "from tests.e2e.test_web import signed_in",
        "from tests.e2e.conftest import page",
        "from .test_engine import NOW",
        "from . import test_engine",
        "import tests.unit.test_engine",
        "from test_links import drain",
        "from tests.conftest import call_payload",
        "from tests.helpers.web import text",
        "from tests.twilio_emulator import TwilioEmulator",
    ])
    assert forbidden_imports(source) == [
        "line 1: tests.e2e.test_web", "line 2: tests.e2e.conftest", "line 3: .test_engine",
        "line 4: .test_engine", "line 5: tests.unit.test_engine", "line 6: test_links"]


def test_no_test_module_imports_from_another_test_module_or_a_lower_conftest():
    offences = {str(path.relative_to(REPO_ROOT)): found for path in sorted(TESTS.rglob("*.py"))
                if "__pycache__" not in path.parts
                and (found := forbidden_imports(path.read_text(encoding="utf-8")))}
    assert not offences, "move the helper to tests/helpers/ (a fixture: tests/conftest.py):\n" + "\n".join(
        f"{path}: {', '.join(found)}" for path, found in offences.items())


def test_helpers_are_not_collected_as_tests():
    helpers = TESTS / "helpers"
    assert helpers.is_dir() and not list(helpers.rglob("test_*.py"))
    assert not [p for p in helpers.rglob("*.py") if re.search(r"^def test_", Path(p).read_text(), re.M)]


def literal_example_counts(source: str) -> list[int]:
    """Lines where a property test pins `max_examples` to a number (which the Hypothesis profiles cannot
    scale) rather than to `examples(n)` (tests/helpers/properties.py)."""
    return [node.lineno for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.keyword) and node.arg == "max_examples" and isinstance(node.value, ast.Constant)]


def test_the_example_count_check_sees_a_literal_and_passes_a_scaled_count():
    assert literal_example_counts("@settings(max_examples=200, deadline=None)\ndef f(): pass\n") == [1]
    assert literal_example_counts("@settings(max_examples=examples(200))\ndef f(): pass\n") == []


def test_property_tests_scale_with_the_hypothesis_profile():
    offences = {str(path.relative_to(TESTS)): lines for path in sorted(TESTS.rglob("test_*.py"))
                if (lines := literal_example_counts(path.read_text(encoding="utf-8")))}
    assert not offences, f"write max_examples=examples(n) (tests/helpers/properties.py): {offences}"


def test_the_quick_profile_runs_fewer_examples_and_ci_the_full_count():
    from hypothesis import settings

    from tests.helpers.properties import examples

    dev, ci = settings.get_profile("dev"), settings.get_profile("ci")
    assert dev.max_examples == 50
    assert examples(300, dev) == 50 and examples(1000, dev) == 167 and examples(30, dev) == 10
    assert examples(300, ci) == 300 and examples(1000, ci) == 1000
