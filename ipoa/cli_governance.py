"""Operators' information-governance commands: `flask --app ipoa audit verify`, `retention run` and
`access report REF`. See docs/audit-and-retention.md."""
from __future__ import annotations

import getpass
import signal
import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup


def _svc():
    return current_app.extensions["ipoa"]


def os_user() -> str:
    """The operator at the command line, as the records name them: "cli:<os user>"."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no login name (a container without /etc/passwd entry)
        return "cli:unknown"


def register(app: Flask) -> None:
    app.cli.add_command(audit)
    app.cli.add_command(retention)
    app.cli.add_command(access)


# -- audit ----------------------------------------------------------------------------------------

@click.group(cls=AppGroup)
def audit() -> None:
    """The tamper-evident audit trail."""


@audit.command("verify")
@click.option("--by", default=None, help='Who asked, as recorded (default "cli:<os user>"; the nightly run '
                                         'passes "scheduler")')
def audit_verify(by: str | None) -> None:
    """Walk the audit, access and security chains and report the first broken link of each. Exit status
    0: every chain intact; 1: a chain is broken (changed, deleted, inserted or reordered events); 2: the
    verification could not finish (the database could not be read); 130 or 143: stopped."""
    from .service import audit as audit_service

    # A stop (the scheduler stopping, Ctrl-C) is recorded as "could not finish", not left as running.
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        result = audit_service.verify_all(_svc(), by or os_user())
    except KeyboardInterrupt:
        click.echo("verification stopped; nothing was concluded", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - not a verdict on the trail: exit 2, never 1 (broken)
        click.echo(f"the verification could not finish ({type(exc).__name__}); nothing was concluded about "
                   "the audit trail", err=True)
        sys.exit(2)
    finally:
        signal.signal(signal.SIGTERM, previous)
    for c in result.chains:
        if c.problem is None:  # c.ok
            head = f"head {c.head.seq} {c.head.hash[:16]}" if c.head is not None else "no head yet"
            click.echo(f"{c.chain}: {c.events} event(s) checked, OK ({head})")
        else:
            where = f"event {c.problem.seq}" if c.problem.seq is not None else "the head"
            click.echo(f"{c.chain}: BROKEN at {where}: {c.problem.problem} ({c.events} event(s) checked)")
    if result.shrunk is not None:
        click.echo(f"all chains: BROKEN: {result.shrunk}")
    if result.ok:
        click.echo(f"audit trail intact: {result.events} event(s) in {len(result.chains)} chains "
                   f"(verification {result.id})")
        return
    click.echo(f"audit trail BROKEN: see above (verification {result.id}). The break shows on the "
               "supervisors' exceptions panel; docs/audit-and-retention.md says what to do.", err=True)
    sys.exit(1)


# -- retention ------------------------------------------------------------------------------------

@click.group(cls=AppGroup)
def retention() -> None:
    """Records management: pseudonymise calls past the retention period."""


@retention.command("run")
@click.option("--years", type=click.IntRange(min=1), default=None,
              help="Retention period after the last contact (default RETENTION_YEARS, 8)")
@click.option("--dry-run", is_flag=True, help="List the calls that would be pseudonymised; change nothing")
@click.option("--batch", type=click.IntRange(min=1, max=5000), default=200, show_default=True,
              help="Calls per transaction")
def retention_run(years: int | None, dry_run: bool, batch: int) -> None:
    """Pseudonymise closed calls whose last contact is more than the retention period ago: identifiers
    removed, codes and timings kept for reports, each call audited. Nothing is deleted; calls already
    pseudonymised are skipped."""
    from .service import retention as retention_service

    svc = _svc()
    years = years or current_app.config.get("RETENTION_YEARS") or retention_service.DEFAULT_YEARS
    result = retention_service.run(
        svc, years, dry_run=dry_run, by=os_user(), batch=batch,
        progress=lambda n: click.echo(f"... {n} call(s) pseudonymised so far"))
    since = result.cutoff.date().isoformat()
    if dry_run:
        click.echo(f"dry run: {result.count} closed call(s) last in contact before {since} (retention "
                   f"{years} years) would be pseudonymised; nothing was changed")
        for ref in result.refs:
            click.echo(ref)
    else:
        click.echo(f"pseudonymised {result.count} closed call(s) last in contact before {since} "
                   f"(retention {years} years)")


# -- access ---------------------------------------------------------------------------------------

@click.group(cls=AppGroup)
def access() -> None:
    """Who has seen a record."""


@access.command("report")
@click.argument("ref")
def access_report(ref: str) -> None:
    """Print who has viewed call REF, oldest first (for a subject access request): when, who (name and
    username), role, centre, route and why they could."""
    from .domain.model import SecurityEvent
    from .service import records
    from .service.errors import NotFound

    svc = _svc()
    ref = ref.strip().upper()
    try:
        rows = records.access_log(svc, None, ref)
    except NotFound:
        click.echo(f"No call {ref}: check the reference (8 characters, as XXXX-XXXX).", err=True)
        sys.exit(1)
    # Who looked at the access log is itself recorded: it says who has seen whom.
    with svc.uow() as uow:
        uow.add_event(SecurityEvent(at=svc.clock.now(), kind="access_report", actor=os_user(), subject=ref,
                                    detail={"rows": len(rows)}))
        uow.commit()
    if not rows:
        click.echo(f"Call {ref}: nobody has viewed its record.")
        return
    click.echo(f"Call {ref}: viewed {len(rows)} time(s), oldest first (times Europe/London).")
    header = ("When", "Who", "Role", "Centre", "Route", "Why")
    lines = [(_local(r.at), f"{r.display_name or '(no such user now)'} ({r.username})", r.role, r.centre or "-",
              r.route + (f" (referral {r.referral_id[:8]})" if r.referral_id else ""), _why(r.purpose))
             for r in rows]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    for line in (header, *lines):
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())


def _local(at) -> str:
    from .domain.date_parts import london_clock  # UK time, " GMT" / " BST" in the hour that happens twice

    return london_clock(at, "%Y-%m-%d %H:%M:%S")


def _why(purpose: str) -> str:
    return "break-glass" if purpose == "break_glass" else purpose.replace("_", " ")
