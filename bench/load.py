"""The HTTP benchmarks' client load (bench/intake.py, bench/voice.py): a phase of requests to one endpoint,
closed loop (each client thread sends its next request as soon as the last is answered) or open loop (request
i at start + i / rate, its latency counted from that instant: no coordinated omission). Each benchmark says
how request i is sent and what a good answer is (`Send`); the loops, the timing and the CPU meter's readings
are here, once."""
from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bench.common import BenchError, CpuMeter

# Sends request i on a keep-alive session; True if it was answered as expected, else False with the reason
# appended to the failures.
Send = Callable[[Any, int, list[str]], bool]


@dataclass
class Phase:
    endpoint: str
    requests: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per component during the phase
    offered: float = 0.0  # requests a second offered (open loop); 0 for a closed-loop phase
    late: list[float] = field(default_factory=list)  # open loop: send start - scheduled instant, seconds

    @property
    def rate(self) -> float:
        """Closed loop: requests over the phase's time. Open loop: the achieved rate, requests over first
        scheduled instant -> last response, plus one interval (1/rate: a phase that keeps up achieves the
        rate offered)."""
        return self.requests / self.seconds


def offered_threads(rate: float) -> int:
    """Client threads enough for answers of up to half a second not to hold up the next send."""
    return max(8, math.ceil(rate * 0.5))


def _session(sessions: dict, slot: int) -> Any:
    import requests

    return sessions.setdefault(slot, requests.Session())


def _completed(endpoint: str, count: int, latencies: list[list[float]], failures: list[str]) -> list[float]:
    """A phase's latencies, its threads' lists joined, once every request was answered (else BenchError)."""
    if failures:
        raise BenchError(failures[0])
    flat = [x for chunk in latencies for x in chunk]
    if len(flat) != count:
        raise BenchError(f"{endpoint}: {len(flat)} of {count} requests completed")
    return flat


def _in_time(endpoint: str, deadline: float, failures: list[str]) -> bool:
    if time.monotonic() > deadline:
        failures.append(f"run time limit reached during the {endpoint} phase")
        return False
    return True


def closed_phase(endpoint: str, count: int, send: Send, concurrency: int, deadline: float, sessions: dict,
                 meter: CpuMeter | None = None) -> Phase:
    """`count` requests from `concurrency` threads, each with its own keep-alive session (kept in `sessions`
    from phase to phase), each sending its next as soon as the last is answered."""
    counter = itertools.count()
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    failures: list[str] = []
    gate = threading.Barrier(concurrency + 1)

    def worker(slot: int) -> None:
        session = _session(sessions, slot)
        mine = latencies[slot]
        gate.wait()
        while not failures:
            i = next(counter)
            if i >= count or not _in_time(endpoint, deadline, failures):
                return
            sent = time.perf_counter()
            if not send(session, i, failures):
                return
            mine.append(time.perf_counter() - sent)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [pool.submit(worker, slot) for slot in range(concurrency)]
        before = meter.snapshot() if meter else {}
        gate.wait()
        t0 = time.perf_counter()
        for f in futures:
            f.result()
        seconds = time.perf_counter() - t0
        after = meter.snapshot() if meter else {}
    return Phase(endpoint, count, seconds, _completed(endpoint, count, latencies, failures),
                 CpuMeter.delta(before, after))


def offered_phase(endpoint: str, count: int, send: Send, rate: float, threads: int, deadline: float,
                  sessions: dict, meter: CpuMeter | None = None) -> Phase:
    """Open loop: `count` requests, request i at start + i / rate, from `threads` threads (a free one takes
    the next request and waits for its instant). Each latency runs from the request's scheduled instant to
    its answer, so a send that starts late (every thread busy, or the client starved of CPU) counts its wait
    too; how late each send started is kept apart (Phase.late)."""
    counter = itertools.count()
    latencies: list[list[float]] = [[] for _ in range(threads)]
    lateness: list[list[float]] = [[] for _ in range(threads)]
    last_response = [0.0] * threads
    failures: list[str] = []
    gate = threading.Barrier(threads + 1)
    start = 0.0  # set before the gate opens; the threads read it after

    def worker(slot: int) -> None:
        session = _session(sessions, slot)
        gate.wait()
        while not failures:
            i = next(counter)
            if i >= count:
                return
            due = start + i / rate
            if (pause := due - time.perf_counter()) > 0:
                time.sleep(pause)
            if not _in_time(endpoint, deadline, failures):
                return
            sent = time.perf_counter()
            if not send(session, i, failures):
                return
            done = time.perf_counter()
            latencies[slot].append(done - due)
            lateness[slot].append(sent - due)
            last_response[slot] = done

    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(worker, slot) for slot in range(threads)]
        before = meter.snapshot() if meter else {}
        start = time.perf_counter() + 0.05  # the threads past the gate before the first instant
        gate.wait()
        for f in futures:
            f.result()
        after = meter.snapshot() if meter else {}
    flat = _completed(endpoint, count, latencies, failures)
    # count intervals of 1/rate, the last one stretched by however late its response came back
    return Phase(endpoint, count, max(last_response) - start + 1 / rate, flat, CpuMeter.delta(before, after),
                 offered=rate, late=[x for chunk in lateness for x in chunk])
