"""Operators' commands: `flask --app ipoa init | users | tokens | security | seed-demo | workflows | outbox`.
Automation relies on these names and on `tokens issue` and `users token` printing the token as their last
line. Passwords are never taken on the command line (shell history, the process list): prompted for, or
read from standard input with --password-stdin."""
from __future__ import annotations

import sys
from datetime import UTC

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from .adapters import workflow_store
from .adapters.db import migrate
from .domain.errors import WorkflowError
from .service import security
from .service import users as user_service
from .users import ROLES


def _svc():
    return current_app.extensions["ipoa"]


def register(app: Flask) -> None:
    app.cli.add_command(init_command)
    app.cli.add_command(users)
    app.cli.add_command(tokens_group)
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(workflows)
    app.cli.add_command(outbox)
    app.cli.add_command(professionals)
    app.cli.add_command(rota)
    from .cli_governance import register as register_governance

    register_governance(app)  # audit, retention, access
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
    """Manage users (and, as aliases of the tokens commands, their API tokens)."""


@click.group("tokens", cls=AppGroup)
def tokens_group() -> None:
    """API tokens: named, expiring, shown once."""


# Where a refused change's field is given on the command line, so click can name the option at fault.
_OPTION_FOR = {"role": "--role", "centre": "--centre", "mobile": "--mobile", "display_name": "--name",
               "name": "--name", "days": "--days", "answer_on": "--answer-on"}


def _refused(exc: user_service.UserError) -> click.ClickException:
    if exc.field == "password":  # typed at the prompt or piped in: no option to name; never echoed
        return click.ClickException(f"password refused: {exc}")
    if exc.field in _OPTION_FOR:
        return click.BadParameter(str(exc), param_hint=_OPTION_FOR[exc.field])
    return click.ClickException(str(exc))


def _when(at) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if at is not None else "-"


# -- passwords: typed at a hidden prompt, or read from standard input; never on the command line --------

def _no_password_option(ctx, _param, value) -> None:
    # Refused with a reason rather than click's bare "no such option": by now it is in the shell's
    # history, so say so.
    if value is not None:
        raise click.UsageError("passwords are not taken on the command line, where they stay in the shell's "
                               "history and the process list: leave --password out to be prompted for it, "
                               "or pipe it in with --password-stdin. Consider the one you typed exposed.", ctx)


_password_argv_trap = click.option("--password", expose_value=False, hidden=True, callback=_no_password_option,
                                   is_eager=True)
_password_stdin = click.option(
    "--password-stdin", is_flag=True,
    help="Read the password from the first line of standard input instead of prompting (for automation)")


def _read_password(from_stdin: bool, prompt: str) -> str:
    if from_stdin:
        if sys.stdin.isatty():  # it would be typed in the clear
            raise click.UsageError("--password-stdin reads a pipe; at a terminal leave it out to be prompted "
                                   "(the password is then hidden)")
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            raise click.UsageError("--password-stdin: standard input held no password")
        return password
    return click.prompt(prompt, hide_input=True, confirmation_prompt=True)


@users.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--centre", help="Home centre code (required for handlers and supervisors)")
@click.option("--name", "display_name", help="Display name (defaults to the username)")
@click.option("--mobile", help="UK mobile number (stored in E.164); supervisors' escalation texts go to it")
@_password_stdin
@_password_argv_trap
def users_create(username: str, role: str, centre: str | None, display_name: str | None, mobile: str | None,
                 password_stdin: bool) -> None:
    """Create a user. The password is prompted for (twice, hidden), or read from standard input with
    --password-stdin: at least 12 characters, not a common password, not containing the username."""
    password = _read_password(password_stdin, "Password")
    try:
        user = user_service.create_user(_svc(), security.cli_actor(), username=username, role=role, centre=centre,
                                        password=password, display_name=display_name, mobile=mobile)
    except user_service.UserError as exc:
        raise _refused(exc) from None
    click.echo(f"created {role} {username}" + (f" ({centre})" if centre else "")
               + (f", mobile {user.mobile}" if user.mobile else ""))


@users.command("list")
def users_list() -> None:
    """Every user: username, role, centre, state (active, deactivated, locked), API tokens in force, last seen."""
    found = user_service.list_users(_svc())
    if not found:
        click.echo("no users")
        return
    click.echo("username\trole\tcentre\tstate\ttokens\tlast seen\tname")
    for u in found:
        state = "active" if u.active else "deactivated"
        if u.locked_until is not None:
            state += f", locked until {_when(u.locked_until)}"
        click.echo(f"{u.username}\t{u.role}\t{u.centre or '-'}\t{state}\t{u.tokens_in_force}\t"
                   f"{_when(u.last_seen_at)}\t{u.display_name}")


@users.command("update")
@click.argument("username")
@click.option("--name", "display_name", help="New display name")
@click.option("--mobile", help="New UK mobile number; '' removes it")
@click.option("--centre", help="New home centre code; '' removes it (not for handlers and supervisors)")
@click.option("--role", type=click.Choice(ROLES), help="New role (ends the user's signed-in sessions)")
@click.option("--answer-on", help="Where Answer puts phone callers through to: a UK phone number or "
                                  "client:<identity> (a Twilio Client); '' removes it")
def users_update(username: str, display_name: str | None, mobile: str | None, centre: str | None,
                 role: str | None, answer_on: str | None) -> None:
    """Change a user's display name, mobile, home centre, role or where they answer phone calls."""
    if display_name is None and mobile is None and centre is None and role is None and answer_on is None:
        raise click.UsageError("say what to change: --name, --mobile, --centre, --role or --answer-on")
    keep = user_service.KEEP  # an option not given leaves its field as it is
    try:
        changed = user_service.update_user(
            _svc(), security.cli_actor(), username,
            display_name=keep if display_name is None else display_name,
            mobile=keep if mobile is None else mobile or None,  # '' removes it
            centre=keep if centre is None else centre or None,
            role=keep if role is None else role,
            answer_on=keep if answer_on is None else answer_on or None)
    except user_service.UserError as exc:
        raise _refused(exc) from None
    click.echo(f"updated {username}: {', '.join(f.replace('_', ' ') for f in changed)}" if changed
               else f"{username} already had those details; nothing changed")


@users.command("deactivate")
@click.argument("username")
def users_deactivate(username: str) -> None:
    """Stop a user signing in or using their API tokens; their signed-in sessions end at once."""
    _set_active(username, False)


@users.command("reactivate")
@click.argument("username")
def users_reactivate(username: str) -> None:
    """Let a deactivated user sign in again (their API tokens not revoked or expired work again too)."""
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
                   f"flask --app ipoa tokens revoke --user {username}")


@users.command("password")
@click.argument("username")
@_password_stdin
@_password_argv_trap
def users_password(username: str, password_stdin: bool) -> None:
    """Set a user's password (prompted for, twice, hidden); ends their signed-in sessions."""
    _set_password(username, _read_password(password_stdin, "New password"))


@users.command("reset-password")
@click.argument("username")
@click.option("--generate", is_flag=True,
              help="Generate a strong password and print it once (as the last line) instead of prompting")
@_password_stdin
@_password_argv_trap
def users_reset_password(username: str, generate: bool, password_stdin: bool) -> None:
    """Give a user a new password: prompted for, or generated with --generate (shown once). Either way
    their signed-in sessions end."""
    if generate and password_stdin:
        raise click.UsageError("choose --generate or --password-stdin, not both")
    if not generate:
        _set_password(username, _read_password(password_stdin, "New password"))
        return
    try:
        password = user_service.reset_password(_svc(), security.cli_actor(), username)
    except user_service.UserError as exc:
        raise _refused(exc) from None
    click.echo(f"password reset for {username}; their sessions have ended. The new password, shown once "
               "(give it to them by a secure route):")
    click.echo(password)


def _set_password(username: str, password: str) -> None:
    try:
        user_service.set_password(_svc(), security.cli_actor(), username, password)
    except user_service.UserError as exc:
        raise _refused(exc) from None
    click.echo(f"password changed for {username}; their sessions have ended")


@users.command("unlock")
@click.argument("username")
def users_unlock(username: str) -> None:
    """Lift a sign-in lockout after too many failed attempts (failed sign-ins are counted afresh from now)."""
    from .service import signin

    try:
        was_locked = signin.unlock(_svc(), security.cli_actor(), username)
    except LookupError as exc:  # no such user, in signin's words
        raise click.ClickException(str(exc)) from None
    click.echo(f"unlocked {username}" if was_locked
               else f"{username} was not locked; their failed sign-ins are counted afresh from now")


@users.command("reset-mfa")
@click.argument("username")
def users_reset_mfa(username: str) -> None:
    """Remove a user's authenticator app and recovery codes (a lost or replaced phone); their sessions end,
    and they set an app up again at their next sign-in if their role requires one."""
    from .service import mfa

    try:
        had = mfa.reset(_svc(), security.cli_actor(), username)
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"authenticator app and recovery codes removed for {username}; their sessions have ended" if had
               else f"{username} had no authenticator app set up; nothing changed but their sessions have ended")


# -- API tokens ------------------------------------------------------------------------------------------

def _token_days(days: int | None) -> int | None:
    return days if days is not None else current_app.config.get("TOKEN_DAYS")


def _issue(username: str, name: str | None, days: int | None) -> None:
    try:
        issued = user_service.issue_token(_svc(), security.cli_actor(), username, name=name,
                                          days=_token_days(days))
    except user_service.UserError as exc:
        raise _refused(exc) from None
    # Automation reads the token from the LAST line; the first names it by id.
    click.echo(f"API token {issued.id} for {username}, named {issued.name!r}, expires {_when(issued.expires_at)} "
               "(shown once; send as 'Authorization: Bearer <token>'):")
    click.echo(issued.token)


_days_option = click.option("--days", type=int, default=None,
                            help=f"Days until it expires (default: TOKEN_DAYS, {user_service.TOKEN_DAYS}; "
                                 f"at most {user_service.TOKEN_MAX_DAYS})")


@tokens_group.command("issue")
@click.argument("username")
@click.option("--name", required=True, help="What the token is for, e.g. 'ambulance-integration'")
@_days_option
def tokens_issue(username: str, name: str, days: int | None) -> None:
    """Issue a named API token that expires; it is printed once, as the last line."""
    _issue(username, name, days)


@users.command("token")
@click.argument("username")
@click.option("--name", default=None, help=f"What the token is for (default {user_service.UNNAMED_TOKEN!r})")
@_days_option
def users_token(username: str, name: str | None, days: int | None) -> None:
    """Issue a new API token (alias of `tokens issue`); it is printed once, as the last line."""
    _issue(username, name, days)


@tokens_group.command("list")
@click.argument("username", required=False)
@click.option("--all", "show_all", is_flag=True, help="Also revoked and expired tokens")
def tokens_list(username: str | None, show_all: bool) -> None:
    """API tokens (a user's, or everyone's): id, user, name, issued, expires, last used, state. The tokens
    themselves are not kept. Without --all, only those in force."""
    _list_tokens(username, show_all)


@users.command("tokens")
@click.argument("username")
def users_tokens(username: str) -> None:
    """A user's API tokens, revoked and expired ones too (alias of `tokens list USERNAME --all`)."""
    _list_tokens(username, True)


def _list_tokens(username: str | None, show_all: bool) -> None:
    svc = _svc()
    try:
        found = user_service.tokens(svc, username)
    except user_service.UserError as exc:
        raise _refused(exc) from None
    now = svc.clock.now()
    if not show_all:
        found = [t for t in found if t.state(now) == "in force"]
    if not found:
        whose = f"{username} has" if username else "there are"
        click.echo(f"{whose} no API tokens" + ("" if show_all else " in force (--all lists the others)"))
        return
    click.echo("id\tuser\tname\tissued\texpires\tlast used\tstate")
    for t in found:
        state = t.state(now)
        if state == "revoked":
            state = f"revoked {_when(t.revoked_at)}"
        click.echo(f"{t.id}\t{t.username}\t{t.name or '-'}\t{_when(t.created_at)}\t{_when(t.expires_at)}\t"
                   f"{_when(t.last_used_at)}\t{state}")


@tokens_group.command("revoke")
@click.argument("token_id", type=int, required=False)
@click.option("--user", "username", help="Revoke every token of this user not yet revoked")
@click.option("--name", help="With --user: only their tokens of this name")
def tokens_revoke(token_id: int | None, username: str | None, name: str | None) -> None:
    """Revoke an API token by its id (see `tokens list`), or a user's with --user [--name NAME]."""
    _revoke(token_id, username, name)


@users.command("revoke-token")
@click.argument("token_id", type=int, required=False)
@click.option("--user", "username", help="Revoke every token of this user not yet revoked")
@click.option("--name", help="With --user: only their tokens of this name")
def users_revoke_token(token_id: int | None, username: str | None, name: str | None) -> None:
    """Revoke an API token by its id, or a user's with --user (alias of `tokens revoke`)."""
    _revoke(token_id, username, name)


def _revoke(token_id: int | None, username: str | None, name: str | None) -> None:
    if token_id is not None and username is None:
        if name is not None:
            raise click.UsageError("--name goes with --user")
        svc, actor = _svc(), security.cli_actor()
        try:
            owner = user_service.revoke_token(svc, actor, token_id)
        except user_service.UserError as exc:
            raise _refused(exc) from None
        click.echo(f"revoked API token {token_id} of {owner}")
        return
    if username is None or token_id is not None:
        raise click.UsageError("give a token id, or --user USERNAME for all of a user's tokens (not both)")
    svc, actor = _svc(), security.cli_actor()
    try:
        ids = user_service.revoke_tokens(svc, actor, username, name)
    except user_service.UserError as exc:
        raise _refused(exc) from None
    which = f" named {name!r}" if name is not None else ""
    listed = f": {', '.join(map(str, ids))}" if ids else ""
    click.echo(f"revoked {len(ids)} API token(s){which} of {username}{listed}")


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
            deployed = {x.key: x for x in workflow_store.load_all(uow.session)}
    except Exception:  # noqa: BLE001 - a database not yet initialised is not a definition error
        deployed = None
    if deployed is not None:
        for d in catalogue.workflows:
            if d.key not in deployed:
                click.echo(f"note: {d.name} v{d.version} is not deployed yet (run init)")
            elif deployed[d.key].checksum != d.checksum:
                click.echo(f"error: {d.name} v{d.version} differs from the deployed version; "
                           "bump its version number", err=True)
                sys.exit(1)
            elif deployed[d.key].meaning_checksum != d.meaning_checksum:
                # Tags and roles are not the machine's shape (domain/meaning.py): init updates them in place.
                click.echo(f"note: {d.name} v{d.version}'s tags or roles differ from the deployed version's; "
                           "init will update them in place")
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


# Where a refused change to a professional is given on the command line (service/professionals.py names
# the field), so the message names the option at fault.
_PROFESSIONAL_OPTION = {"name": "--name", "mobile": "--mobile", "service": "--service", "user": "--user"}


def _professional_refused(exc, name_hint: str = "--name") -> click.ClickException:
    options = {**_PROFESSIONAL_OPTION, "name": name_hint}
    if getattr(exc, "field", None) in options:
        return click.BadParameter(str(exc), param_hint=options[exc.field])
    return click.ClickException(str(exc))


@professionals.command("add")
@click.argument("name")
@click.option("--service", required=True, help="Service code from the directory")
@click.option("--mobile", required=True, help="UK mobile number")
@click.option("--user", "username", help="The professional's sign-in (role professional), for their referral page")
def professionals_add(name: str, service: str, mobile: str, username: str | None) -> None:
    """Register a professional of a service (on duty when a rota says so: `rota import`)."""
    from .service.professionals import InvalidProfessional, add_professional

    try:
        new_id = add_professional(_svc(), name=name, service=service, mobile=mobile, actor=security.cli_actor(),
                                  user=username)
    except InvalidProfessional as exc:
        raise _professional_refused(exc, "NAME") from None
    click.echo(f"added {name} ({service}), id {new_id}: on duty when a rota says so")


@professionals.command("list")
@click.option("--service", help="Service code from the directory (default: every service)")
@click.option("--all", "show_all", is_flag=True, help="Include deactivated professionals")
def professionals_list(service: str | None, show_all: bool) -> None:
    """Professionals: id, name, service, mobile, linked user, state."""
    from .service.professionals import list_professionals

    if service is not None and service not in _svc().directory.services:
        raise click.BadParameter(f"no service {service} in the directory", param_hint="--service")
    found = list_professionals(_svc(), service, include_inactive=show_all)
    if not found:
        click.echo("no professionals")
        return
    click.echo("id\tname\tservice\tmobile\tuser\tstate")
    for p in found:
        state = ("active" if p.active else "deactivated") + (", opted out of texts" if p.opted_out else "")
        click.echo(f"{p.id}\t{p.name}\t{p.service}\t{p.mobile}\t{p.username or '-'}\t{state}")


@professionals.command("edit")
@click.argument("professional_id", type=int)
@click.option("--name", help="New name")
@click.option("--mobile", help="New UK mobile number")
@click.option("--service", help="New service code (they are taken off the old service's shifts)")
@click.option("--user", "username", help="Link the user with this username (role professional)")
@click.option("--unlink", is_flag=True, help="Unlink the linked user")
def professionals_edit(professional_id: int, name: str | None, mobile: str | None, service: str | None,
                       username: str | None, unlink: bool) -> None:
    """Change a professional's name, mobile, service or linked user."""
    from .service import rota_warnings
    from .service.errors import NotFound
    from .service.professionals import KEEP, InvalidProfessional, edit_professional

    if username is not None and unlink:
        raise click.UsageError("choose --user or --unlink, not both")
    if name is None and mobile is None and service is None and username is None and not unlink:
        raise click.UsageError("say what to change: --name, --mobile, --service, --user or --unlink")

    svc = _svc()
    try:
        # A move to another service takes them off the old one's shifts, which may leave it uncovered.
        changed, gaps = rota_warnings.with_gap_warning(
            svc, _service_of(svc, professional_id), lambda: edit_professional(
                svc, security.cli_actor(), professional_id,
                name=KEEP if name is None else name, mobile=KEEP if mobile is None else mobile,
                service=KEEP if service is None else service,
                user=None if unlink else (KEEP if username is None else username)))
    except NotFound as exc:
        raise click.BadParameter(str(exc), param_hint="PROFESSIONAL_ID") from None
    except InvalidProfessional as exc:
        raise _professional_refused(exc) from None
    click.echo(f"updated professional {professional_id}: {', '.join(changed)}" if changed
               else f"professional {professional_id} already had those details; nothing changed")
    _warn_gaps(svc, gaps)


def _shift_words(shift) -> str:
    import calendar

    when = calendar.day_name[shift.weekday] + "s" if shift.weekday is not None else f"{shift.day:%a %d %b %Y}"
    role = " (duty lead)" if shift.duty_lead and not shift.member else (", duty lead" if shift.duty_lead else "")
    label = f" {shift.label}" if shift.label else ""
    return f"shift {shift.id}: {shift.service}{label} {when} {shift.start:%H:%M}-{shift.end:%H:%M}{role}"


@professionals.command("deactivate")
@click.argument("professional_id", type=int)
def professionals_deactivate(professional_id: int) -> None:
    """Never on duty nor texted again (kept for the record); taken off their shifts and standing duty lead."""
    from .service import rota_warnings
    from .service.errors import NotFound
    from .service.professionals import deactivate_professional

    svc = _svc()
    try:
        removed, gaps = rota_warnings.with_gap_warning(
            svc, _service_of(svc, professional_id),
            lambda: deactivate_professional(svc, security.cli_actor(), professional_id))
    except NotFound as exc:
        raise click.BadParameter(str(exc), param_hint="PROFESSIONAL_ID") from None
    if removed is None:
        click.echo(f"professional {professional_id} was already deactivated; nothing changed")
        return
    click.echo(f"deactivated professional {professional_id}")
    for shift in removed.shifts:
        click.echo(f"taken off {_shift_words(shift)}")
    for service in removed.standing_duty_lead_of:
        click.echo(f"no longer the standing duty lead of {service}")
    _warn_gaps(svc, gaps)


def _service_of(svc, professional_id: int) -> str:
    """The service of a professional (NotFound if there is none with that id)."""
    from .service.professionals import get_professional

    return get_professional(svc, professional_id).service


def _warn_gaps(svc, gaps) -> None:
    """A change that opened a gap in the rota warns the person making it (docs/domain.md, "Rotas")."""
    from .service import rota_warnings

    for line in rota_warnings.warning_lines(svc, gaps):
        click.echo(f"warning: {line}", err=True)


@professionals.command("reactivate")
@click.argument("professional_id", type=int)
def professionals_reactivate(professional_id: int) -> None:
    """May be rostered and texted again (put them back on shifts: the rota is not restored)."""
    from .service.errors import NotFound
    from .service.professionals import reactivate_professional

    try:
        changed = reactivate_professional(_svc(), security.cli_actor(), professional_id)
    except NotFound as exc:
        raise click.BadParameter(str(exc), param_hint="PROFESSIONAL_ID") from None
    click.echo(f"reactivated professional {professional_id}: put them on the rota's shifts again" if changed
               else f"professional {professional_id} was already active; nothing changed")


@click.group(cls=AppGroup)
def rota() -> None:
    """Rotas: who is on duty for each service (docs/domain.md, "Rotas")."""


@rota.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
def rota_import(file) -> None:
    """Import a rostering tool's CSV (service,date,start,end,professional,role): all of it or, if any line is
    wrong, none of it."""
    from .service import rota_warnings, rotas, security

    svc = _svc()
    text = file.read()
    result, gaps = rota_warnings.with_gap_warning(svc, None, lambda: rotas.import_csv(svc, security.cli_actor(), text))
    if not result.ok:
        for message in result.messages:
            click.echo(message, err=True)
        raise click.ClickException(f"nothing imported: {len(result.problems)} problem(s) in {file.name}")
    click.echo(f"imported {result.shifts} shift(s)")
    _warn_gaps(svc, gaps)


@rota.command("export")
@click.option("--service", help="Service code from the directory (default: every service)")
@click.option("--days", type=click.IntRange(1, 92), default=7, show_default=True, help="Days from today")
def rota_export(service: str | None, days: int) -> None:
    """Print the rota's shifts from today as CSV, in the shape `rota import` reads."""
    from .service import rotas
    from .service.errors import NotFound

    try:
        click.echo(rotas.export_csv(_svc(), service, days=days), nl=False)
    except NotFound as exc:
        raise click.ClickException(str(exc)) from None


@rota.command("handover")
def rota_handover() -> None:
    """Re-send the referrals still awaiting acceptance to the incoming shift at each shift change since the
    last look (what the scheduler does every 30 s), once each."""
    from .service import shift_handover

    n = shift_handover.run(_svc())
    click.echo(f"re-sent {n} referral(s) to the incoming shift")


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
