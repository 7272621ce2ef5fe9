"""The RQ worker: `python -m workers.worker [--queues NAME,...]`. SimpleWorker (Worker below: with fewer round
trips a job) runs jobs in this process (no fork per job: several times the throughput of the forking
Worker, and the SQLAlchemy pool stays valid). The jobs (workers/jobs.py) run with this process's services,
built from the configuration the web app reads (ipoa.bootstrap.from_environment), without a Flask app.

The Procfile runs two: `worker` on the texts' queue (`--queues ipoa`) and `timers` on the SLA timers'
(`--queues ipoa-timers`), so that a text never waits behind a timer job sleeping until its instants, nor
a timer behind a batch of texts (ipoa/adapters/rq_queue.py, TIMERS_QUEUE_NAME). With no --queues a worker
takes both, the timers first: `make run`'s and the tests' single worker."""
from __future__ import annotations

import argparse
import gc
import logging
from datetime import timedelta

from redis.client import Pipeline
from rq import SimpleWorker
from rq.utils import now

from ipoa import bootstrap
from ipoa.adapters.rq_queue import TIMERS_QUEUE_NAME, WORKER_QUEUES
from ipoa.service import timers
from workers import jobs

# How often the worker's own key is refreshed at most between jobs (RQ refreshes it three times a job, two
# round trips each); its time to live is minutes (RQ's worker_ttl), so a few seconds' gap is nothing.
HEARTBEAT_EVERY = timedelta(seconds=5)


class Worker(SimpleWorker):
    """RQ's SimpleWorker with fewer round trips to Redis per job (docs/performance.md, SMS): the worker's
    heartbeat at most every HEARTBEAT_EVERY between jobs rather than three times a job (a job's own
    heartbeat, which RQ's clean-up of abandoned jobs reads, is untouched), its state written only when
    it changes (RQ writes `idle` after each job and again before the next dequeue), and no log line
    about how long a result is kept (one a job, always the same)."""

    log_result_lifespan = False

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        if (timeout is None and pipeline is None and self.last_heartbeat is not None
                and now() - self.last_heartbeat < HEARTBEAT_EVERY):
            return
        super().heartbeat(timeout, pipeline)

    def set_state(self, state: str, pipeline: Pipeline | None = None) -> None:
        if pipeline is None and state == self._state:
            return
        super().set_state(state, pipeline)


def queues_from(argv: list[str] | None = None) -> list[str]:
    """The queues named by --queues (comma-separated, in the order they are taken from), each one of
    WORKER_QUEUES; all of them when none is named."""
    parser = argparse.ArgumentParser(prog="python -m workers.worker", description="ipoa's RQ worker")
    parser.add_argument("--queues", default=",".join(WORKER_QUEUES),
                        help=f"comma-separated queues to take jobs from, first first (default: %(default)s; "
                             f"known: {', '.join(WORKER_QUEUES)})")
    names = [n.strip() for n in parser.parse_args(argv).queues.split(",") if n.strip()]
    unknown = [n for n in names if n not in WORKER_QUEUES]
    if not names or unknown:
        parser.error(f"--queues: {', '.join(unknown) or 'none named'}: "
                     f"name one or more of {', '.join(WORKER_QUEUES)}")
    return list(dict.fromkeys(names))


def main(argv: list[str] | None = None) -> None:
    queues = queues_from(argv)
    svc, _ = bootstrap.from_environment()
    jobs.use(svc)
    log = logging.getLogger(__name__)
    # The job a killed predecessor was running is gone with it: its due timers are handed over again at
    # the scheduler's next read (within a second of this start), not REQUEUE_AFTER later. Those still
    # queued fire once all the same (firing claims). A database down now: REQUEUE_AFTER still applies.
    # Only a worker that takes the timers' jobs: a texts' worker restarting must not hand over again the
    # timers the timers' worker holds (they would fire once all the same, but be read and queued twice).
    try:
        if TIMERS_QUEUE_NAME in queues and (n := timers.release_hand_overs(svc)):
            log.info("worker start: %d due timer(s) handed over but unfired, to be handed over again", n)
    except Exception:  # noqa: BLE001 - never stop the worker starting
        log.warning("worker start: could not release the timers' hand-overs", exc_info=True)
    worker = Worker(queues, connection=svc.redis())
    # What start-up made (modules, the ORM's mappers, compiled templates: ~130,000 objects) lives as long
    # as the process: out of the collector's way, so that its full collections, paid while jobs run, walk
    # only what the jobs made (docs/performance.md, SMS).
    gc.freeze()
    log.info("worker listening on %s", ", ".join(queues))
    # No RQ scheduler: nothing is scheduled in RQ. Retries and recovery are the relay's, from the
    # database (ipoa/service/sms.py); the SLA timers are workers/scheduler.py's. RQ's scheduler takes a
    # lock that a SIGKILLed worker keeps for up to 10 minutes, and every retry would have waited for it.
    worker.work(with_scheduler=False)


if __name__ == "__main__":
    main()
