"""`workflows check` checks the board's targets (workflows/board.yaml) with the rest of workflows/, and the
report pages use the targets of the file loaded."""
from __future__ import annotations

import shutil

from ipoa.config import REPO_ROOT
from ipoa.domain.reporting.board import load_board_targets
from tests.conftest import sign_in


def test_workflows_check_names_the_board_file_and_the_target(app, tmp_path):
    folder = tmp_path / "workflows"
    shutil.copytree(REPO_ROOT / "workflows", folder)
    path = folder / "board.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("acceptance_p90: 30m", "acceptance_p90: soon"),
                    encoding="utf-8")
    app.extensions["ipoa"].workflows_dir = folder
    try:
        out = app.test_cli_runner().invoke(args=["workflows", "check"])
    finally:
        app.extensions["ipoa"].workflows_dir = REPO_ROOT / "workflows"
    assert out.exit_code == 1
    assert f"{path}: targets.acceptance_p90: bad duration 'soon'" in out.output


def test_the_board_page_shows_the_loaded_targets(app, client, svc, users, monkeypatch):
    targets = load_board_targets({"targets": {"triage_in_sla": 80, "accepted_in_sla": 85, "acceptance_p90": "45m",
                                              "responded_in_target": 70, "sms_delivered": 99.5}})
    monkeypatch.setattr(svc.catalogue, "board", targets)
    sign_in(client, "supervisor")
    page = client.get("/reports/board?from=2026-11-23&to=2026-11-23").get_data(as_text=True)
    for text in ("≥ 80.0%", "≥ 85.0%", "≤ 45 min", "≥ 70.0%", "≥ 99.5%"):
        assert text in page
    chart = client.get("/reports/?from=2026-11-23&to=2026-11-23").get_data(as_text=True)
    assert "target 85%" in chart
