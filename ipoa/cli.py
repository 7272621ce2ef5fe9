"""Operators' commands: `flask --app ipoa init | users | security | seed-demo | workflows | outbox`.
Automation relies on these names and on `users token` printing the token as its last line."""
from __future__ import annotations

import sys
from datetime import timezone

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select

from .adapters import workflow_store
from .adapters.db import migrate
from .domain.errors import WorkflowError
from .service import security
from .service import users as user_service
from .users import ROLES, User


def _svc():
    return current_app.extensions["ipoa"]


def register(app: Flask) -> None:
    app.cli.add_command(init_command)
    app.cli.add_command(users)
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(workflows)
    app.cli.add_command(outbox)
    app.cli.add_command(professionals)
    from .cli_governance import register as register_governance; register_governance(app)  # noqa: E702 - audit, retention, access
    app.cli.add_command(security_group)


@click.command("init")
@with_appcontext
def init_command() -> None:
    """Create or migrate the database and load the workflows and directory from the repository."""
    svc = _svc()
    migrate(svc.db)
    from .service import deploys

    try:
        catalogue = svc.load_catalogue()
        done = deploys.deploy(svc, security.cli_actor(), catalogue)
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


# Where a refused change's field is given on the command line, so click can name the option at fault.
_OPTION_FOR = {"role": "--role", "centre": "--centre", "password": "--password", "mobile": "--mobile",
               "display_name": "--name"}
_PASSWORD_HELP = "Prompted for (twice, hidden) if not given: on the command line it ends up in shell history"


def _refused(exc: user_service.UserError) -> click.ClickException:
    if exc.field in _OPTION_FOR:
        return click.BadParameter(str(exc), param_hint=_OPTION_FOR[exc.field])
    return click.ClickException(str(exc))


def _password_option(prompt: str):
    return click.option("--password", prompt=prompt, hide_input=True, confirmation_prompt=True,
                        help=_PASSWORD_HELP)


def _when(at) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if at is not None else "-"


@users.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--centre", help="Home centre code (required for handlers and supervisors)")
@_password_option("Password")
@click.option("--name", "display_name", help="Display name (defaults to the username)")
@click.option("--mobile", help="UK mobile number (stored in E.164); supervisors' escalation texts go to it")
def users_create(username: str, role: str, centre: str | None, password: str, display_name: str | None,
                 mobile: str | None) -> None:
    """Create a user."""
    try:
        user = user_service.create_user(_svc(), security.cli_actor(), username=username, role=role, centre=centre,
                                        password=password, display_name=display_name, mobile=mobile)
    except user_service.UserError as exc:
        raise _refused(exc) from None
    click.echo(f"created {role} {username}" + (f" ({centre})" if centre else "")
               + (f", mobile {user.mobile}" if user.mobile else ""))


@users.command("update")
@click.argument("username")
@click.option("--name", "display_name", help="New display name")
@click.option("--mobile", help="New UK mobile number; '' removes it")
@click.option("--centre", help="New home centre code; '' removes it (not for handlers and supervisors)")
@click.option("--role", type=click.Choice(ROLES), help="New role")
def users_update(username: str, display_name: str | None, mobile: str | None, centre: str | None,
                 role: str | None) -> None:
    """Change a user's display name, mobile, home centre or role."""
    changes = {}
    if display_name is not None:
        changes["display_name"] = display_name
    if mobile is not None:
        changes["mobile"] = mobile or None  # '' removes it
    if centre is not None:
        changes["centre"] = centre or None
    if role is not None:
        changes["role"] = role
    if not changes:
        raise click.UsageError("say what to change: --name, --mobile, --centre or --role")
    try:
        changed = user_service.update_user(_svc(), security.cli_actor(), username, **changes)
    except user_service.UserError as exc:
        raise _refused(exc) from None
    click.echo(f"updated {username}: {', '.join(f.replace('_', ' ') for f in changed)}" if changed
               else f"{username} already had those details; nothing changed")


@users.command("deactivate")
@click.argument("username")
def users_deactivate(username: str) -> None:
    """Stop a user signing in or using their API tokens (a session they have open ends at once)."""
    _set_active(username, False)


@users.command("reactivate")
@click.argument("username")
def users_reactivate(username: str) -> None:
    """Let a deactivated user sign in again (their API tokens not revoked work again too)."""
    _set_active(username, True)


def _set_active(username: str, active: bool) -> None:
    word = "reactivated" if active else "deactivated"
    try:
        changed = user_service.set_active(_svc(), security.cli_actor(), username, active)
    except user_service.UserError as exc:
        raise _refused(exc) from None
    if not changed:
        click.echo(f"{username} was already {'active' if active else 'deactivated'}; nothing changed")
        return
    click.echo(f"{word} {username}")
    if not active:
        click.echo(f"their API tokens are refused while they are deactivated; to end them for good: "
                   f"flask --app ipoa users revoke-token --user {username}")


@users.command("password")
@click.argument("username")
@_password_option("New password")
def users_password(username: str, password: str) -> None:
    """Set a user's password."""
    try:
        user_service.set_password(_svc(), security.cli_actor(), username, password)
    except user_service.UserError as exc:
        raise _refused(exc) from None
    click.echo(f"password changed for {username}")


@users.command("token")
@click.argument("username")
def users_token(username: str) -> None:
    """Issue a new API token; it is printed once, as the last line."""
    try:
        token_id, token = user_service.issue_token(_svc(), security.cli_actor(), username)
    except user_service.UserError as exc:
        raise _refused(exc) from None
    click.echo(f"API token {token_id} for {username} (shown once; send as 'Authorization: Bearer <token>'):")
    click.echo(token)


@users.command("tokens")
@click.argument("username")
def users_tokens(username: str) -> None:
    """List a user's API tokens: id, when issued, when revoked (the tokens themselves are not kept)."""
    try:
        found = user_service.tokens(_svc(), username)
    except user_service.UserError as exc:
        raise _refused(exc) from None
    if not found:
        click.echo(f"{username} has no API tokens")
        return
    click.echo("id\tissued\trevoked")
    for t in found:
        click.echo(f"{t.id}\t{_when(t.created_at)}\t{_when(t.revoked_at) if t.revoked_at else 'in force'}")


@users.command("revoke-token")
@click.argument("token_id", type=int, required=False)
@click.option("--user", "username", help="Revoke every token of this user still in force")
def users_revoke_token(token_id: int | None, username: str | None) -> None:
    """Revoke an API token by its id (see `users tokens`), or every token of a user with --user."""
    if (token_id is None) == (username is None):
        raise click.UsageError("give a token id, or --user USERNAME for all of a user's tokens (not both)")
    svc, actor = _svc(), security.cli_actor()
    try:
        if token_id is not None:
            owner = user_service.revoke_token(svc, actor, token_id)
            click.echo(f"revoked API token {token_id} of {owner}")
            return
        ids = user_service.revoke_tokens(svc, actor, username)
    except user_service.UserError as exc:
        raise _refused(exc) from None
    click.echo(f"revoked {len(ids)} API token(s) of {username}" + (f": {', '.join(map(str, ids))}" if ids else ""))


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


@click.group("security", cls=AppGroup)
def security_group() -> None:
    """The security log: sign-ins, users and tokens, SMS opt-outs, deploys."""


@security_group.command("events")
@click.option("--kind", type=click.Choice(security.KINDS), help="Only events of this kind")
@click.option("--user", help="Only events by or about this user (actor or subject)")
@click.option("--limit", type=click.IntRange(1, security.MAX_LIMIT), default=50, show_default=True)
def security_events(kind: str | None, user: str | None, limit: int) -> None:
    """Print security events, newest first, tab-separated."""
    page = security.events(_svc(), kind=kind, user=user, limit=limit)
    if not page.events:
        click.echo("no security events" + (" match" if kind or user else ""))
        return
    click.echo("seq\tat\tkind\tactor\tsubject\tclient\tdetail")
    for e in page.events:
        click.echo(f"{e.seq}\t{_when(e.at)}\t{e.kind}\t{e.actor}\t{e.subject or '-'}\t{e.client or '-'}\t"
                   f"{security.describe(e) or '-'}")
