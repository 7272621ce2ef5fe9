"""A share of cases: hits out of a total, as a percentage (none of nothing). Its own module so that the
telephony measures (domain/telephony/measures.py) use it without importing the reports' figures."""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Rate"]


@dataclass(frozen=True)
class Rate:
    hits: int
    total: int

    @property
    def pct(self) -> float | None:
        return None if self.total == 0 else 100.0 * self.hits / self.total
