"""The RQ worker: `python -m workers.worker`. SimpleWorker runs jobs in this process (no fork per job:
several times the throughput of the forking Worker, and the SQLAlchemy pool stays valid). The jobs
(workers/jobs.py) run with this process's services, built from the configuration the web app reads
(ipoa.bootstrap.from_environment), without a Flask app."""
from __future__ import annotations

import gc
import logging

from rq import SimpleWorker

from ipoa import bootstrap
from ipoa.adapters.rq_queue import QUEUE_NAME
from ipoa.service import timers
from workers import jobs


def main() -> None:
    svc, _ = bootstrap.from_environment()
    jobs.use(svc)
    log = logging.getLogger(__name__)
    # The job a killed predecessor was running is gone with it: its due timers are handed over again at
    # the scheduler's next read (within a second of this start), not REQUEUE_AFTER later. Those still
    # queued fire once all the same (firing claims). A database down now: REQUEUE_AFTER still applies.
    try:
        if n := timers.release_hand_overs(svc):
            log.info("worker start: %d due timer(s) handed over but unfired, to be handed over again", n)
    except Exception:  # noqa: BLE001 - never stop the worker starting
        log.warning("worker start: could not release the timers' hand-overs", exc_info=True)
    worker = SimpleWorker([QUEUE_NAME], connection=svc.redis())
    # What start-up made (modules, the ORM's mappers, compiled templates: ~130,000 objects) lives as long
    # as the process: out of the collector's way, so that its full collections, paid while jobs run, walk
    # only what the jobs made (docs/performance.md, SMS).
    gc.freeze()
    log.info("worker listening on %s", QUEUE_NAME)
    # No RQ scheduler: nothing is scheduled in RQ. Retries and recovery are the relay's, from the
    # database (ipoa/service/sms.py); the SLA timers are workers/scheduler.py's. RQ's scheduler takes a
    # lock that a SIGKILLed worker keeps for up to 10 minutes, and every retry would have waited for it.
    worker.work(with_scheduler=False)


if __name__ == "__main__":
    main()
