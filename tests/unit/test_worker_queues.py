"""workers/worker.queues_from: which queues a worker takes jobs from (the Procfile runs one worker for the
texts and one for the SLA timers; a worker named no queue takes both, the timers first)."""
from __future__ import annotations

import pytest

from ipoa.adapters.rq_queue import QUEUE_NAME, TIMERS_QUEUE_NAME
from workers.worker import queues_from


def test_with_no_queues_named_a_worker_takes_both_the_timers_first():
    assert queues_from([]) == [TIMERS_QUEUE_NAME, QUEUE_NAME]


@pytest.mark.parametrize(("given", "taken"), [
    ("ipoa", [QUEUE_NAME]),
    ("ipoa-timers", [TIMERS_QUEUE_NAME]),
    ("ipoa, ipoa-timers", [QUEUE_NAME, TIMERS_QUEUE_NAME]),
    ("ipoa,ipoa", [QUEUE_NAME]),
])
def test_the_queues_named_in_their_order(given, taken):
    assert queues_from(["--queues", given]) == taken


def test_the_procfile_runs_a_worker_for_the_texts_and_one_for_the_timers():
    from ipoa.config import REPO_ROOT

    lines = dict(line.split(":", 1) for line in (REPO_ROOT / "Procfile").read_text().splitlines() if line)
    assert queues_from(lines["worker"].split()[3:]) == [QUEUE_NAME]
    assert queues_from(lines["timers"].split()[3:]) == [TIMERS_QUEUE_NAME]


@pytest.mark.parametrize("given", ["texts", "ipoa,nope", ",", ""])
def test_an_unknown_or_empty_queue_stops_the_worker_naming_the_field(given, capsys):
    with pytest.raises(SystemExit) as stopped:
        queues_from(["--queues", given])
    assert stopped.value.code == 2
    assert "--queues" in capsys.readouterr().err
