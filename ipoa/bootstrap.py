"""Wires the adapters to the service layer once per process (web, worker, CLI)."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from .adapters import workflow_store
from .adapters.clock import SystemClock
from .adapters.db import make_engine, make_session_factory
from .adapters.queue import RQPublisher
from .adapters.redis_conn import connect as redis_connect
from .adapters.unit_of_work import UnitOfWork
from .domain.catalogue import Catalogue, load_catalogue
from .domain.engine import Engine
from .domain.errors import WorkflowError


class Services:
    def __init__(self, *, database_url: str, redis_url: str, workflows_dir: str | Path,
                 clock: Any = None, publisher: Any = None, catalogue: Catalogue | None = None):
        self.database_url = database_url
        self.redis_url = redis_url
        self.workflows_dir = Path(workflows_dir)
        self.catalogue = catalogue or load_catalogue(self.workflows_dir)
        self.db = make_engine(database_url)
        self.session_factory = make_session_factory(self.db)
        self.clock = clock or SystemClock()
        self.publisher = publisher if publisher is not None else RQPublisher(self.redis)
        self._redis = None
        self._engine: Engine | None = None
        self._lock = threading.Lock()

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

    def engine(self, needs: tuple[str, int] | None = None) -> Engine:
        """The engine over every deployed version; rebuilt if a record names a version deployed since."""
        with self._lock:
            if self._engine is None or (needs is not None and not self._engine.has(*needs)):
                with self.session_factory() as session:
                    defs = workflow_store.load_all(session)
                if not defs:
                    raise WorkflowError("no workflows are deployed: run `flask --app ipoa init`")
                self._engine = Engine(defs, self.directory)
            return self._engine

    def close(self) -> None:
        self.db.dispose()
