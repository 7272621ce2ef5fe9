"""Operators' commands: `flask --app ipoa init | users | seed-demo | workflows | outbox`.
Automation relies on these names and on `users token` printing the token as its last line."""
from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select

from .adapters import workflow_store
from .adapters.db import migrate
from .domain.errors import WorkflowError
from .users import ROLES, ApiToken, User, hash_token, new_token


def _svc():
    return current_app.extensions["ipoa"]


def register(app: Flask) -> None:
    app.cli.add_command(init_command)
    app.cli.add_command(users)
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(workflows)
    app.cli.add_command(outbox)
    app.cli.add_command(professionals)


@click.command("init")
@with_appcontext
def init_command() -> None:
    """Create or migrate the database and load the workflows and directory from the repository."""
    svc = _svc()
    migrate(svc.db)
    try:
        catalogue = svc.load_catalogue()
        with svc.uow() as uow:
            done = workflow_store.deploy(uow.session, catalogue.workflows, svc.clock.now())
            uow.commit()
    except WorkflowError as exc:
        raise click.ClickException(str(exc)) from None
    for line in done:
        click.echo(line)
    d = catalogue.directory
    click.echo(f"database ready; {len(catalogue.workflows)} workflow version(s) current, "
               f"{len(d.centres)} centres, {len(d.services)} services, {len(d.localities)} localities, "
               f"{len(catalogue.routing.rules)} routing rules")


@click.group(cls=AppGroup)
def users() -> None:
    """Manage users and API tokens."""


@users.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--centre", help="Home centre code (required for handlers and supervisors)")
@click.option("--password", required=True)
@click.option("--name", "display_name", help="Display name (defaults to the username)")
@click.option("--mobile", help="UK mobile number (stored in E.164); supervisors' escalation texts go to it")
def users_create(username: str, role: str, centre: str | None, password: str, display_name: str | None,
                 mobile: str | None) -> None:
    """Create a user."""
    from .domain.validation import normalise_uk_mobile

    svc = _svc()
    e164 = None
    if mobile is not None:
        e164 = normalise_uk_mobile(mobile)
        if e164 is None:
            raise click.BadParameter(f"{mobile!r} is not a valid UK mobile number", param_hint="--mobile")
    if centre is not None and centre not in svc.directory.centres:
        raise click.BadParameter(f"unknown centre {centre}", param_hint="--centre")
    if role in ("handler", "supervisor") and not centre:
        raise click.BadParameter("handlers and supervisors need a home centre", param_hint="--centre")
    if len(password) < 8:
        raise click.BadParameter("at least 8 characters", param_hint="--password")
    with svc.uow() as uow:
        if uow.session.scalars(select(User).where(User.username == username)).first():
            raise click.ClickException(f"user {username} already exists")
        uow.session.add(User(username=username, display_name=display_name or username, role=role,
                             centre=centre, password=password, created_at=svc.clock.now(), mobile=e164))
        uow.commit()
    click.echo(f"created {role} {username}" + (f" ({centre})" if centre else "")
               + (f", mobile {e164}" if e164 else ""))


@users.command("token")
@click.argument("username")
def users_token(username: str) -> None:
    """Issue a new API token; it is printed once, as the last line."""
    svc = _svc()
    token = new_token()
    with svc.uow() as uow:
        user = uow.session.scalars(select(User).where(User.username == username)).first()
        if user is None:
            raise click.ClickException(f"no user {username}")
        uow.session.add(ApiToken(user_id=user.id, token_hash=hash_token(token), created_at=svc.clock.now()))
        uow.commit()
    click.echo(f"API token for {username} (shown once; send as 'Authorization: Bearer <token>'):")
    click.echo(token)


@click.command("seed-demo")
@with_appcontext
def seed_demo_command() -> None:
    """Add the demo users (one for every role) and a handful of calls."""
    from .demo import seed

    for line in seed(_svc()):
        click.echo(line)


@click.group(cls=AppGroup)
def workflows() -> None:
    """Check and draw workflow definitions."""


@workflows.command("check")
def workflows_check() -> None:
    """Validate workflows/ (workflows, directory, routing) and compare with what is deployed."""
    svc = _svc()
    try:
        catalogue = svc.load_catalogue()
    except (WorkflowError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    for d in catalogue.workflows:
        click.echo(f"ok {d.source}: {d.name} v{d.version}, {len(d.states)} states, "
                   f"{len(d.transitions)} transitions")
    try:
        with svc.uow() as uow:
            deployed = {x.key: x.checksum for x in workflow_store.load_all(uow.session)}
    except Exception:  # noqa: BLE001 - a database not yet initialised is not a definition error
        deployed = None
    if deployed is not None:
        for d in catalogue.workflows:
            if d.key not in deployed:
                click.echo(f"note: {d.name} v{d.version} is not deployed yet (run init)")
            elif deployed[d.key] != d.checksum:
                click.echo(f"error: {d.name} v{d.version} differs from the deployed version; "
                           "bump its version number", err=True)
                sys.exit(1)
    click.echo(f"ok directory: {len(catalogue.directory.centres)} centres, "
               f"{len(catalogue.directory.services)} services; routing: {len(catalogue.routing.rules)} rules")


@workflows.command("diagram")
@click.argument("name")
def workflows_diagram(name: str) -> None:
    """Print the latest version of workflow NAME as Mermaid stateDiagram-v2 text."""
    catalogue = _svc().load_catalogue()
    matches = sorted((d for d in catalogue.workflows if d.name == name), key=lambda d: d.version)
    if not matches:
        raise click.ClickException(f"no workflow named {name}")
    click.echo(matches[-1].mermaid(), nl=False)


@click.group(cls=AppGroup)
def outbox() -> None:
    """The transactional outbox."""


@outbox.command("sweep")
@click.option("--older-than", default=30, show_default=True, help="Seconds since the message was written")
def outbox_sweep(older_than: int) -> None:
    """Handle outbox events left unhandled (after Redis was down, or a crash) and queue the texts they
    cause. The relay does this by itself every few seconds; this is for operators."""
    from .service.outbox import rq_send_queue, sweep

    svc = _svc()
    n = sweep(svc, rq_send_queue(svc), older_than_seconds=older_than)
    click.echo(f"handled {n} event(s)")


@click.group(cls=AppGroup)
def professionals() -> None:
    """Professionals who receive referral texts."""


@professionals.command("add")
@click.argument("name")
@click.option("--service", required=True, help="Service code from the directory")
@click.option("--mobile", required=True, help="UK mobile number")
@click.option("--on-duty/--off-duty", default=True, show_default=True)
@click.option("--user", "username", help="The professional's sign-in (role professional), for their referral page")
def professionals_add(name: str, service: str, mobile: str, on_duty: bool, username: str | None) -> None:
    """Register a professional of a service."""
    from .service.professionals import InvalidProfessional, add_professional, link_user

    svc = _svc()
    user_id = None
    if username:
        with svc.uow() as uow:
            user_id = uow.session.scalar(select(User.id).where(User.username == username,
                                                               User.role == "professional"))
        if user_id is None:
            raise click.ClickException(f"no professional user {username}")
    try:
        add_professional(svc, name=name, service=service, mobile=mobile, on_duty=on_duty)
    except InvalidProfessional as exc:
        raise click.ClickException(str(exc)) from None
    if user_id is not None:
        link_user(svc, mobile, user_id)
    click.echo(f"added {name} ({service}, {'on' if on_duty else 'off'} duty)")
