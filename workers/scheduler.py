"""The SLA timer scheduler: `python -m workers.scheduler`. Every READ_SECONDS it reads the timers falling
due in the next PREFETCH_SECONDS (one query on an index), marks them handed over as of their due instants
and enqueues them with those instants (jobs of up to ipoa.adapters.rq_queue.TIMER_JOB timers, on the
timers' own queue, TIMERS_QUEUE_NAME); the worker fires each at its instant, never before
(service/timers.fire_when_due). So a timer fires within tens of milliseconds of its due instant, not at
the next tick; and a worker that falls behind fires all that are due at once, in larger transactions.

A small loop of ours rather than RQ's scheduler (enqueue_at): RQ keeps scheduled jobs in Redis, so a
flushed or replaced Redis would lose every clock, and a clock that stops early would leave a job to
cancel. Here the database holds every timer and Redis only the next half second's, so killing and
restarting this process, the worker or Redis loses none: this process holds nothing in memory, and
restarted it reads the overdue ones at once; a starting worker releases the hand-overs of the unfired
timers (service/timers.release_hand_overs), so the job its killed predecessor was running is handed over
again at the next read; and a timer handed over but not fired within 30 s of its instant is handed over
again (Redis flushed). Firing claims the timer, so none escalates twice.

It also starts the nightly verification of the audit trail (`flask --app ipoa audit verify --by
scheduler`, at 02:30 Europe/London) in a process of its own: a walk over millions of events takes minutes,
and the ticks must not wait for it. See NightlyVerification. Every 30 s it re-sends the referrals still
awaiting acceptance at each shift change to the incoming shift (service/shift_handover.py): see
ShiftHandovers. Every minute it asks Twilio about the callers who seem to have waited for ever, a webhook
lost (service/lost_calls.py): see LostCallCheck. All are looked at every tick (SCHEDULER_TICK_SECONDS)."""
from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta

from ipoa import bootstrap
from ipoa.config import REPO_ROOT
from ipoa.service import audit, timers
from workers.lifecycle import stop_requested

log = logging.getLogger(__name__)

# How often the loop asks whether tonight's verification is due (one small query), and how long after the
# scheduler starts it first asks: a restart storm does not start verifications, nor a short-lived
# scheduler (the tests' processes).
VERIFY_CHECK_SECONDS = 60.0
VERIFY_COMMAND = [sys.executable, "-m", "flask", "--app", "ipoa", "audit", "verify", "--by", "scheduler"]


def spawn_verification() -> subprocess.Popen:
    # Its output goes where the scheduler's goes (the process manager's log); same environment, so the
    # same database.
    return subprocess.Popen(VERIFY_COMMAND, cwd=REPO_ROOT)


class NightlyVerification:
    """Starts the audit trail's verification once a night (audit.nightly_due decides, from the
    audit_verifications table, so a restarted scheduler neither repeats tonight's run nor misses it) and
    never a second while its own still runs. poll() is called every tick and returns at once: it looks at
    the child's exit status, and at most every check_seconds at the table."""

    def __init__(self, svc, spawn=spawn_verification, check_seconds: float = VERIFY_CHECK_SECONDS,
                 monotonic=time.monotonic):
        self.svc = svc
        self.spawn = spawn
        self.check_seconds = check_seconds
        self.monotonic = monotonic
        self.child = None
        self.last_attempt: datetime | None = None
        self._next_check = monotonic() + check_seconds

    def poll(self) -> None:
        if self.child is not None:
            code = self.child.poll()
            if code is None:
                return
            self.child = None
            if code == 0:
                log.info("nightly audit verification: every chain intact")
            elif code == 1:
                log.error("nightly audit verification: the audit trail is BROKEN (shown on the supervisors' "
                          "exceptions panel)")
            else:
                log.warning("nightly audit verification could not finish (exit status %s); tried again later",
                            code)
        if self.monotonic() < self._next_check:
            return
        self._next_check = self.monotonic() + self.check_seconds
        now = self.svc.clock.now()
        runs = audit.recent_runs(self.svc, min(audit.tonight(now), now - audit.STALE_AFTER))
        if audit.nightly_due(now, runs, self.last_attempt):
            self.last_attempt = now
            log.info("starting the nightly audit verification")
            self.child = self.spawn()

    def stop(self) -> None:
        """On the scheduler's stop: ask a running verification to stop too (it records that it could not
        finish, and tonight's run is tried again)."""
        if self.child is not None and self.child.poll() is None:
            self.child.terminate()
            try:
                self.child.wait(10)
            except subprocess.TimeoutExpired:
                self.child.kill()


HANDOVER_CHECK_SECONDS = 30.0  # how often the shift changes are looked at (service/shift_handover.py)


class ShiftHandovers:
    """Re-sends the referrals still awaiting acceptance at each shift change (service/shift_handover.run),
    at most every check_seconds: poll() is called every tick and returns at once in between. A failure is
    logged by its kind only (the database's message may quote a row) and tried again at the next check;
    handover_checks says where the last run stopped, so nothing is missed meanwhile."""

    def __init__(self, svc, run=None, check_seconds: float = HANDOVER_CHECK_SECONDS, monotonic=time.monotonic):
        from ipoa.service import shift_handover

        self.svc = svc
        self.run = run or shift_handover.run
        self.check_seconds = check_seconds
        self.monotonic = monotonic
        self._next_check = monotonic()  # the first tick looks at once

    def poll(self) -> int | None:
        """The number of referrals re-sent; None when it was not time to look, or the look failed."""
        if self.monotonic() < self._next_check:
            return None
        self._next_check = self.monotonic() + self.check_seconds
        try:
            n = self.run(self.svc)
        except Exception as exc:  # noqa: BLE001 - never let a hand-over stop the timers
            log.warning("shift hand-over check failed (%s); tried again in %.0fs", type(exc).__name__,
                        self.check_seconds)
            return None
        if n:
            log.info("re-sent %d referral(s) to the incoming shift at a shift change", n)
        return n


class LostCallCheck:
    """Asks Twilio about the callers who seem to have waited for ever (service/lost_calls.check: a lost
    webhook), at most every check_seconds, in a thread of its own: a check asks Twilio's REST API about up
    to 50 callers, and a slow or unreachable Twilio (seconds a request) must not hold up the SLA timers'
    reads, which this loop makes every 0.2 s. poll() is called every tick and returns at once; a check still
    running when the next is due is not doubled. A failure is logged by its kind only and tried again at the
    next check. background=False runs the check in poll() itself (the tests)."""

    def __init__(self, svc, run=None, check_seconds: float | None = None, monotonic=time.monotonic, *,
                 background: bool = True):
        from ipoa.service import lost_calls

        self.svc = svc
        self.run = run or lost_calls.check
        self.check_seconds = lost_calls.CHECK_EVERY_SECONDS if check_seconds is None else check_seconds
        self.monotonic = monotonic
        self.background = background
        self.thread: threading.Thread | None = None
        self.last: int | None = None  # what the last check that finished ended (None: it failed, or none ran)
        self._next_check = monotonic()  # the first tick looks at once

    def poll(self) -> bool:
        """True if a check was started now (or, background=False, run)."""
        if self.monotonic() < self._next_check or (self.thread is not None and self.thread.is_alive()):
            return False
        self._next_check = self.monotonic() + self.check_seconds
        if not self.background:
            self._check()
            return True
        self.thread = threading.Thread(target=self._check, name="lost-call-check", daemon=True)
        self.thread.start()
        return True

    def _check(self) -> None:
        try:
            n = self.run(self.svc)
        except Exception as exc:  # noqa: BLE001 - never let this check stop the scheduler
            log.warning("lost-call check failed (%s); tried again in %.0fs", type(exc).__name__,
                        self.check_seconds)
            self.last = None
            return
        self.last = n
        if n:
            log.info("ended %d phone call(s) that had ended without a webhook saying so", n)

    def stop(self, timeout: float = 30.0) -> None:
        """On the scheduler's stop: let a running check finish (each of its endings is one short unit of
        work; a check cut off is simply made again by the next scheduler)."""
        if self.thread is not None:
            self.thread.join(timeout)


def rq_enqueue(svc):
    from rq import Queue

    from ipoa.adapters.rq_queue import TIMERS_QUEUE_NAME, enqueue_timers_ahead

    queue = Queue(TIMERS_QUEUE_NAME, connection=svc.redis())
    return lambda due: enqueue_timers_ahead(queue, due, svc.clock.now())


# How often the scheduler reads the timers about to fall due, and how far ahead it hands them over (with
# their instants: the worker fires each at its instant). A timer created due sooner than READ_SECONDS
# from now is handed over at most READ_SECONDS late; SLA clocks run for minutes. A job holds about
# READ_SECONDS of timers; the margin (PREFETCH - READ) absorbs a late read on a busy machine.
READ_SECONDS = 0.2
PREFETCH_SECONDS = 0.5
READ_LIMIT = 2000


def run(svc, tick: float = 1.0, stop=lambda: False, requeue_after: timedelta = timers.REQUEUE_AFTER,
        nightly: NightlyVerification | None = None, handovers: ShiftHandovers | None = None,
        lost_calls: LostCallCheck | None = None, *,
        prefetch: float = PREFETCH_SECONDS, read_every: float = READ_SECONDS, enqueue=None, sleep=time.sleep,
        monotonic=time.monotonic) -> None:
    """The loop: every read_every, the timers falling due within `prefetch` handed over with their
    instants (service/timers.hand_over_ahead); the nightly verification and the shift hand-overs looked
    at every `tick`. `enqueue`, `sleep` and `monotonic`: the tests' (a fake sleep moving the test
    clock)."""
    enqueue = enqueue or rq_enqueue(svc)
    window = timedelta(seconds=prefetch)
    next_tick = monotonic()
    handed, logged_at = 0, monotonic()
    try:
        while not stop():
            started = monotonic()
            try:
                handed += timers.hand_over_ahead(svc, enqueue, window, READ_LIMIT, requeue_after)
            except Exception:  # noqa: BLE001 - the database or Redis is down: the timers wait in the table
                log.warning("scheduler read failed; retrying", exc_info=True)
            if monotonic() >= next_tick:
                next_tick = monotonic() + tick
                if nightly is not None:
                    try:
                        nightly.poll()
                    except Exception:  # noqa: BLE001 - never let the verification stop the timers
                        log.warning("nightly audit verification check failed; retrying", exc_info=True)
                if handovers is not None:
                    handovers.poll()  # logs its own failures and never raises
                if lost_calls is not None:
                    lost_calls.poll()  # logs its own failures and never raises
            # A line at most every 10 s, however many reads: the table is the timers' record.
            if handed and monotonic() - logged_at >= 10:
                log.info("scheduler handed over %d timer(s)", handed)
                handed, logged_at = 0, monotonic()
            sleep(max(0.0, min(read_every, next_tick - started) - (monotonic() - started)))
    finally:
        if handed:
            log.info("scheduler handed over %d timer(s)", handed)
        if nightly is not None:
            nightly.stop()
        if lost_calls is not None:
            lost_calls.stop()


def main() -> None:
    svc, config = bootstrap.from_environment()
    stop = stop_requested()
    tick = config["SCHEDULER_TICK_SECONDS"]
    requeue = timedelta(seconds=config["TIMER_REQUEUE_SECONDS"])
    prefetch = config["TIMER_PREFETCH_SECONDS"]
    log.info("timer scheduler started (tick %.2fs; timers read every %.2fs and handed over %.2fs ahead, "
             "each fired at its instant)", tick, READ_SECONDS, prefetch)
    run(svc, tick=tick, stop=stop, requeue_after=requeue, nightly=NightlyVerification(svc),
        handovers=ShiftHandovers(svc), lost_calls=LostCallCheck(svc), prefetch=prefetch)


if __name__ == "__main__":
    main()
