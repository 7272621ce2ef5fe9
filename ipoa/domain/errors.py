"""Errors the domain raises; entry points turn them into 4xx answers."""


class DomainError(Exception):
    """Base for errors that are the caller's to fix, never a crash."""


class WorkflowError(ValueError):
    """A workflow definition is invalid. The message names the source file and the problem."""


class TriggerNotAllowed(DomainError):
    def __init__(self, trigger: str, state: str, allowed: list[str]):
        self.trigger, self.state, self.allowed = trigger, state, allowed
        super().__init__(
            f"'{trigger}' is not allowed in state '{state}'; allowed: {', '.join(allowed) or 'none'}"
        )


class GuardFailed(DomainError):
    """The trigger exists here but its guard refused: field -> message."""

    def __init__(self, trigger: str, errors: dict[str, str]):
        self.trigger, self.errors = trigger, errors
        super().__init__(f"'{trigger}' refused: " + "; ".join(f"{k}: {v}" for k, v in errors.items()))


class VersionConflict(DomainError):
    def __init__(self, expected: int | None, actual: int | None):
        self.expected, self.actual = expected, actual
        super().__init__(f"version conflict: expected {expected}, current is {actual}")
