"""The operators' CLI, whose command names automation relies on."""
from __future__ import annotations

import shutil

from ipoa.config import REPO_ROOT


def run(app, *args):
    return app.test_cli_runner().invoke(args=list(args), catch_exceptions=False)


def test_init_is_idempotent(app):
    first = run(app, "init")
    second = run(app, "init")
    assert first.exit_code == 0 and second.exit_code == 0
    assert "7 centres, 12 services, 11 localities" in second.output
    assert "deployed" not in second.output  # nothing new to deploy the second time


def test_users_create_and_token_authenticate_the_api(app, svc):
    out = run(app, "users", "create", "nurse.jo", "--role", "handler", "--centre", "CHS", "--password", "long-enough-pw")
    assert out.exit_code == 0, out.output
    again = app.test_cli_runner().invoke(args=["users", "create", "nurse.jo", "--role", "handler",
                                               "--centre", "CHS", "--password", "long-enough-pw"])
    assert again.exit_code != 0 and "already exists" in again.output
    token = run(app, "users", "token", "nurse.jo").output.strip().splitlines()[-1]
    resp = app.test_client().get("/api/v1/queues", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200


def test_users_create_rejects_bad_input(app):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["users", "create", "x", "--role", "handler", "--centre", "NOPE",
                               "--password", "long-enough-pw"]).exit_code != 0
    assert runner.invoke(args=["users", "create", "x", "--role", "handler", "--password", "long-enough-pw"]).exit_code != 0
    assert runner.invoke(args=["users", "create", "x", "--role", "wizard", "--centre", "CNH",
                               "--password", "long-enough-pw"]).exit_code != 0


def test_seed_demo_adds_users_for_every_role_and_calls_once(app, svc):
    out = run(app, "seed-demo")
    assert out.exit_code == 0
    for role in ("handler", "supervisor", "professional", "admin"):
        assert f"({role}" in out.output
    assert out.output.count("demo call ") == 5
    again = run(app, "seed-demo")
    assert "demo calls already present (5)" in again.output


def test_workflows_check_and_diagram(app):
    out = run(app, "workflows", "check")
    assert out.exit_code == 0 and "call v1" in out.output and "referral v1" in out.output
    diagram = run(app, "workflows", "diagram", "call").output
    assert diagram.startswith("stateDiagram-v2")
    assert "in_triage --> referred : refer" in diagram


def test_workflows_check_names_the_file_and_the_problem(app, tmp_path):
    folder = tmp_path / "workflows"
    shutil.copytree(REPO_ROOT / "workflows", folder)
    path = folder / "call.workflow.yaml"
    path.write_text(path.read_text().replace("dest: closed\n", "dest: shut\n", 1))
    app.extensions["ipoa"].workflows_dir = folder
    try:
        out = app.test_cli_runner().invoke(args=["workflows", "check"])
    finally:
        app.extensions["ipoa"].workflows_dir = REPO_ROOT / "workflows"
    assert out.exit_code == 1
    assert "call.workflow.yaml" in out.output and "unknown destination state 'shut'" in out.output
