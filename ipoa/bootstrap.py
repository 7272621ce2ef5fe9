"""Wires the adapters to the service layer once per process (web, worker, relay, scheduler, CLI).

`Services` is what every use case is handed as `svc`: each attribute and method typed, so `svc: Services`
(imported under TYPE_CHECKING in service modules) means something to mypy. `build_services(config)`
makes it from the configuration ipoa/config.py reads; the app factory (ipoa/__init__.py) and the worker
processes (workers/, through `from_environment()`, without building the Flask app) both go through it:
one source of the wiring."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import redis
from sqlalchemy import Engine as DatabaseEngine
from sqlalchemy.orm import Session, sessionmaker

from . import config as config_module
from . import log_redaction
from .adapters import held_connections, workflow_store
from .adapters.clock import SystemClock
from .adapters.db import make_engine, make_session_factory
from .adapters.redis_conn import connect as redis_connect
from .adapters.rq_queue import OutboxNotifier
from .adapters.sms_gateway import ConsoleGateway, Submitted, TwilioGateway
from .adapters.unit_of_work import Publisher, UnitOfWork
from .adapters.voice_gateway import CallState, ConsoleVoiceGateway, TwilioVoiceGateway
from .domain.catalogue import Catalogue, load_catalogue
from .domain.directory import Directory
from .domain.engine import Engine
from .domain.errors import WorkflowError
from .domain.routing import RoutingTable
from .domain.sms.escalation import EscalationSettings
from .domain.sms.links import LINK_CODE_LENGTH
from .domain.sms.templates import TEMPLATE_NAMES, SmsTemplates
from .paths import SMS_TEMPLATES  # templates/sms in a checkout, bundled in an installed wheel


class Clock(Protocol):
    """SystemClock in production; tests hand in a FixedClock (ipoa/adapters/clock.py)."""

    def now(self) -> datetime: ...


class SmsGateway(Protocol):
    """ConsoleGateway or TwilioGateway (ipoa/adapters/sms_gateway.py), or a test's scripted one."""

    def send(self, to: str, body: str, status_callback: str | None = None) -> Submitted: ...

    def find_submitted(self, to: str, body: str, since: datetime) -> Submitted | None: ...


class VoiceGateway(Protocol):
    """ConsoleVoiceGateway or TwilioVoiceGateway (ipoa/adapters/voice_gateway.py): a live call redirected, and
    asked about."""

    def redirect(self, call_sid: str, twiml: str) -> None: ...

    def call_state(self, call_sid: str) -> CallState | None: ...

    def reached(self, call_sid: str) -> bool | None: ...


def make_gateway(backend: str, twilio: Mapping[str, Any] | None = None) -> SmsGateway:
    if backend == "console":
        return ConsoleGateway()
    if backend == "twilio":
        t = twilio or {}
        return TwilioGateway(account_sid=t["account_sid"], auth_token=t["auth_token"], from_=t.get("from"),
                             messaging_service_sid=t.get("messaging_service_sid"),
                             api_base_url=t.get("api_base_url"))
    raise ValueError(f"SMS_BACKEND={backend!r}: choose 'console' or 'twilio'")


class Services:
    database_url: str
    redis_url: str
    workflows_dir: Path
    sla_file: Path | None  # another SLA policy than <workflows_dir>/sla.yaml
    catalogue: Catalogue
    public_base_url: str
    sms_templates: SmsTemplates
    twilio: Mapping[str, str | None]  # TWILIO_* (ipoa/config.py): the webhooks check signatures with its token
    sms_gateway: SmsGateway
    voice_backend: str  # VOICE_BACKEND: console | twilio (voice_gateway)
    # ESCALATION_REPEAT_MINUTES / ESCALATION_DIGEST_SECONDS, read once at start (ipoa/config.py): a bad value
    # stops the process starting. ipoa.service.sms.escalation_settings(svc) reads this attribute.
    escalation_settings: EscalationSettings
    db: DatabaseEngine
    session_factory: sessionmaker[Session]
    clock: Clock
    publisher: Publisher
    workflow_refresh_seconds: float

    def __init__(self, *, database_url: str, redis_url: str, workflows_dir: str | Path,
                 clock: Clock | None = None, publisher: Publisher | None = None,
                 catalogue: Catalogue | None = None, workflow_refresh_seconds: float = 30.0,
                 public_base_url: str = "http://127.0.0.1:5000", sms_backend: str = "console",
                 sms_gateway: SmsGateway | None = None, twilio: Mapping[str, str | None] | None = None,
                 sla_file: str | Path | None = None, escalation_settings: EscalationSettings | None = None,
                 voice_backend: str = "console"):
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
        if voice_backend not in ("console", "twilio"):
            raise ValueError(f"VOICE_BACKEND={voice_backend!r}: choose 'console' or 'twilio'")
        self.voice_backend = voice_backend
        self._voice_gateway: VoiceGateway | None = None
        self.escalation_settings = escalation_settings or EscalationSettings()
        self.db = make_engine(database_url)
        self.session_factory = make_session_factory(self.db)
        self.clock = clock or SystemClock()
        self.publisher = publisher if publisher is not None else OutboxNotifier(self.redis)
        self._redis: redis.Redis | None = None
        self._engine: Engine | None = None
        self._marker: tuple[Any, ...] | None = None
        self._checked_at = 0.0
        self.workflow_refresh_seconds = workflow_refresh_seconds
        self._lock = threading.Lock()

    def load_catalogue(self) -> Catalogue:
        return load_catalogue(self.workflows_dir, sla_file=self.sla_file)

    @property
    def directory(self) -> Directory:
        return self.catalogue.directory

    @property
    def routing(self) -> RoutingTable:
        return self.catalogue.routing

    @property
    def voice_gateway(self) -> VoiceGateway:
        """Redirects live calls (adapters/voice_gateway.py), built on first use: most processes never do."""
        if self._voice_gateway is None:
            if self.voice_backend == "twilio":
                self._voice_gateway = TwilioVoiceGateway(
                    account_sid=self.twilio.get("account_sid") or "", auth_token=self.twilio.get("auth_token") or "",
                    api_base_url=self.twilio.get("api_base_url"))
            else:
                self._voice_gateway = ConsoleVoiceGateway()
        return self._voice_gateway

    @voice_gateway.setter
    def voice_gateway(self, gateway: VoiceGateway) -> None:
        self._voice_gateway = gateway

    def redis(self) -> redis.Redis:
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
        held = held_connections.for_engine(self.db)
        if held is not None:
            held.release_all()  # (the threads' kept connections, adapters/held_connections.py)
        self.db.dispose()


def build_services(config: Mapping[str, Any]) -> Services:
    """The services from the configuration: ipoa/config.py's keys (the web app's app.config, after a
    test's overrides; a worker's config_module.load())."""
    return Services(
        database_url=config["DATABASE_URL"], redis_url=config["REDIS_URL"],
        workflows_dir=config["WORKFLOWS_DIR"], public_base_url=config["PUBLIC_BASE_URL"],
        sms_backend=config["SMS_BACKEND"], twilio=config["TWILIO"], sla_file=config["SLA_POLICY_FILE"],
        escalation_settings=config["ESCALATION"], voice_backend=config.get("VOICE_BACKEND", "console"))


def configure_logging(level: str) -> None:
    """Every process's logging: the level, one line per record, and the identifiers scrubbed from every
    record (ipoa/log_redaction.py) before any handler writes it."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    log_redaction.install()
    for noisy in ("transitions", "alembic"):  # per-transition and per-plugin chatter
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Twilio's client logs each request at INFO: nine lines of URL and headers, and a lookup's query
    # (a professional's mobile number). Costly per text, and not for our logs.
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)


def from_environment() -> tuple[Services, dict[str, Any]]:
    """A worker process's start (workers/): the configuration the web app reads (same environment, same
    instance folder), logging set up as the web app sets it, and the services. No Flask app is built."""
    config = config_module.load()
    configure_logging(config["LOG_LEVEL"])
    return build_services(config), config
