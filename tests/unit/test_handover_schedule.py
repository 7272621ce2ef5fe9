"""The scheduler looks at the shift changes at most every 30 s (workers/scheduler.ShiftHandovers), and a
failed look is logged by its kind only, never stops the loop, and is tried again at the next check."""
from __future__ import annotations

import logging

from workers.scheduler import HANDOVER_CHECK_SECONDS, ShiftHandovers


class Ticks:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


class Runs:
    def __init__(self, *outcomes):
        self.outcomes, self.calls = list(outcomes), 0

    def __call__(self, svc):
        self.calls += 1
        outcome = self.outcomes.pop(0) if self.outcomes else 0
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def test_it_looks_at_once_then_at_most_every_30_seconds():
    assert HANDOVER_CHECK_SECONDS == 30
    ticks, runs = Ticks(), Runs(2, 0, 0)
    handovers = ShiftHandovers(object(), run=runs, monotonic=ticks)
    assert handovers.poll() == 2 and runs.calls == 1  # the first tick looks
    for step in (1, 10, 29.9):
        ticks.t = 1000 + step
        assert handovers.poll() is None
    assert runs.calls == 1
    ticks.t = 1030
    assert handovers.poll() == 0 and runs.calls == 2
    ticks.t = 1059
    assert handovers.poll() is None and runs.calls == 2
    ticks.t = 1060.5
    handovers.poll()
    assert runs.calls == 3


def test_a_failure_is_logged_without_its_message_and_tried_again_at_the_next_check(caplog):
    ticks = Ticks()
    runs = Runs(RuntimeError("Zebedee Quixotically 9990000026 LE15 6XY"), 1)
    handovers = ShiftHandovers(object(), run=runs, monotonic=ticks)
    with caplog.at_level(logging.INFO, logger="workers.scheduler"):
        assert handovers.poll() is None  # raised inside: never out of poll
        ticks.t += 15
        assert handovers.poll() is None and runs.calls == 1
        ticks.t += 15
        assert handovers.poll() == 1 and runs.calls == 2
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "shift hand-over check failed (RuntimeError)" in logged
    assert "re-sent 1 referral(s)" in logged
    for identifier in ("Zebedee", "Quixotically", "9990000026", "LE15"):
        assert identifier not in logged
    assert all(r.exc_info is None for r in caplog.records)
