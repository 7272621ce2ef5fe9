"""Errors the use cases raise besides the domain's own; entry points turn them into 4xx answers."""
from __future__ import annotations

from ..domain.errors import DomainError


class NotFound(DomainError):
    pass


class Forbidden(DomainError):
    pass


class OutsideRelationship(Forbidden):
    """The access policy refused: the user has no legitimate relationship with this record (see
    domain/access.py). break_glass says whether the user's role may open it by break-glass."""

    def __init__(self, ref: str, message: str, *, break_glass: bool):
        self.ref, self.break_glass = ref, break_glass
        super().__init__(message)
