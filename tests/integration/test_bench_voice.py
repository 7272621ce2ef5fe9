"""bench/voice.py runs end to end on tiny numbers: on SQLite in a temporary folder with an embedded Redis
(nothing shared is touched), gunicorn on a loopback port, signed incoming calls and the bare TwiML baseline.
No time is asserted: the benchmark's figures are for people to read (docs/performance.md)."""
from __future__ import annotations

import json
import re

import pytest

from bench import voice

FIGURE = r"[0-9.]+"


# The benchmarks' lock may be held by another benchmark for minutes (bench/common.py run_lock): this test waits
# for it up to --lock-wait, beyond the suite's default timeout.
@pytest.mark.timeout(900)
def test_the_voice_benchmark_runs_on_sqlite(tmp_path, capsys):
    figures = tmp_path / "voice.json"

    code = voice.main(["--sqlite", "--offered-rate", "10", "--offered-seconds", "0.5", "--requests", "10",
                       "--rounds", "2", "--closed-rounds", "4", "--warmup", "4", "--concurrency", "2",
                       "--workers", "2", "--threads", "2", "--lock-wait", "600", "--json", str(figures)])

    out = capsys.readouterr().out
    assert code == 0, out
    for endpoint in ("bare", "incoming"):
        assert len(re.findall(rf"^  10/s round [12] {endpoint} +achieved +{FIGURE}/s", out, re.M)) == 2, out
        assert len(re.findall(rf"^  closed round [1-4] {endpoint} +{FIGURE} calls/s", out, re.M)) == 4, out
        assert re.search(rf"^{endpoint} +10 +{FIGURE} +{FIGURE} +{FIGURE} +{FIGURE} +{FIGURE} +(yes|NO) ", out,
                         re.M), out
        assert re.search(rf"^{endpoint} +40 +{FIGURE} +{FIGURE} +{FIGURE} +{FIGURE} ", out, re.M), out
    # The write baseline: the closed loop's only (not in the open loop's table)
    assert len(re.findall(rf"^  closed round [1-4] write +{FIGURE} calls/s", out, re.M)) == 4, out
    assert re.search(rf"^write +40 +{FIGURE} +{FIGURE} +{FIGURE} +{FIGURE} ", out, re.M), out
    assert not re.search(r"^  10/s round [12] write", out, re.M), out
    assert re.search(rf"^incoming p99 at 10/s: {FIGURE} ms  goal < 50 ms at a sustained rate: (met|NOT met)$", out,
                     re.M), out
    assert re.search(rf"^ratio incoming/bare \(calls/s, closed loop\): {FIGURE}  goal >= 0.7: (met|NOT met)$", out,
                     re.M), out
    assert re.search(rf"^each round's ratio: {FIGURE}, {FIGURE}, {FIGURE}, {FIGURE} \(median {FIGURE}\)$", out,
                     re.M), out
    assert re.search(rf"^the middle half of the rounds' ratios: {FIGURE}-{FIGURE} ", out, re.M), out
    assert re.search(rf"^the write baseline \(the bare answer once one row is committed, as the incoming call "
                     rf"commits its leg\): {FIGURE} of bare's rate \(rounds' median {FIGURE}\), the most an answer "
                     rf"that commits a row before it answers reached in this run; the incoming call reached {FIGURE} "
                     rf"of its rate$", out, re.M), out
    # The closed loop's two connections, one to each worker (bench/voice.py spread_connections)
    assert "(the closed loop's 2 connections spread over the workers 1/1)" in out, out
    # One leg per incoming call: warm-up 4, open loop 2 x 5, closed loop 4 x 10.
    assert "phone legs written: 54, one per incoming call; the write baseline's rows: 44, one per request" in out
    result = json.loads(figures.read_text())
    assert [s["endpoint"] for s in result["open_loop"]] == ["bare", "incoming"]
    assert [s["endpoint"] for s in result["closed_loop"]] == ["bare", "incoming", "write"]
    assert result["write_ratio"] > 0 and len(result["write_round_ratios"]) == 4
    assert result["closed_loop"][1]["requests"] == 40 and result["ratio"] > 0
    assert result["rounds"] == 2 and result["closed_rounds"] == 4
    assert len(result["round_ratios"]) == 4 and all(r > 0 for r in result["round_ratios"])


def test_each_rounds_ratio_pairs_the_two_phases_it_ran(svc):
    def phase(endpoint: str, rate: float, offered: float = 0) -> voice.Phase:
        return voice.Phase(endpoint, 100, 100 / rate, [0.001] * 100, {}, offered=offered)

    phases = [phase("bare", 20, offered=20), phase("incoming", 20, offered=20),  # the open loop's: not rates
              phase("bare", 1000), phase("incoming", 800), phase("incoming", 600), phase("bare", 1200)]
    assert voice.round_ratios(phases) == pytest.approx([0.8, 0.5])


def test_each_rounds_ratios_take_the_three_phases_it_ran(svc):
    """With the write baseline a round is three phases, the next round's in the opposite order."""
    def phase(endpoint: str, rate: float) -> voice.Phase:
        return voice.Phase(endpoint, 100, 100 / rate, [0.001] * 100, {})

    phases = [phase("bare", 1000), phase("incoming", 800), phase("write", 900),
              phase("write", 500), phase("incoming", 600), phase("bare", 1200)]
    assert voice.round_ratios(phases) == pytest.approx([0.8, 0.5])
    assert voice.round_ratios(phases, "write") == pytest.approx([0.9, 500 / 1200])


def test_the_round_trip_probe_times_a_round_trip_to_postgresql(svc):
    if svc.db.dialect.name != "postgresql":
        pytest.skip("the probe is PostgreSQL's (set TEST_DATABASE_URL)")
    probe = voice.round_trip_probe(svc.db.url.render_as_string(hide_password=False), count=300)
    assert probe["client_us"] > 0 and probe["wall_us"] > 0 and probe["postgres_us"] >= 0, probe
    assert "a round trip to PostgreSQL (SELECT 1):" in voice.describe_probe(probe)


def test_the_bare_endpoint_checks_the_signature_like_the_incoming_one(svc, monkeypatch):
    """Registered only with IPOA_BENCH_ENDPOINTS; unsigned, it is refused like any Twilio webhook."""
    from twilio.request_validator import RequestValidator

    from ipoa import create_app

    app = create_app({"TESTING": True, "SERVICES": svc, "SECRET_KEY": "test-secret", "BENCH_ENDPOINTS": True})
    client = app.test_client()
    monkeypatch.setattr(svc, "twilio", {**svc.twilio, "auth_token": "bench-token"})
    params = {"CallSid": "CA" + "0" * 32, "From": "+447700900123", "To": "+441632960101"}
    url = svc.public_base_url.rstrip("/") + voice.BARE_PATH
    assert client.post(voice.BARE_PATH, data=params).status_code == 403
    signed = client.post(voice.BARE_PATH, data=params,
                         headers={"X-Twilio-Signature": RequestValidator("bench-token").compute_signature(url, params)})
    assert signed.status_code == 200 and signed.mimetype == "text/xml"
    assert signed.get_data(as_text=True).endswith('<Response><Say language="en-GB">Thank you for calling.</Say>'
                                                  '</Response>')
    plain = create_app({"TESTING": True, "SERVICES": svc, "SECRET_KEY": "test-secret", "BENCH_ENDPOINTS": False})
    assert plain.test_client().post(voice.BARE_PATH, data=params).status_code == 404


def test_the_write_baseline_commits_one_row_before_it_answers(svc, monkeypatch):
    """Signed like the others; each answer comes once its row is committed (read back on another connection),
    and an unsigned request writes nothing."""
    from sqlalchemy import func, select
    from twilio.request_validator import RequestValidator

    from ipoa import create_app
    from ipoa.adapters.orm import bench_pings

    def rows() -> int:
        with svc.db.connect() as conn:
            return conn.execute(select(func.count()).select_from(bench_pings)
                                .where(bench_pings.c.note == "voice")).scalar_one()

    app = create_app({"TESTING": True, "SERVICES": svc, "SECRET_KEY": "test-secret", "BENCH_ENDPOINTS": True})
    client = app.test_client()
    monkeypatch.setattr(svc, "twilio", {**svc.twilio, "auth_token": "bench-token"})
    params = {"CallSid": "CA" + "1" * 32, "From": "+447700900123", "To": "+441632960101"}
    url = svc.public_base_url.rstrip("/") + voice.WRITE_PATH
    before = rows()
    assert client.post(voice.WRITE_PATH, data=params).status_code == 403
    assert rows() == before
    signature = RequestValidator("bench-token").compute_signature(url, params)
    for n in (1, 2):
        answer = client.post(voice.WRITE_PATH, data=params, headers={"X-Twilio-Signature": signature})
        assert answer.status_code == 200 and answer.mimetype == "text/xml"
        assert answer.get_data(as_text=True).endswith('<Response><Say language="en-GB">Thank you for calling.</Say>'
                                                      '</Response>')
        assert rows() == before + n


def test_the_spreading_starts_again_when_a_worker_closed_an_idle_connection(monkeypatch):
    """A connection a worker dropped while the others were being spread (its keep-alive ran out) is not left
    out of the closed loop: the spreading starts again, until every connection is held and spread."""
    import requests

    workers = {101: 0.0, 102: 0.0}
    held: dict[object, int] = {}  # session -> the worker holding its connection
    turn = iter(range(10_000))
    final_checks = []

    class Session:
        def close(self) -> None:
            held.pop(self, None)

    def post(session, *_args) -> bool:
        held.setdefault(session, 101 + next(turn) % 2)  # the kernel's choice: the two workers in turn
        return True

    def connections(_master: int, _port: int) -> dict[int, int]:
        counts = {pid: sum(1 for w in held.values() if w == pid) for pid in workers}
        if sum(counts.values()) == 4:
            final_checks.append(dict(counts))
            if len(final_checks) == 1:  # the first time all four are in, one idle connection is dropped
                held.pop(next(iter(held)))
                counts = {pid: sum(1 for w in held.values() if w == pid) for pid in workers}
        return counts

    monkeypatch.setattr(requests, "Session", Session)
    monkeypatch.setattr(voice, "post", post)
    monkeypatch.setattr(voice, "workers_cpu", lambda _master: workers)
    monkeypatch.setattr(voice, "connections_by_worker", connections)
    server = type("Server", (), {"pid": 1, "url": "http://127.0.0.1:5999"})()
    calls = type("Calls", (), {"take": lambda self, endpoint, n: [(b"", "")] * n})()
    sessions: dict = {}

    split = voice.spread_connections(server, calls, 4, sessions, deadline=float("inf"))

    assert split == "2/2"
    assert len(final_checks) >= 2  # it started again after the drop
    assert len(sessions) == 4 and all(s in held for s in sessions.values())
