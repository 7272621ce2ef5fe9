"""URL converters for every route. Werkzeug's `<int:...>` takes any run of digits, and an id beyond what the
tables' INTEGER keys hold reached the database driver, which raised (a 500: "Python int too large to convert
to SQLite INTEGER"); here such an id simply names nothing, a 404 (docs/security.md, "Hostile input")."""
from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.routing import IntegerConverter

ID_LARGEST = 2 ** 31 - 1  # the largest id the tables' INTEGER keys hold (PostgreSQL's integer)


class DatabaseInt(IntegerConverter):
    """`<int:...>` at most ID_LARGEST unless a route says otherwise (`<int(max=...):...>`)."""

    def __init__(self, map: Any, fixed_digits: int = 0, min: int | None = None, max: int | None = ID_LARGEST,
                 signed: bool = False) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def init_app(app: Flask) -> None:
    """Before any blueprint is registered: a rule's converters are made when it is added."""
    app.url_map.converters["int"] = DatabaseInt
