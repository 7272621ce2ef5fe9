"""Values read from the pages' forms the same way wherever they are posted (the call page, the
professional's referral page, the supervisor's lists)."""
from __future__ import annotations


def expected_version(form) -> int:
    """The version a form was rendered at; 0 (never current) when missing or garbled, so it conflicts."""
    try:
        return int(form.get("expected_version", ""))
    except ValueError:
        return 0


__all__ = ["expected_version"]
