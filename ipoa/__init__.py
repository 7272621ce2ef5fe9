"""ipoa: call intake, triage and routing for Integrated Points of Access."""
from __future__ import annotations

from typing import Any

from flask import Flask

from . import config as config_module
from . import paths

__version__ = "0.1.0"


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    # The instance folder Flask would choose itself, found by config (the workers find it without an app).
    app = Flask(__name__, instance_path=str(config_module.instance_path()), instance_relative_config=True,
                template_folder=str(paths.TEMPLATES), static_folder=str(paths.STATIC))
    app.config.from_mapping(config_module.from_environment(app.instance_path))
    if test_config:
        app.config.update(test_config)

    # The wiring, as the workers have it (ipoa/bootstrap.py): logging, then the services from the config.
    from .bootstrap import build_services, configure_logging

    configure_logging(app.config.get("LOG_LEVEL", "INFO"))
    services = app.config.get("SERVICES") or build_services(app.config)
    app.extensions["ipoa"] = services

    from .api import v1
    from .web import (
        access,
        admin,
        auth,
        converters,
        dashboard,
        governance,
        health,
        live_pages,
        reports,
        views,
        webhooks,
        workflow_pages,
    )

    converters.init_app(app)  # before the blueprints: their <int:...> ids bounded
    access.init_app(app)
    from .web import headers, input_limits
    input_limits.init_app(app)  # body, depth and parameter limits
    headers.init_app(app)  # security headers
    app.register_blueprint(health.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(views.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(live_pages.bp)
    app.register_blueprint(governance.bp)
    app.register_blueprint(reports.bp)
    app.register_blueprint(workflow_pages.bp)
    from .web import rota_pages
    app.register_blueprint(rota_pages.bp)
    app.register_blueprint(admin.bp)
    from .web import professionals_admin
    app.register_blueprint(professionals_admin.bp)
    app.register_blueprint(v1.bp)
    # Token-authenticated (api/tokens.py): no ambient cookie credentials to forge, so no CSRF token.
    access.csrf.exempt(v1.bp)
    app.register_blueprint(webhooks.bp)
    from .web import voice_webhooks
    app.register_blueprint(voice_webhooks.bp)
    from .web import phone_pages, phone_simulator
    app.register_blueprint(phone_pages.bp)
    app.register_blueprint(phone_simulator.bp)
    if app.config.get("BENCH_ENDPOINTS"):
        from .api import bench
        app.register_blueprint(bench.bp)
        access.csrf.exempt(bench.bp)
        from .web import bench_voice
        app.register_blueprint(bench_voice.bp)  # signed like a Twilio webhook, not token-checked

    from . import cli
    cli.register(app)
    return app
