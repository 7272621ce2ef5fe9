"""The use cases against the in-memory fakes (tests/fakes.py): no database, no Redis. `svc` here is a
FakeServices, so a test in this folder that reaches for the database (users, app, client) fails loudly
rather than quietly starting one."""
from __future__ import annotations

import pytest

from ipoa.domain.sms.escalation import EscalationSettings
from tests.fakes import FakeServices


@pytest.fixture
def svc():
    svc = FakeServices()
    svc.escalation_settings = EscalationSettings()  # the defaults, whatever the environment says
    return svc


@pytest.fixture
def db(svc):
    return svc.db
