"""Deploying workflows/ (what `flask --app ipoa init` does after migrating): new workflow versions into
the database, and a record in the security log of each version deployed and of each change of the
directory, routing table or SLA policy in use, in the same transaction as the deploy."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from ..adapters import workflow_store
from ..domain.catalogue import Catalogue
from . import security

if TYPE_CHECKING:
    from ..bootstrap import Services


def deploy(svc: Services, actor: str, catalogue: Catalogue) -> list[str]:
    """Deploy the catalogue's new workflow versions and record what changed; a line for each."""
    now = svc.clock.now()
    config = config_checksums(svc)
    with svc.uow() as uow:
        lines = []
        for d, meaning_only in uow.workflows.deploy_new(catalogue.workflows, now):
            detail = {"name": d.name, "version": d.version, "checksum": d.checksum}
            if meaning_only:  # the same version's tags and roles, corrected in place (domain/meaning.py)
                detail.update(meaning_only=True, meaning_checksum=d.meaning_checksum)
            security.record(uow, now, security.WORKFLOW_DEPLOYED, actor, subject=f"{d.name} v{d.version}",
                            detail=detail)
            lines.append(workflow_store.describe_deploy(workflow_store.Deployed(d, meaning_only)))
        last = security.latest(uow, security.CONFIG_DEPLOYED)
        # Only a change is recorded: running init again on the same files adds nothing to the log.
        if last is None or last.detail != config:
            security.record(uow, now, security.CONFIG_DEPLOYED, actor, detail=config)
            lines.append("configuration recorded in the security log: directory, routing table and SLA policy "
                         + ("(first record)" if last is None else "(changed since the last record)"))
        uow.commit()
    return lines


def config_checksums(svc: Services) -> dict[str, str]:
    """SHA-256 of the directory, the routing table, the board's targets and the SLA policy file in use
    (the files bootstrap.Services.load_catalogue reads), and which SLA file that is."""
    folder = Path(svc.workflows_dir)
    sla = Path(svc.sla_file) if svc.sla_file else folder / "sla.yaml"
    return {
        "directory_sha256": _sha256(folder / "directory.yaml"),
        "routing_sha256": _sha256(folder / "routing.yaml"),
        "board_sha256": _sha256(folder / "board.yaml"),
        "sla_sha256": _sha256(sla),
        "sla_file": _relative(sla, folder),
    }


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _relative(path: Path, folder: Path) -> str:
    # Relative to workflows/ where it can be: the same deploy on another host records the same name.
    try:
        return path.resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        return str(path)
