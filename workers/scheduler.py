"""The SLA timer scheduler: `python -m workers.scheduler`. Every tick it hands the due timers to RQ
(jobs of up to ipoa.adapters.queue.TIMER_BATCH timers, run by the worker).

A small loop of ours rather than RQ's scheduler (enqueue_at): RQ keeps scheduled jobs in Redis, so a
flushed or replaced Redis would lose every clock, and a clock that stops early would leave a job to
cancel. Here the database holds every timer; each tick re-reads the due ones, so killing and restarting
this process, the worker or Redis loses none (a timer handed over but not fired within 30 s is handed
over again) and firing claims the timer, so none escalates twice. One query per tick on an index."""
from __future__ import annotations

import logging
import time
from datetime import timedelta

from ipoa import create_app
from ipoa.service import timers
from workers.lifecycle import stop_requested

log = logging.getLogger(__name__)
def rq_enqueue(svc):
    from rq import Queue

    from ipoa.adapters.queue import QUEUE_NAME, enqueue_timer_batches

    queue = Queue(QUEUE_NAME, connection=svc.redis())
    return lambda ids: enqueue_timer_batches(queue, ids)


def run(svc, tick: float = 1.0, stop=lambda: False, requeue_after: timedelta = timers.REQUEUE_AFTER) -> None:
    enqueue = rq_enqueue(svc)
    while not stop():
        started = time.monotonic()
        try:
            n = timers.hand_over_due(svc, enqueue, requeue_after=requeue_after)
            if n:
                log.info("scheduler handed over %d due timer(s)", n)
        except Exception:  # noqa: BLE001 - the database or Redis is down: the timers wait in the table
            log.warning("scheduler tick failed; retrying", exc_info=True)
        time.sleep(max(0.0, tick - (time.monotonic() - started)))


def main() -> None:
    app = create_app()
    svc = app.extensions["ipoa"]
    stop = stop_requested()
    tick = app.config["SCHEDULER_TICK_SECONDS"]
    requeue = timedelta(seconds=app.config["TIMER_REQUEUE_SECONDS"])
    log.info("timer scheduler started (tick %.2fs)", tick)
    with app.app_context():
        run(svc, tick=tick, stop=stop, requeue_after=requeue)


if __name__ == "__main__":
    main()
