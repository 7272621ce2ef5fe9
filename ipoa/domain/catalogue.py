"""Reads the definitions an administrator edits in workflows/: workflows (*.workflow.yaml), the directory,
the routing table, the SLA policy and the board's targets. Parsing and validation live in the modules that
own each kind of data."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .errors import WorkflowError
from .guards import EFFECTS, GUARDS
from .workflow import WorkflowDefinition, check_family, parse_definition

if TYPE_CHECKING:
    from .directory import Directory
    from .reporting.board import BoardTargets
    from .routing import RoutingTable
    from .sla import SlaPolicy

WORKFLOW_SUFFIX = ".workflow.yaml"


def read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise WorkflowError(f"{path}: not valid YAML: {exc}") from exc


def parse_workflow(data: Any, source: str) -> WorkflowDefinition:
    return parse_definition(data, source, GUARDS, EFFECTS)


def load_workflow_files(folder: Path) -> list[WorkflowDefinition]:
    definitions: list[WorkflowDefinition] = []
    seen: dict[tuple[str, int], str] = {}
    for path in sorted(Path(folder).glob(f"*{WORKFLOW_SUFFIX}")):
        d = parse_workflow(read_yaml(path), str(path))
        if d.key in seen:
            raise WorkflowError(f"{path}: workflow '{d.name}' version {d.version} is also defined in {seen[d.key]}")
        seen[d.key] = str(path)
        definitions.append(d)
    check_family(definitions)
    return definitions


@dataclass
class Catalogue:
    """Everything loaded from workflows/, validated together."""

    workflows: list[WorkflowDefinition]
    directory: Directory
    routing: RoutingTable
    # load_catalogue always sets it; None only for a catalogue built by hand without SLA clocks.
    sla: SlaPolicy | None = None
    # The board view's targets (board.yaml); load_catalogue always sets it, like sla.
    board: BoardTargets | None = None


def load_catalogue(folder: Path | str, sla_file: Path | str | None = None) -> Catalogue:
    from .directory import load_directory
    from .reporting.board import BoardTargetError, load_board_targets
    from .routing import load_routing
    from .sla import SlaPolicyError, check_clock_bindings, load_sla_policy

    folder = Path(folder)
    workflows = load_workflow_files(folder)
    directory = load_directory(read_yaml(folder / "directory.yaml"), source=str(folder / "directory.yaml"))
    routing = load_routing(read_yaml(folder / "routing.yaml"), directory, source=str(folder / "routing.yaml"))
    sla_path = Path(sla_file) if sla_file else folder / "sla.yaml"
    if not sla_path.is_file():
        raise SlaPolicyError(f"{sla_path}: missing: the SLA policy is required")
    sla = load_sla_policy(read_yaml(sla_path), directory, source=str(sla_path))
    check_clock_bindings(sla, workflows, str(sla_path))
    board_path = folder / "board.yaml"
    if not board_path.is_file():
        raise BoardTargetError(f"{board_path}: missing: the board view's targets are required")
    board = load_board_targets(read_yaml(board_path), source=str(board_path))
    return Catalogue(workflows=workflows, directory=directory, routing=routing, sla=sla, board=board)
