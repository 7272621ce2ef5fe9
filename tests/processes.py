"""The product's own processes (worker, relay, scheduler) started for a test against its database and
Redis, killed without warning, and waited on."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

import pytest

from ipoa.config import REPO_ROOT


def start(module: str, svc, redis_url: str | None = None, *, args: Sequence[str] = (),
          log_path: str | os.PathLike | None = None, **env) -> subprocess.Popen:
    """`python -m module [args]` in a session of its own; fast scheduler ticks and re-hand-overs for
    tests. Its output is discarded, or written to log_path (stdout and stderr together)."""
    full = {**os.environ, "DATABASE_URL": svc.database_url, "REDIS_URL": redis_url or svc.redis_url,
            "SECRET_KEY": "test", "SMS_BACKEND": "console", "SCHEDULER_TICK_SECONDS": "0.2",
            "TIMER_REQUEUE_SECONDS": "2", **env}
    command = [sys.executable, "-m", module, *args]
    if log_path is None:
        return subprocess.Popen(command, env=full, cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    with open(log_path, "ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(command, env=full, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def kill(*procs) -> None:
    """SIGKILL, the process and anything it started (the worker's scheduler)."""
    for proc in procs:
        if proc is None:
            continue
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")
