"""bench/sms.py's offered load, in a process of its own: `python -m bench.sms_offered` reads {"rate": R,
"refs": [...]} (calls logged and triaged) as JSON on stdin and refers each call to DN at its time, i + 1/R
seconds after the start, from 4 threads (one commits ~30 a second on a busy machine, less than the rate
offered); prints one JSON line: each call's commit (time.monotonic, the machine's clock that the
emulator's receipt times use too, and the UTC wall time) and the start.

Why not in bench/sms.py's own process: the Twilio emulator answers the worker there, and committing
threads holding that interpreter's lock held up its answers, which measured the benchmark's committing
as the worker's sending (docs/performance.md, SMS)."""
from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    from bench.sms import App

    order = json.loads(sys.stdin.read())
    rate, refs = float(order["rate"]), list(order["refs"])
    app = App(dict(os.environ))
    committed: dict[str, tuple[float, str]] = {}

    def refer(ref: str) -> None:
        app.refer(ref)
        committed[ref] = (time.monotonic(), datetime.now(UTC).isoformat())  # the commit has returned

    try:
        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = []
            for i, ref in enumerate(refs):
                pause = start + i / rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                futures.append(pool.submit(refer, ref))
            for f in futures:
                f.result()
    finally:
        app.close()
    print(json.dumps({"start": start, "committed": committed}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
