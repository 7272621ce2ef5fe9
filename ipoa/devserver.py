"""`make run`: the product on its embedded defaults in one command. Migrates, seeds the example
directory's demo users and calls, starts one embedded Redis, the web app (gunicorn), an RQ worker, the
outbox relay and the SLA timer scheduler, prints the URL and the logins, and stops them all on Ctrl-C."""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from .adapters.redis_conn import connect, embedded_socket
from .adapters.rq_queue import QUEUE_NAME, TIMERS_QUEUE_NAME
from .config import REPO_ROOT
from .demo import DEMO_PASSWORD, DEMO_USERS
from .paths import DEMO_SLA_POLICY


def voice_demo(env: dict[str, str]) -> None:
    """The demo's phone (web/phone_simulator.py): "Simulate an incoming call" on the queue page plays
    Twilio's signed webhooks in-process, with the console Voice gateway only. Without a Twilio account the
    webhooks need a token to check signatures against: one made up for this run, known to nobody else."""
    if env.get("VOICE_BACKEND", "console") == "console":
        env.setdefault("VOICE_SIMULATOR", "1")
        env.setdefault("TWILIO_AUTH_TOKEN", secrets.token_hex(16))


def main() -> int:
    instance = REPO_ROOT / "instance"
    instance.mkdir(exist_ok=True)
    env = dict(os.environ)
    bin_dir = Path(sys.executable).parent
    embedded = "REDIS_URL" not in env
    if embedded:
        # One embedded server for every process: they meet on its unix socket.
        env["REDIS_URL"] = f"unix://{embedded_socket(instance / 'redis.rdb')}"
    port = env.get("PORT", "5000")
    env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    # Short SLA clocks, so an unaccepted urgent referral breaches and escalates within minutes.
    env.setdefault("SLA_POLICY_FILE", str(DEMO_SLA_POLICY))
    # The demo signs supervisors and admins in with a password alone (nobody has an authenticator app set
    # up for `supervisor` or `admin`); MFA_REQUIRED_ROLES=supervisor,admin make run turns it on.
    env.setdefault("MFA_REQUIRED_ROLES", "")
    voice_demo(env)
    flask = [str(bin_dir / "flask"), "--app", "ipoa"]
    subprocess.run(flask + ["init"], env=env, check=True, cwd=REPO_ROOT)
    subprocess.run(flask + ["seed-demo"], env=env, check=True, cwd=REPO_ROOT)
    procs = [
        subprocess.Popen([str(bin_dir / "gunicorn"), "--workers", "2", "--threads", "4", "--bind",
                          f"127.0.0.1:{port}", "ipoa:create_app()"], env=env, cwd=REPO_ROOT),
        # As the Procfile: texts and SLA timers each with a worker of their own (workers/worker.py).
        subprocess.Popen([sys.executable, "-m", "workers.worker", "--queues", QUEUE_NAME], env=env, cwd=REPO_ROOT),
        subprocess.Popen([sys.executable, "-m", "workers.worker", "--queues", TIMERS_QUEUE_NAME], env=env,
                         cwd=REPO_ROOT),
        subprocess.Popen([sys.executable, "-m", "workers.relay"], env=env, cwd=REPO_ROOT),
        subprocess.Popen([sys.executable, "-m", "workers.scheduler"], env=env, cwd=REPO_ROOT),
    ]
    time.sleep(1.5)
    print("\n" + "=" * 64)
    print(f"ipoa is running at http://127.0.0.1:{port}/  (Ctrl-C stops it)")
    print("Embedded defaults: SQLite and Redis in ./instance, console SMS.")
    if env.get("VOICE_SIMULATOR") == "1":
        print("No Twilio: sign in as handler and press 'Simulate an incoming call' on the queue to see a")
        print("phone call ring, queue, be answered and logged.")
    print(f"Demo logins (password for all: {DEMO_PASSWORD}):")
    for username, name, role, centre in DEMO_USERS:
        print(f"  {username:<14} {role:<13} {centre or '':<4} {name}")
    if env["MFA_REQUIRED_ROLES"].strip():
        print(f"Multi-factor sign-in is required for: {env['MFA_REQUIRED_ROLES']}. At their first sign-in they")
        print("set up an authenticator app (a QR code to scan, or a key to type in).")
    else:
        print("Multi-factor sign-in is off in the demo (production requires it of supervisors and admins).")
        print("Anyone may set up an authenticator app from 'Sign-in security'; to require it, run")
        print("  MFA_REQUIRED_ROLES=supervisor,admin make run")
    print("=" * 64 + "\n", flush=True)

    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping and all(p.poll() is None for p in procs):
            time.sleep(0.5)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        if embedded:  # saved to instance/redis.rdb and stopped, not left running after us
            try:
                connect(env["REDIS_URL"]).shutdown(save=True)
            except Exception:  # noqa: BLE001 - it closes the connection as it stops
                pass
    failed = [p for p in procs if p.returncode not in (0, -signal.SIGTERM, None)]
    return 1 if failed and not stopping else 0


if __name__ == "__main__":
    sys.exit(main())
