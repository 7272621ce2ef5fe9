"""workers/worker.Worker: RQ's SimpleWorker with fewer round trips to Redis per job. What it leaves out,
and what it must not (a job's own heartbeat, a heartbeat RQ asks for with a time to live, a state that
changes)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from rq import SimpleWorker

from workers import worker as worker_module
from workers.worker import HEARTBEAT_EVERY, Worker


@pytest.fixture
def calls(monkeypatch):
    """What reached SimpleWorker's own heartbeat and set_state (each a round trip to Redis), not Redis."""
    seen: list[tuple] = []

    def heartbeat(self, timeout=None, pipeline=None):
        self.last_heartbeat = worker_module.now()
        seen.append(("heartbeat", timeout, pipeline))

    def set_state(self, state, pipeline=None):
        self._state = state
        seen.append(("state", state, pipeline))

    monkeypatch.setattr(SimpleWorker, "heartbeat", heartbeat)
    monkeypatch.setattr(SimpleWorker, "set_state", set_state)
    return seen


def a_worker(svc) -> Worker:
    # its heartbeats and states go to the `calls` fixture, not to Redis
    return Worker(["ipoa"], connection=svc.redis())


def test_the_workers_heartbeat_between_jobs_goes_at_most_every_few_seconds(svc, calls, monkeypatch):
    clock = [worker_module.now()]
    monkeypatch.setattr(worker_module, "now", lambda: clock[0])
    w = a_worker(svc)
    w.heartbeat()
    w.heartbeat()  # the next job's, a moment later: left out
    assert [c[0] for c in calls] == ["heartbeat"]
    clock[0] += HEARTBEAT_EVERY + timedelta(seconds=0.1)
    w.heartbeat()
    assert len(calls) == 2


def test_a_heartbeat_with_a_time_to_live_or_in_a_pipeline_always_goes(svc, calls):
    w = a_worker(svc)
    w.heartbeat()
    w.heartbeat(240)  # RQ's, as a job starts: the key must live as long as the job may run
    pipeline = object()
    w.heartbeat(pipeline=pipeline)  # type: ignore[arg-type]
    assert calls[1:] == [("heartbeat", 240, None), ("heartbeat", None, pipeline)]


def test_the_state_is_written_when_it_changes(svc, calls):
    w = a_worker(svc)
    w.set_state("busy")
    w.set_state("idle")
    w.set_state("idle")  # RQ's again before the next dequeue: left out
    pipeline = object()
    w.set_state("idle", pipeline)  # type: ignore[arg-type]  # in RQ's own pipeline: kept
    assert calls == [("state", "busy", None), ("state", "idle", None), ("state", "idle", pipeline)]


def test_the_result_lifespan_line_is_not_logged():
    assert Worker.log_result_lifespan is False and SimpleWorker.log_result_lifespan is True
