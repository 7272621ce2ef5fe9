"""Wires the adapters to the service layer once per process (web, worker, CLI)."""
from __future__ import annotations

import threading
from contextlib import nullcontext
import time
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from .adapters import workflow_store
from .adapters.clock import SystemClock
from .adapters.db import make_engine, make_session_factory
from .adapters.rq_queue import OutboxNotifier
from .adapters.redis_conn import connect as redis_connect
from .adapters.unit_of_work import UnitOfWork
from .domain.catalogue import Catalogue, load_catalogue
from .adapters.sms_gateway import ConsoleGateway, TwilioGateway
from .domain.engine import Engine
from .domain.sms.links import LINK_CODE_LENGTH
from .domain.sms.templates import TEMPLATE_NAMES, SmsTemplates
from .domain.errors import WorkflowError
from .paths import SMS_TEMPLATES  # templates/sms in a checkout, bundled in an installed wheel


def make_gateway(backend: str, twilio: dict | None = None):
    if backend == "console":
        return ConsoleGateway()
    if backend == "twilio":
        t = twilio or {}
        return TwilioGateway(account_sid=t["account_sid"], auth_token=t["auth_token"], from_=t.get("from"),
                             messaging_service_sid=t.get("messaging_service_sid"),
                             api_base_url=t.get("api_base_url"))
    raise ValueError(f"SMS_BACKEND={backend!r}: choose 'console' or 'twilio'")


class Services:
    def __init__(self, *, database_url: str, redis_url: str, workflows_dir: str | Path,
                 clock: Any = None, publisher: Any = None, catalogue: Catalogue | None = None,
                 workflow_refresh_seconds: float = 30.0, public_base_url: str = "http://127.0.0.1:5000",
                 sms_backend: str = "console", sms_gateway: Any = None, twilio: dict | None = None,
                 sla_file: str | Path | None = None):
        self.database_url = database_url
        self.redis_url = redis_url
        self.workflows_dir = Path(workflows_dir)
        self.sla_file = Path(sla_file) if sla_file else None
        self.catalogue = catalogue or self.load_catalogue()
        self.public_base_url = public_base_url
        # Checked at start: a template naming anything but the allowed fields, or too long, stops here. Too
        # long is judged with the links texts carry: this PUBLIC_BASE_URL, /r/ and a short code; the error
        # names the template, by how much, and the longest PUBLIC_BASE_URL that would fit.
        self.sms_templates = SmsTemplates.load(SMS_TEMPLATES, public_base_url, required=TEMPLATE_NAMES,
                                               link_code_length=LINK_CODE_LENGTH)
        self.twilio = twilio or {}
        self.sms_gateway = sms_gateway or make_gateway(sms_backend, self.twilio)
        self.db = make_engine(database_url)
        self.session_factory = make_session_factory(self.db)
        self.clock = clock or SystemClock()
        self.publisher = publisher if publisher is not None else OutboxNotifier(self.redis)
        self._redis = None
        self._engine: Engine | None = None
        self._marker: tuple | None = None
        self._checked_at = 0.0
        self.workflow_refresh_seconds = workflow_refresh_seconds
        self._lock = threading.Lock()

    def load_catalogue(self) -> Catalogue:
        return load_catalogue(self.workflows_dir, sla_file=self.sla_file)

    @property
    def directory(self):
        return self.catalogue.directory

    @property
    def routing(self):
        return self.catalogue.routing

    def redis(self):
        if self._redis is None:
            self._redis = redis_connect(self.redis_url)
        return self._redis

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.session_factory, self.publisher)

    def engine(self, needs: tuple[str, int] | None = None, session: Session | None = None) -> Engine:
        """The engine over every deployed version. Another process may deploy a new version at any time:
        the deployed set is re-checked (one cheap query) at most every workflow_refresh_seconds, and at
        once when a record names a version this engine does not hold. Inside a unit of work, pass its
        session: a second connection would wait on the first's lock under SQLite.

        No lock is held while the database is read: a thread holding one while its query waited for
        another thread's transaction (SQLite's single writer), which in turn wanted the lock, would wait
        out the busy timeout. Two threads may both rebuild; the last one's engine stays, and both are
        built from what is deployed."""
        engine = self._engine
        missing = needs is not None and engine is not None and not engine.has(*needs)
        due = time.monotonic() - self._checked_at >= self.workflow_refresh_seconds
        if engine is not None and not missing and not due:
            return engine
        with nullcontext(session) if session is not None else self.session_factory() as s:
            marker = workflow_store.marker(s)
            if engine is None or marker != self._marker:
                defs = workflow_store.load_all(s)
                if not defs:
                    raise WorkflowError("no workflows are deployed: run `flask --app ipoa init`")
                engine = Engine(defs, self.directory, self.catalogue.sla)
                with self._lock:
                    self._engine, self._marker = engine, marker
        self._checked_at = time.monotonic()
        return engine

    def close(self) -> None:
        self.db.dispose()
