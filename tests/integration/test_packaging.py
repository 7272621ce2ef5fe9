"""The built wheel carries what the product needs at run time (pyproject.toml's wheel target, found through
ipoa/paths.py) and declares every distribution the code imports. Built here with the test extras' build
and hatchling, without network, in a few seconds; .ci/wheel-smoke installs such a wheel outside the
checkout and runs it."""
from __future__ import annotations

import ast
import email
import re
import subprocess
import sys
import zipfile
from importlib.metadata import packages_distributions

import pytest

from ipoa.config import REPO_ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(REPO_ROOT)],
                   check=True, capture_output=True, timeout=120)
    (built,) = out.glob("ipoa-*.whl")
    with zipfile.ZipFile(built) as zf:
        yield zf


def _shipped(folder: str, pattern: str = "**/*") -> list[str]:
    root = REPO_ROOT / folder
    return sorted(p.relative_to(REPO_ROOT).as_posix() for p in root.glob(pattern)
                  if p.is_file() and "__pycache__" not in p.parts)


@pytest.mark.parametrize("folder, inside", [
    ("templates", "ipoa/templates"),  # the pages' and the texts' (templates/sms) templates
    ("workflows", "ipoa/workflows"),  # the default workflows, directory, routing, SLA policy, and the demo's
])
def test_top_level_folders_are_inside_the_package(wheel, folder, inside):
    names = set(wheel.namelist())
    files = _shipped(folder)
    assert files
    missing = [f for f in files if inside + f[len(folder):] not in names]
    assert not missing, f"not in the wheel: {missing}"


@pytest.mark.parametrize("folder", ["ipoa/static", "ipoa/migrations", "ipoa/data", "workers"])
def test_package_folders_are_whole(wheel, folder):
    names = set(wheel.namelist())
    files = _shipped(folder)
    assert files
    assert not [f for f in files if f not in names]


def test_the_essentials_are_there_by_name(wheel):
    names = set(wheel.namelist())
    for name in ("ipoa/templates/login.html", "ipoa/templates/sms/referral_sent.txt",
                 "ipoa/workflows/call.workflow.yaml", "ipoa/workflows/demo/sla.yaml",
                 "ipoa/static/app.css", "ipoa/migrations/env.py", "ipoa/migrations/script.py.mako",
                 "ipoa/migrations/versions/0001_initial_schema.py", "ipoa/data/common-passwords.txt.gz",
                 "ipoa/paths.py", "workers/worker.py", "workers/relay.py", "workers/scheduler.py"):
        assert name in names, name


def test_nothing_of_the_checkout_but_the_product(wheel):
    top = {n.split("/")[0] for n in wheel.namelist()}
    assert top == {"ipoa", "workers", "ipoa-0.1.0.dist-info"}
    assert not [n for n in wheel.namelist() if "__pycache__" in n or n.endswith(".pyc")]


def _imported_modules() -> set[str]:
    found = set()
    for path in [*(REPO_ROOT / "ipoa").rglob("*.py"), *(REPO_ROOT / "workers").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"ipoa", "workers", "__future__"}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_imported_distribution_is_a_declared_dependency(wheel):
    metadata = email.message_from_bytes(wheel.read("ipoa-0.1.0.dist-info/METADATA"))
    declared = {_normalise(re.split(r"[ ;<>=!~\[(]", req, maxsplit=1)[0])
                for req in metadata.get_all("Requires-Dist") if "extra ==" not in req}
    owners = packages_distributions()
    modules = _imported_modules()
    assert {"flask", "sqlalchemy", "twilio", "requests"} <= modules  # the walk finds what it should
    undeclared = {m: owners.get(m) for m in modules
                  if not owners.get(m) or not {_normalise(d) for d in owners[m]} & declared}
    assert not undeclared, f"imported but not in [project] dependencies: {undeclared}"
