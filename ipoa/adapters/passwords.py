"""Password hashes: werkzeug's (scrypt), behind this module so that the service layer needs no web
framework (tests/unit/test_import_rules.py). Same names and arguments as werkzeug's own."""
from __future__ import annotations

from werkzeug import security


def generate_password_hash(password: str) -> str:
    return security.generate_password_hash(password)


def check_password_hash(password_hash: str, password: str) -> bool:
    return security.check_password_hash(password_hash, password)
