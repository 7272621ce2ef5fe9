"""What the benchmarks (bench/intake.py, bench/sms.py, bench/timers.py, bench/dashboard.py) share: the
guards on what they may touch (this machine only; their own PostgreSQL database and Redis database),
the one-at-a-time lock, the app's CLI and environment, the processes they start (gunicorn, workers),
the CPU meter and percentiles.

The standard library only at the top level: bench/sms.py imports this module, and an RQ worker imports
bench/sms.py (its `noop` job) without the app's dependencies necessarily at hand. psycopg, redis, rq and
requests are imported inside the functions that need them.

Each script is run as `python bench/X.py`: it puts the repository first on sys.path and imports this
module as `bench.common` (the way the RQ worker finds bench.sms), never as `common`.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, parse_qs, urlencode, urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
LOCK_FILE = Path(tempfile.gettempdir()) / "ipoa-bench.lock"


class BenchError(RuntimeError):
    pass


# ------------------------------------------------------------------------------------------- guards

def local_only(url: str, what: str) -> None:
    parts = urlsplit(url)
    host = parts.hostname
    if host is None and _socket_directory(parts.query):
        return  # a Unix-domain socket (postgresql://user@/db?host=/var/run/postgresql): on this machine
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise BenchError(f"{what} must point at this machine (127.0.0.1), not {host!r}")


def _socket_directory(query: str) -> bool:
    hosts = parse_qs(query).get("host", [])
    return len(hosts) == 1 and hosts[0].startswith("/")


def _socket_query(parts: SplitResult) -> str:
    """The URL's socket directory (?host=/dir) where it names one: the rest of the query is the app's."""
    return urlencode({"host": parse_qs(parts.query)["host"][0]}, safe="/") if _socket_directory(parts.query) else ""


def plain_url(url: str) -> str:
    """The URL for psycopg itself (no SQLAlchemy driver suffix)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme.replace("+psycopg", ""), parts.netloc, parts.path, _socket_query(parts), ""))


def redis_db_number(url: str) -> int:
    return int((urlsplit(url).path or "/0").lstrip("/") or 0)


def _and(items: Iterable[object]) -> str:
    words = [str(x) for x in items]
    return ", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else "".join(words)


class Sandbox:
    """A benchmark's own PostgreSQL database and Redis database (which it drops, recreates and empties)
    and those of the others, the test suite's and PostgreSQL's own, which it must never touch."""

    def __init__(self, database: str, forbidden_databases: Iterable[str], redis_db: int,
                 forbidden_redis_dbs: Iterable[int]):
        self.database = database  # the default name, for messages
        self.forbidden_databases = frozenset(forbidden_databases)
        self.redis_db = redis_db  # the default db, for messages
        self.forbidden_redis_dbs = frozenset(forbidden_redis_dbs)

    def admin_url(self, url: str) -> tuple[str, str]:
        """(the server's `postgres` database, the benchmark's database name); refuses a forbidden name."""
        parts = urlsplit(url)
        name = parts.path.lstrip("/")
        if not name or name in self.forbidden_databases:
            raise BenchError(f"refusing to drop and recreate the database {name!r}: use a database of this "
                             f"benchmark's own (default {self.database})")
        scheme = parts.scheme.replace("+psycopg", "")
        return urlunsplit((scheme, parts.netloc, "/postgres", _socket_query(parts), "")), name

    def recreate_database(self, url: str) -> None:
        import psycopg

        admin, name = self.admin_url(url)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')

    def drop_database(self, url: str) -> None:
        import psycopg

        admin, name = self.admin_url(url)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def check_redis(self, url: str) -> int:
        """The Redis db number; refuses a forbidden one."""
        db = redis_db_number(url)
        if db in self.forbidden_redis_dbs:
            raise BenchError(f"refusing to use Redis database {db} (others use "
                             f"{_and(sorted(self.forbidden_redis_dbs))}); default is {self.redis_db}")
        return db

    def check(self, database_url: str, redis_url: str) -> None:
        """Both URLs on this machine, and the benchmark's own."""
        local_only(database_url, "--database-url")
        local_only(redis_url, "--redis-url")
        self.admin_url(database_url)
        self.check_redis(redis_url)

    def clean_up(self, database_url: str | None = None, redis_url: str | None = None) -> None:
        """After a run, best effort (what fails is said, not raised): empty the Redis database and drop
        the PostgreSQL database, each only if given (i.e. if this run emptied or created it)."""
        try:
            if redis_url is not None:
                self.flush_redis(redis_url)
            if database_url is not None:
                self.drop_database(database_url)
        except Exception as exc:  # noqa: BLE001 - clean-up is best effort; say so
            print(f"clean-up: {type(exc).__name__}: {exc}", file=sys.stderr)

    def flush_redis(self, url: str, say: bool = False) -> None:
        """Empty the Redis database; with `say`, print how many keys it held, if any."""
        import redis

        db = self.check_redis(url)
        r = redis.Redis.from_url(url)
        try:
            if say and (n := r.dbsize()):
                print(f"Redis db {db} held {n} key(s): emptied")
            r.flushdb()
        finally:
            r.close()


def run_lock(wait_seconds: float = 0.0):
    """The benchmarks' shared lock: one at a time on this machine (two would share the CPUs and disturb
    each other's figures). Waits for it up to wait_seconds; with 0, gives up at once."""
    import fcntl

    f = open(LOCK_FILE, "a+")  # noqa: SIM115 - held for the run
    deadline = time.monotonic() + wait_seconds
    said = False
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return f
        except BlockingIOError:
            if wait_seconds <= 0:
                f.close()
                raise BenchError(f"another benchmark holds {f.name}; wait for it to finish") from None
            if time.monotonic() >= deadline:
                f.close()
                raise BenchError(f"another benchmark held {f.name} for {wait_seconds:.0f}s; try later") from None
            if not said:
                print(f"waiting for another benchmark to finish (lock {f.name}) ...", flush=True)
                said = True
            time.sleep(1.0)


def add_sandbox_options(parser, database_url: str, redis_url: str, max_seconds: float) -> None:
    """--database-url, --redis-url, --max-seconds and --lock-wait, in that order (bench/sms.py's and
    bench/timers.py's wording)."""
    parser.add_argument("--database-url", default=database_url,
                        help="dropped and recreated (default: %(default)s)")
    parser.add_argument("--redis-url", default=redis_url, help="emptied before and after (default: %(default)s)")
    parser.add_argument("--max-seconds", type=float, default=max_seconds, help="give up after this long, set-up "
                        "included (default: %(default)s)")
    parser.add_argument("--lock-wait", type=float, default=600, help="wait this long for another benchmark "
                        "to finish (default: %(default)s)")


def release(lock, tmp: Path | None) -> None:
    """The very end of a run: remove its temporary folder (unless None) and release the lock (if taken)."""
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)
    if lock is not None:
        lock.close()


# -------------------------------------------------------------------------------------- the app

def flask(env: dict[str, str], *args: str, input: str | None = None) -> str:
    """Run an operators' command; `input` goes to its standard input (a password: never on argv)."""
    proc = subprocess.run([sys.executable, "-m", "flask", "--app", "ipoa", *args], cwd=REPO, env=env, input=input,
                          capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise BenchError(f"flask {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc.stdout


CLEAN_ENV_DROP = frozenset({"DATABASE_URL", "REDIS_URL", "WORKFLOWS_DIR", "SECRET_KEY", "SMS_BACKEND",
                            "PUBLIC_BASE_URL", "IPOA_BENCH_ENDPOINTS", "RQ_WORKER_CLASS"})


def clean_env(extra: dict[str, str], also_drop: Iterable[str] = ()) -> dict[str, str]:
    """The environment for the app, in this process and its children: no proxy (everything is
    loopback), nothing of the developer's own app configuration (CLEAN_ENV_DROP, also_drop, TWILIO_*)."""
    drop = CLEAN_ENV_DROP | set(also_drop)
    env = {k: v for k, v in os.environ.items()
           if k not in drop and not k.upper().startswith("TWILIO_") and "proxy" not in k.lower()}
    env.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


# ------------------------------------------------------------------------------------- processes

class Process:
    """A subprocess in a session of its own (a worker's RQ scheduler is its child), logging to
    log_dir/<name>.log. check() raises once it has exited; with exit_zero_ok, only on a failure."""

    log_lines = 30  # log_tail's default

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log_dir: Path, *,
                 exit_zero_ok: bool = False, term_wait: float = 15):
        self.name = name
        self.exit_zero_ok = exit_zero_ok
        self.term_wait = term_wait  # seconds from SIGTERM to SIGKILL
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.launched = time.monotonic()
        self.launched_wall = datetime.now(UTC)
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def check(self) -> None:
        if self.proc.poll() is not None and not (self.exit_zero_ok and self.proc.returncode == 0):
            raise BenchError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=max(0.1, timeout))
        except subprocess.TimeoutExpired:
            raise BenchError(f"{self.name} still running after {timeout:.0f}s:\n{self.log_tail()}") from None

    def log_text(self) -> str:
        if not self._log.closed:
            self._log.flush()
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int | None = None) -> str:
        return "\n".join(self.log_text().splitlines()[-(lines or self.log_lines):])

    def stop(self) -> None:
        if self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, self.term_wait), (signal.SIGKILL, 10)):
                try:
                    os.killpg(self.proc.pid, sig)  # its own process group only
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        else:  # the group may outlive its leader (a worker's scheduler child): end what is left of it
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
        self._log.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Gunicorn(Process):
    """gunicorn serving `ipoa:create_app()` on a free loopback port, logging to log_dir/gunicorn.log."""

    log_lines = 40

    def __init__(self, env: dict[str, str], workers: int, threads: int, log_dir: Path):
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        exe = BIN / "gunicorn"
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "gunicorn"]
        self.cmd = cmd + ["-w", str(workers), "--threads", str(threads), "-b", f"{HOST}:{self.port}",
                          "--log-level", "warning", "--timeout", "60", "--graceful-timeout", "10",
                          "ipoa:create_app()"]
        super().__init__("gunicorn", self.cmd, env, log_dir, term_wait=20)

    def wait_ready(self, timeout: float = 60.0, readyz: bool = False) -> None:
        """Until /healthz answers 200; with readyz, then requires /readyz to say 200 too."""
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"gunicorn exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                healthy = requests.get(self.url + "/healthz", timeout=5).status_code == 200
            except requests.RequestException:  # not listening yet, or workers still importing the app
                healthy = False
            if healthy:
                if readyz:
                    ready = requests.get(self.url + "/readyz", timeout=30)
                    if ready.status_code != 200:
                        raise BenchError(f"/readyz says {ready.status_code}: {ready.text}")
                return
            time.sleep(0.2)
        raise BenchError(f"gunicorn not ready after {timeout:.0f}s:\n{self.log_tail()}")


def wait_for_worker(conn, worker: Process, deadline: float) -> None:
    """Until an RQ worker has registered with Redis (conn) and waits for work."""
    from rq import Worker

    while True:
        worker.check()
        if any(w.get_state() == "idle" for w in Worker.all(connection=conn)):
            return
        if time.monotonic() > deadline:
            raise BenchError(f"the worker did not start:\n{worker.log_tail()}")
        time.sleep(0.05)


# ------------------------------------------------------------------------------------------- cpu

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def proc_stat(pid: int) -> tuple[str, int, int, float] | None:
    """(comm, ppid, process group, user+system CPU seconds) of a process, from /proc; None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1:raw.rindex(")")]
    f = raw[raw.rindex(")") + 2:].split()
    return comm, int(f[1]), int(f[2]), (int(f[11]) + int(f[12])) / CLK_TCK


class CpuMeter:
    """CPU seconds used, per component, in this order:
      - each of `trees` (name -> pid: that process, its children, theirs ...),
      - each of `groups` (name -> process group id),
      - postgres: every postgres process (other sessions on the same server count too); postgres=False
        leaves it out,
      - redis: every redis-server, or with redis_port only those listening on that port; redis=False
        leaves it out,
      - this process, as `own`,
      - other: the rest of the machine's busy time, i.e. whatever else was running; the CPU of processes
        that exit during a measurement counts as other.
    Linux /proc only; elsewhere a snapshot is empty."""

    def __init__(self, groups: dict[str, int] | None = None, *, trees: dict[str, int] | None = None,
                 postgres: bool = True, redis: bool = True, redis_port: str | None = None, own: str = "bench"):
        self.trees = dict(trees or {})
        self.groups = dict(groups or {})  # component -> process group id
        self.postgres, self.redis, self.redis_port, self.own = postgres, redis, redis_port, own
        self.components = ([*self.trees, *self.groups] + (["postgres"] if postgres else [])
                           + (["redis"] if redis else []) + [own])
        self.available = Path("/proc/self/stat").exists()

    def _counts_as_redis(self, pid: int) -> bool:
        if self.redis_port is None:
            return True
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            return False
        return f":{self.redis_port}" in cmdline or f"--port {self.redis_port}" in cmdline

    def snapshot(self) -> dict[str, float]:
        if not self.available:
            return {}
        procs: dict[int, tuple[str, int, int, float]] = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit() and (st := proc_stat(int(entry.name))) is not None:
                procs[int(entry.name)] = st
        by_pid: dict[int, str] = {}
        for name, root in self.trees.items():
            tree = {root}
            grew = True
            while grew:
                new = {pid for pid, st in procs.items() if st[1] in tree and pid not in tree}
                tree |= new
                grew = bool(new)
            by_pid.update(dict.fromkeys(tree, name))
        by_group = {pgid: name for name, pgid in self.groups.items()}
        out = dict.fromkeys(self.components, 0.0)
        for pid, (comm, _, pgid, cpu) in procs.items():
            if pid in by_pid:
                out[by_pid[pid]] += cpu
            elif pgid in by_group:
                out[by_group[pgid]] += cpu
            elif self.postgres and comm.startswith("postgres"):
                out["postgres"] += cpu
            elif self.redis and comm.startswith("redis-server") and self._counts_as_redis(pid):
                out["redis"] += cpu
        t = os.times()
        out[self.own] = t.user + t.system
        try:
            ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
            busy = (sum(ticks[:8]) - ticks[3] - ticks[4]) / CLK_TCK  # all but idle and iowait
            out["other"] = busy - sum(out.values())  # everything else on the machine (other users' work)
        except (OSError, ValueError, IndexError):
            pass
        return out

    @staticmethod
    def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        return {k: after[k] - before.get(k, 0.0) for k in after}


# ------------------------------------------------------------------------------------------ figures

def percentile(values: list[float], p: float, interpolate: bool = False) -> float:
    """The p-th percentile (p from 0 to 100): nearest-rank, or with interpolate, linear between the two
    closest ranks. NaN for no values."""
    s = sorted(values)
    if not s:
        return float("nan")
    if interpolate:
        k = (len(s) - 1) * (p / 100)
        lo = int(k)
        hi = min(lo + 1, len(s) - 1)
        return s[lo] + (s[hi] - s[lo]) * (k - lo)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


def call_body(need: str, summary: str, nhs_number: str = "9990000026") -> dict:
    """The test suite's valid intake body (tests/conftest.py call_payload): an invented person with an
    NHS number from the never-issued 999 range."""
    return {
        "centre": "CNH",
        "caller": {"type": "carer", "name": "Jo Carer", "phone": "07911 123456"},
        "subject": {"nhs_number": nhs_number, "given_name": "Edith", "family_name": "Testperson",
                    "date_of_birth": "1938-04-02", "postcode": "LE11 3AB"},
        "need": need,
        "urgency": "urgent",
        "summary": summary,
        "consent": "given",
    }


def profile_app_in_process(env: dict[str, str], names: tuple[str, ...], send: Callable[[Any, Any], None],
                           items: list[Any], top: int, warm: int = 20) -> str:
    """Run `send(client, item)` for each item through the Flask test client under cProfile (one thread, no
    HTTP) against the benchmark's own database and Redis (the `names` of `env` set in this process), after
    `warm` unprofiled items (connections, the engine, imports); the top of the cumulative and own-time
    listings. `send` raises BenchError on an unexpected answer."""
    import cProfile
    import io
    import pstats

    os.environ.update({k: env[k] for k in names})
    from ipoa import create_app

    app = create_app()
    client = app.test_client()
    for item in items[:warm]:
        send(client, item)
    prof = cProfile.Profile()
    prof.enable()
    for item in items[warm:]:
        send(client, item)
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    app.extensions["ipoa"].close()
    return out.getvalue()
