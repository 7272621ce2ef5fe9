"""ipoa: call intake, triage and routing for Integrated Points of Access."""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from . import config as config_module
from . import log_redaction
from . import paths

__version__ = "0.1.0"


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True,
                template_folder=str(paths.TEMPLATES), static_folder=str(paths.STATIC))
    app.config.from_mapping(config_module.from_environment(app.instance_path))
    if test_config:
        app.config.update(test_config)
    logging.basicConfig(level=app.config.get("LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    log_redaction.install()
    for noisy in ("transitions", "alembic"):  # per-transition and per-plugin chatter
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Twilio's client logs each request at INFO: nine lines of URL and headers, and a lookup's query
    # (a professional's mobile number). Costly per text, and not for our logs.
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)

    from .bootstrap import Services

    services = app.config.get("SERVICES") or Services(
        database_url=app.config["DATABASE_URL"], redis_url=app.config["REDIS_URL"],
        workflows_dir=app.config["WORKFLOWS_DIR"], public_base_url=app.config["PUBLIC_BASE_URL"],
        sms_backend=app.config["SMS_BACKEND"], twilio=app.config["TWILIO"],
        sla_file=app.config["SLA_POLICY_FILE"])
    app.extensions["ipoa"] = services

    from .web import access, admin, auth, dashboard, governance, health, reports, views, webhooks, workflow_pages
    from .api import v1

    access.init_app(app)
    from .web import headers, input_limits
    input_limits.init_app(app); headers.init_app(app)  # body, depth and parameter limits; security headers
    app.register_blueprint(health.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(views.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(governance.bp)
    app.register_blueprint(reports.bp)
    app.register_blueprint(workflow_pages.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(v1.bp)
    # Token-authenticated (api/tokens.py): no ambient cookie credentials to forge, so no CSRF token.
    access.csrf.exempt(v1.bp)
    app.register_blueprint(webhooks.bp)
    if app.config.get("BENCH_ENDPOINTS"):
        from .api import bench
        app.register_blueprint(bench.bp)
        access.csrf.exempt(bench.bp)

    from . import cli
    cli.register(app)
    return app
