"""The outbox relay: `python -m workers.relay`. Handles committed outbox events (recording the texts they
cause), queues send jobs for the texts (those that come while a job waits go together in the next),
hands over again every second the texts due again (back-off over, job lost, worker dead:
ipoa/service/sms.py), and sweeps up events left behind. A separate process so the web request only
appends ids to a Redis list."""
from __future__ import annotations

import gc
import logging

from ipoa import bootstrap
from ipoa.service.outbox import run_relay
from workers.lifecycle import stop_requested


def main() -> None:
    # ESCALATION_REPEAT_MINUTES / ESCALATION_DIGEST_SECONDS are read with the configuration: a bad value
    # stops the start, not every batch that escalates.
    svc, _ = bootstrap.from_environment()
    stop = stop_requested()
    logging.getLogger(__name__).info("outbox relay started (escalation digest window %ss)",
                                     int(svc.escalation_settings.digest_window.total_seconds()))
    gc.freeze()  # start-up's objects live as long as the process: out of the collector's way (workers/worker.py)
    run_relay(svc, stop=stop)


if __name__ == "__main__":
    main()
