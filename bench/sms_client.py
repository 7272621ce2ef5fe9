"""bench/sms.py's baseline: the twilio client's own rate. `python -m bench.sms_client N` sends N texts
with the gateway the worker uses (ipoa/bootstrap.make_gateway from the same environment: TwilioGateway,
TWILIO_API_BASE_URL aimed at bench/sms.py's emulator), one after the other as a worker does, with no
database, no queue and no rate limit; prints one JSON line: the window (first send's start to the last
response), and this process's CPU seconds over the sends."""
from __future__ import annotations

import json
import os
import resource
import sys
import time


def main(argv: list[str]) -> int:
    from ipoa import config
    from ipoa.bootstrap import make_gateway

    n = int(argv[0])
    to = argv[1] if len(argv) > 1 else "+447700900201"
    settings = config.load()
    gateway = make_gateway("twilio", settings["TWILIO"])
    callback = f"{settings['PUBLIC_BASE_URL'].rstrip('/')}/webhooks/twilio/sms/status"
    # a referral text's length (templates/sms/referral_sent): the emulator parses what the worker sends
    body = ("IPOA referral CNH-0000-0000 for DN (urgent), sent 12:00. ACCEPT or DECLINE by reply. "
            "Details: https://ipoa.example/r/abcdefgh")

    def cpu() -> float:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return ru.ru_utime + ru.ru_stime

    gateway.send(to, body + " warm-up", callback)  # the connection and the client's first-use work
    cpu0, t0 = cpu(), time.monotonic()
    for i in range(n):
        gateway.send(to, f"{body} {i}", callback)
    window, used = time.monotonic() - t0, cpu() - cpu0
    print(json.dumps({"texts": n, "window_s": window, "cpu_s": used, "pid": os.getpid()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
