"""Administrators' pages for the onward services' professionals (/admin/professionals): the list, add,
edit (name, UK mobile, service, linked user), deactivate after a confirmation naming the shifts they come
off, and reactivate. Each change is service/professionals.py's unit of work with its professional_changed
security event; the CLI's `professionals` commands use the same functions. Bad input: the form again with
400, the NHS.UK error summary and each field's message, and nothing stored."""
from __future__ import annotations

import calendar

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from ..entry.request_context import current, services
from ..entry.role_check import requires
from ..service import professionals as professional_service
from ..service import rota_warnings
from ..service.errors import NotFound
from ..service.professionals import InvalidProfessional
from .form_values import in_page_order
from .referral_view import phone_display

bp = Blueprint("professionals_admin", __name__, url_prefix="/admin/professionals")

FIELDS = ("name", "mobile", "service", "user")  # in the order the form shows them


def _service_options() -> list[tuple[str, str]]:
    return [(code, f"{entry.name} ({code})") for code, entry in sorted(services().directory.services.items())]


def _service_name(code: str) -> str:
    entry = services().directory.services.get(code)
    return entry.name if entry is not None else code


def shift_words(shift) -> str:
    """A shift as the confirmation names it: "DN day, Mondays 08:00 to 20:00 (duty lead)"."""
    when = (calendar.day_name[shift.weekday] + "s" if shift.weekday is not None
            else f"{shift.day:%A} {shift.day.day} {shift.day:%B %Y}")
    label = f" {shift.label}" if shift.label else ""
    role = (" (duty lead)" if shift.duty_lead and not shift.member
            else ", and its duty lead" if shift.duty_lead else "")
    return f"{shift.service}{label}, {when} {shift.start:%H:%M} to {shift.end:%H:%M}{role}"


def _form_values() -> dict[str, str]:
    # A form field is text; only the first of a repeated field counts (the form has one of each).
    return {name: request.form.get(name, "") for name in FIELDS}


def _render_form(template_values: dict[str, str], errors: dict[str, str], professional=None, status: int = 200):
    return render_template("professional_form.html", values=template_values, errors=in_page_order(errors, FIELDS),
                           professional=professional, service_options=_service_options(),
                           name_max=professional_service.NAME_MAX, phone_display=phone_display), status


def _shown(professional) -> dict[str, str]:
    return {"name": professional.name, "mobile": phone_display(professional.mobile), "service": professional.service,
            "user": professional.username or ""}


def _get(professional_id: int):
    try:
        return professional_service.get_professional(services(), professional_id)
    except NotFound:
        abort(404)


@bp.get("/")
@requires("professionals.manage")
def index():
    service = (request.args.get("service") or "").strip()
    errors = {}
    if service and service not in services().directory.services:
        errors["service"] = "Choose a service from the list"
    found = [] if errors else professional_service.list_professionals(services(), service or None)
    return render_template("professionals_admin.html", professionals=found, values={"service": service},
                           errors=errors, service_options=_service_options(), service_name=_service_name,
                           phone_display=phone_display), 400 if errors else 200


@bp.route("/new", methods=["GET", "POST"])
@requires("professionals.manage")
def new():
    if request.method == "GET":
        return _render_form({}, {})
    values = _form_values()
    try:
        new_id = professional_service.add_professional(
            services(), name=values["name"], service=values["service"], mobile=values["mobile"],
            actor=current().username, user=values["user"] or None, client=request.remote_addr)
    except InvalidProfessional as exc:
        return _render_form(values, exc.errors, status=400)
    added = professional_service.get_professional(services(), new_id)
    flash(f"{added.name} added to {_service_name(added.service)}. They are on duty when a rota puts them on a "
          f"shift.", "success")
    return redirect(url_for("professionals_admin.index"))


@bp.route("/<int:professional_id>", methods=["GET", "POST"])
@requires("professionals.manage")
def edit(professional_id: int):
    professional = _get(professional_id)
    if request.method == "GET":
        return _render_form(_shown(professional), {}, professional)
    values = _form_values()
    try:
        # A move to another service takes them off the old one's shifts, which may leave it uncovered.
        changed, gaps = rota_warnings.with_gap_warning(
            services(), professional.service, lambda: professional_service.edit_professional(
                services(), current().username, professional_id, name=values["name"], mobile=values["mobile"],
                service=values["service"], user=values["user"] or None, client=request.remote_addr))
    except InvalidProfessional as exc:
        return _render_form(values, exc.errors, professional, status=400)
    if not changed:
        flash(f"{professional.name}'s details were already as given: nothing changed.", "info")
    else:
        words = {"name": "name", "mobile": "mobile", "service": "service", "user": "linked user"}
        said = ", ".join(words[f] for f in FIELDS if f in changed)
        moved = (f" They were taken off {_service_name(professional.service)}'s shifts."
                 if "service" in changed else "")
        flash(f"{values['name'].strip() or professional.name}: {said} changed.{moved}", "success")
        _warn(gaps)
    return redirect(url_for("professionals_admin.index"))


@bp.get("/<int:professional_id>/deactivate")
@requires("professionals.manage")
def confirm_deactivate(professional_id: int):
    professional = _get(professional_id)
    removed = professional_service.on_rota(services(), professional_id)
    return render_template("professional_deactivate.html", professional=professional, removed=removed,
                           shift_words=shift_words, service_name=_service_name)


@bp.post("/<int:professional_id>/deactivate")
@requires("professionals.manage")
def deactivate(professional_id: int):
    professional = _get(professional_id)
    removed, gaps = rota_warnings.with_gap_warning(
        services(), professional.service, lambda: professional_service.deactivate_professional(
            services(), current().username, professional_id, client=request.remote_addr))
    if removed is None:
        flash(f"{professional.name} was already deactivated: nothing changed.", "info")
    else:
        taken = [shift_words(s) for s in removed.shifts] + [
            f"standing duty lead of {_service_name(code)}" for code in removed.standing_duty_lead_of]
        off = f" Taken off: {'; '.join(taken)}." if taken else " They were on no shifts."
        flash(f"{professional.name} is deactivated: never on duty nor texted.{off}", "success")
        _warn(gaps)
    return redirect(url_for("professionals_admin.index"))


def _warn(gaps: list[rota_warnings.GapText]) -> None:
    """A change that opened a gap in the rota warns the person making it (issue 13; docs/domain.md, "Rotas")."""
    for line in rota_warnings.warning_lines(services(), gaps):
        flash(line, "info")


@bp.post("/<int:professional_id>/reactivate")
@requires("professionals.manage")
def reactivate(professional_id: int):
    professional = _get(professional_id)
    if professional_service.reactivate_professional(services(), current().username, professional_id,
                                                    client=request.remote_addr):
        flash(f"{professional.name} is active again. Put them on the rota's shifts for them to be on duty.",
              "success")
    else:
        flash(f"{professional.name} was already active: nothing changed.", "info")
    return redirect(url_for("professionals_admin.index"))
