"""What the long-running processes share: stopping cleanly on SIGTERM (the process manager) or Ctrl-C."""
from __future__ import annotations

import signal
from collections.abc import Callable


def stop_requested() -> Callable[[], bool]:
    """Install the handlers; the returned function says whether a stop was asked for."""
    stopping: list[bool] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.append(True))
    return lambda: bool(stopping)
