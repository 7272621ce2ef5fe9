"""The base of every pydantic model that reads input from outside: the data files an administrator edits
(directory.yaml, routing.yaml, sla.yaml: directory.py, routing.py, sla.py) and the use cases' inputs
(service/inputs.py). A key the model does not know is refused, never ignored: a misspelt key in a data
file or a request would otherwise silently mean its default. Each user of the base adds only what is its
own (service/inputs.py strips whitespace; routing.py reads numbers as text)."""
from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# A data file's required text: whitespace around it stripped, and something left.
NonBlank = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


def describe_validation_errors(exc: ValidationError) -> str:
    """Pydantic's errors as 'where: what; ...' for a data file's error message."""
    problems = []
    for error in exc.errors():
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]).lstrip(".")
        # Pydantic's wording for a misspelt key does not say which way round the mistake is.
        message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)


__all__ = ["Strict", "NonBlank", "describe_validation_errors"]
