"""How urgent a call is, most urgent first (docs/domain.md, "Routing"). The one list: the use cases'
inputs accept these (service/inputs.py), the routing table's urgencies must be exactly these
(routing.py), and the SLA policy names them (sla.py)."""
from __future__ import annotations

from typing import Literal, get_args

Urgency = Literal["emergency", "urgent", "same_day", "routine"]
URGENCIES: tuple[str, ...] = get_args(Urgency)

__all__ = ["Urgency", "URGENCIES"]
