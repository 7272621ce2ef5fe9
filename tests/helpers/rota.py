"""Rotas for tests: put professionals on duty the way the product does, through the service layer
(service/rotas.py), instead of the on_duty flag that went with migration 0011."""
from __future__ import annotations

from datetime import time

from ipoa.service import rotas


def on_duty(svc, service: str, *professional_ids: int, duty_lead: int | None = None) -> list[int]:
    """Seven weekly shifts of `service` (every weekday, 00:00-00:00: the whole day) with these
    professionals, so they are on duty at every instant; the shifts' ids."""
    return [rotas.add_pattern_shift(svc, "test", service=service, weekday=weekday, start=time(0), end=time(0),
                                    members=list(professional_ids), duty_lead=duty_lead, label="all day")
            for weekday in range(7)]


def add_on_duty(svc, *, name: str, service: str, mobile: str) -> int:
    """Register a professional and put them on duty at every instant (what `add_professional` meant before
    rotas, when it set the on_duty flag by default); their id."""
    from ipoa.service.professionals import add_professional

    professional_id = add_professional(svc, name=name, service=service, mobile=mobile)
    on_duty(svc, service, professional_id)
    return professional_id
