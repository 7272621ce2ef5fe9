"""Where ipoa's own files are, in a checkout and in an installed wheel alike.

In the repository the page templates, the SMS templates and the default workflows are top-level folders
(templates/, workflows/); a built wheel carries them inside the package (ipoa/templates, ipoa/workflows:
the force-include table in pyproject.toml). Static files, the Alembic environment and its versions, and
ipoa/data live in the package in both. A wheel installs as plain files, and Flask, Jinja and Alembic want
real folders, so these are paths (not importlib.resources traversables); an installed wheel's bundled copy
wins over anything beside the package. `.ci/wheel-smoke` checks them from a wheel installed outside the
checkout."""
from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _bundled_or_checkout(name: str) -> Path:
    bundled = PACKAGE_DIR / name  # an installed wheel
    return bundled if bundled.is_dir() else PACKAGE_DIR.parent / name  # a checkout (editable install)


TEMPLATES = _bundled_or_checkout("templates")
SMS_TEMPLATES = TEMPLATES / "sms"
WORKFLOWS = _bundled_or_checkout("workflows")  # the default WORKFLOWS_DIR
DEMO_SLA_POLICY = WORKFLOWS / "demo" / "sla.yaml"  # make run's short clocks (ipoa/devserver.py)
STATIC = PACKAGE_DIR / "static"
MIGRATIONS = PACKAGE_DIR / "migrations"  # env.py, script.py.mako, versions/
DATA = PACKAGE_DIR / "data"
