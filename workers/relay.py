"""The outbox relay: `python -m workers.relay`. Handles committed outbox events (recording the texts they
cause), queues a send job per text, and sweeps up anything left behind. A separate process so the web
request only appends ids to a Redis list."""
from __future__ import annotations

import logging

from ipoa import create_app
from ipoa.service.outbox import run_relay
from workers.lifecycle import stop_requested


def main() -> None:
    app = create_app()
    svc = app.extensions["ipoa"]
    stop = stop_requested()
    logging.getLogger(__name__).info("outbox relay started")
    with app.app_context():
        run_relay(svc, stop=stop)


if __name__ == "__main__":
    main()
