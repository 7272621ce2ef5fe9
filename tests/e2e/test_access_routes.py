"""The access policy, route by route: every URL the app serves, walked as every role, for a record inside
and a record outside that role's relationship (docs/information-governance.md, "Who may see what").

What must hold everywhere:
- no answer is a 5xx;
- no answer carries an identifier (name, NHS number, date of birth, postcode, caller's phone, summary)
  of a record outside the role's relationship;
- a route that reads or changes a record answers 403 for a record outside the relationship, and the
  record is unchanged;
- each page a role may use answers it, and each it may not answers 403.

Every endpoint of the app must be listed in ROUTES: a new route fails this test until someone decides who
may use it.
"""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from ipoa import create_app
from ipoa.adapters import orm
from ipoa.service import calls as call_service
from ipoa.service.calls import Actor
from ipoa.service.professionals import link_user
from ipoa.service.records import break_glass
from ipoa.service.sms import link_token
from tests.conftest import NO_SIGN_IN_RULES, PASSWORD, call_payload, make_token, make_user
from tests.helpers.rota import add_on_duty

# Two invented people: one CNH call referred to DN, one ASC call referred to SCA (same organisation).
PEOPLE = {
    "CNH": {"given_name": "Octavia", "family_name": "Cnhperson", "nhs_number": "9990000018",
            "date_of_birth": "1931-03-04", "postcode": "LE11 3AB"},
    "ASC": {"given_name": "Bartholomew", "family_name": "Ascperson", "nhs_number": "9990000026",
            "date_of_birth": "1944-05-06", "postcode": "LE2 1AA"},
}
PHONES = {"CNH": ("07911 100001", "+447911100001"), "ASC": ("07911 200002", "+447911200002")}
SUMMARIES = {"CNH": "Cnh-only summary text", "ASC": "Asc-only summary text"}
SERVICES = {"CNH": "DN", "ASC": "SCA"}

# role name -> (username, role, centre, service of the linked professional record)
ROLES = {
    "handler_cnh": ("walk.handler.cnh", "handler", "CNH", None),
    "handler_asc": ("walk.handler.asc", "handler", "ASC", None),
    "supervisor_cnh": ("walk.supervisor.cnh", "supervisor", "CNH", None),
    "professional_dn": ("walk.nurse.dn", "professional", None, "DN"),
    "professional_crt": ("walk.medic.crt", "professional", None, "CRT"),
    "admin": ("walk.admin", "admin", None, None),
}
# Which of the two records each role has a relationship with (None: neither).
INSIDE = {"handler_cnh": "CNH", "handler_asc": "ASC", "supervisor_cnh": "CNH", "professional_dn": "CNH",
          "professional_crt": None, "admin": None}

STAFF = {"handler_cnh", "handler_asc", "supervisor_cnh"}
SUPERVISORS = {"supervisor_cnh"}
PROFESSIONALS = {"professional_dn", "professional_crt"}
EVERYONE = set(ROLES)

# endpoint -> how it is checked.
#   ("page", roles):            GET; 200 (or a redirect) for these roles, 403 for everyone else
#   ("record", roles, action):  a route on a call; for a record inside the relationship, roles may use it
#                               (GET: 200); outside, 403 for everyone and the record unchanged
#   ("public", statuses):       no sign-in; the status every role gets
ROUTES: dict[str, tuple] = {
    "static": ("skip",),
    "auth.login": ("public", {302}),             # signed in already: sent home
    "auth.logout": ("public", {302}),
    "health.healthz": ("public", {200}),
    "health.readyz": ("public", {200, 503}),
    "webhooks.sms_status": ("public", {403}),    # Twilio's signature is the credential
    "webhooks.sms_inbound": ("public", {403}),
    "voice_webhooks.incoming": ("public", {403}),  # Twilio Voice: the same signature check
    "voice_webhooks.menu": ("public", {403}),
    "voice_webhooks.queue_wait": ("public", {403}),
    "voice_webhooks.queue_left": ("public", {403}),
    "voice_webhooks.dial_result": ("public", {403}),
    "voice_webhooks.status": ("public", {403}),
    "web.index": ("public", {302}),
    "web.no_access": ("public", {403}),
    "web.queue": ("page", STAFF),
    "web.new_call": ("form", STAFF),
    "web.messages": ("page", STAFF),
    "web.supervisor": ("page", SUPERVISORS),
    "web.my_referrals": ("page", {"professional_dn", "professional_crt"}),
    "web.call_page": ("record", STAFF, "view"),
    "web.call_event": ("record", STAFF, "act"),
    "web.refer_out_of_hours": ("record", STAFF, "act"),
    "web.referral_event": ("record", STAFF, "act"),
    "web.referral_reroute": ("record", SUPERVISORS, "act"),
    "web.break_glass": ("break_glass", STAFF | PROFESSIONALS),
    "web.secure_link": ("link", STAFF | PROFESSIONALS),
    "web.my_referral": ("record", {"professional_dn"}, "view_referral"),
    "dashboard.fragment": ("page", SUPERVISORS),
    "live.queue_fragment": ("page", STAFF),
    "live.call_fragment": ("record", STAFF, "view"),
    "dashboard.calls": ("page", SUPERVISORS),
    "dashboard.transfer": ("record", SUPERVISORS, "act"),
    "dashboard.reroute": ("record", SUPERVISORS, "act"),
    "dashboard.escalate": ("record", SUPERVISORS, "act"),
    "dashboard.requeue_job": ("post_page", SUPERVISORS),
    "dashboard.follow_up_text": ("no_such_text", SUPERVISORS),
    "governance.break_glass_list": ("page", SUPERVISORS),
    "governance.break_glass_review": ("grant", SUPERVISORS),
    "governance.calls_csv": ("page", SUPERVISORS),
    "reports.index": ("page", {"supervisor_cnh", "admin"}),
    "reports.board": ("page", {"supervisor_cnh", "admin"}),
    "reports.export_csv": ("page", {"supervisor_cnh", "admin"}),
    "workflows.index": ("page", {"supervisor_cnh", "admin"}),
    "workflows.diagram": ("page", {"supervisor_cnh", "admin"}),
    # Rotas (web/rota_pages.py): supervisors and administrators; a form posted empty is refused with 400
    # naming its fields, and a weekly shift that does not exist (shift_id below) is not found.
    "rotas_admin.index": ("page", {"supervisor_cnh", "admin"}),
    "rotas_admin.service_rota": ("page", {"supervisor_cnh", "admin"}),
    "rotas_admin.export_all": ("page", {"supervisor_cnh", "admin"}),
    "rotas_admin.export_service": ("page", {"supervisor_cnh", "admin"}),
    "rotas_admin.add_weekly": ("form_400", {"supervisor_cnh", "admin"}),
    "rotas_admin.edit_weekly": ("no_such_shift", {"supervisor_cnh", "admin"}),
    "rotas_admin.deactivate_weekly": ("no_such_shift", {"supervisor_cnh", "admin"}),
    "rotas_admin.add_one_off": ("form_400", {"supervisor_cnh", "admin"}),
    "rotas_admin.cover": ("form_400", {"supervisor_cnh", "admin"}),
    "rotas_admin.leave": ("form_400", {"supervisor_cnh", "admin"}),
    "rotas_admin.swap": ("form_400", {"supervisor_cnh", "admin"}),
    "rotas_admin.standing_duty_lead": ("form_400", {"supervisor_cnh", "admin"}),
    "rotas_admin.import_csv": ("form_400", {"supervisor_cnh", "admin"}),
    "api.create_call": ("api_post", STAFF),
    "api.read_call": ("record", STAFF, "view"),
    "api.call_event": ("record", STAFF, "act"),
    "api.referral_event": ("record", STAFF, "act"),
    "api.referral_reroute": ("record", SUPERVISORS, "act"),
    "api.referral_escalate": ("record", SUPERVISORS, "act"),
    "api.break_glass": ("break_glass", STAFF),
    "api.access_log": ("record", SUPERVISORS, "view_access_log"),
    "api.queues": ("page", STAFF | {"admin"}),
    "api.routing_decide": ("api_post", STAFF | {"admin"}),
    "api.openapi_document": ("page", EVERYONE),
    "api.record_consent": ("record", STAFF, "act"),
    "web.record_consent": ("record", STAFF, "act"),
    "admin.security_log": ("page", {"admin"}),
    # The administrators' professionals pages (the walk's DN professional; deactivated, then reactivated).
    "professionals_admin.index": ("page", {"admin"}),
    "professionals_admin.new": ("form_400", {"admin"}),
    "professionals_admin.edit": ("form_400", {"admin"}),
    "professionals_admin.confirm_deactivate": ("page", {"admin"}),
    "professionals_admin.deactivate": ("post_page", {"admin"}),
    "professionals_admin.reactivate": ("post_page", {"admin"}),
    # Sign-in: the second factor (signed in already: sent home), the user's own sign-in security, and
    # locked accounts (a supervisor's centre's, an administrator's any).
    "auth.mfa_code": ("public", {302}),
    "auth.mfa_enrol": ("public", {302}),
    "account.security_page": ("page", EVERYONE),
    "account.set_up": ("form", EVERYONE),
    "account.renew_codes": ("post_page", EVERYONE),
    "account.recovery_codes": ("page", EVERYONE),
    "accounts.locked": ("page", {"supervisor_cnh", "admin"}),
    "accounts.unlock": ("post_page", {"supervisor_cnh", "admin"}),
    # Phone calls (web/phone_pages.py): taking calls posted empty is refused naming the field; Answer for a
    # caller who is not waiting goes back to the queue, saying so. The demo's simulated calls
    # (web/phone_simulator.py) are off here (no VOICE_SIMULATOR): not found for staff, refused for the rest.
    "phone.taking_calls": ("form_400", STAFF),
    "phone.answer": ("post_redirect", STAFF),
    "phone_simulator.ring": ("demo_off", STAFF),
    "phone_simulator.hang_up": ("demo_off", STAFF),
}

# A plausible body for each route that changes a record, so that only the access policy stands between
# the request and the change.
BODIES = {
    "web.call_event": {"trigger": "cancel", "reason": "walk", "expected_version": "{call_version}"},
    "web.refer_out_of_hours": {"trigger": "refer", "service": "OOHV", "expected_version": "{call_version}"},
    "web.referral_event": {"trigger": "withdraw", "reason": "walk", "expected_version": "{referral_version}"},
    "web.referral_reroute": {"service": "CRT", "reason": "walk", "expected_version": "{referral_version}"},
    "web.my_referral": {"trigger": "accept", "expected_version": "{referral_version}"},
    "dashboard.transfer": {"centre": "FCP", "reason": "walk", "expected_version": "{call_version}"},
    "dashboard.reroute": {"service": "CRT", "reason": "walk", "expected_version": "{referral_version}"},
    "dashboard.escalate": {"reason": "walk"},
    "api.call_event": {"trigger": "cancel", "reason": "walk", "expected_version": "{call_version}"},
    "api.referral_event": {"trigger": "withdraw", "reason": "walk", "expected_version": "{referral_version}"},
    "api.referral_reroute": {"service": "CRT", "reason": "walk", "expected_version": "{referral_version}"},
    "api.referral_escalate": {"reason": "walk"},
    "api.record_consent": {"consent": "refused", "expected_version": "{call_version}"},
    "web.record_consent": {"consent": "refused", "expected_version": "{call_version}"},
}


def _identifiers(centre: str) -> list[str]:
    p = PEOPLE[centre]
    return [p["given_name"], p["family_name"], p["nhs_number"], p["date_of_birth"], p["postcode"],
            *PHONES[centre], SUMMARIES[centre]]


@pytest.fixture
def world(svc):
    """Both records, every role's user and token, a linked professional record for each professional,
    and a break-glass grant on each record (by a user outside both) for the review routes."""
    actors = {"CNH": Actor("walk.setup.cnh", "handler", "CNH"), "ASC": Actor("walk.setup.asc", "handler", "ASC")}
    records = {}
    for centre, actor in actors.items():
        payload = call_payload(centre=centre, subject=PEOPLE[centre], summary=SUMMARIES[centre],
                               caller={"name": "Walk Caller", "phone": PHONES[centre][0]})
        ref = call_service.log_call(svc, actor, payload, allow_duplicate=True).ref
        call_service.fire_call_trigger(svc, actor, ref, {"trigger": "start_triage", "expected_version": 1})
        call = call_service.fire_call_trigger(svc, actor, ref, {
            "trigger": "refer", "expected_version": 2, "data": {"service": SERVICES[centre]}, "reason": "walk"})
        records[centre] = {"ref": ref, "referral_id": call.referrals[0].id}
    users, tokens, professional_ids = {}, {}, {}
    for name, (username, role, centre, service) in ROLES.items():
        users[name] = make_user(svc, username, role, centre)
        tokens[name] = make_token(svc, users[name])
        if service:
            mobile = {"DN": "07700 900211", "CRT": "07700 900212"}[service]
            professional_ids[service] = add_on_duty(svc, name=username, service=service, mobile=mobile)
            link_user(svc, mobile, users[name].id)
    grants = {centre: break_glass(svc, Actor("walk.outsider", "handler", "FCP"), rec["ref"],
                                  {"reason": "other", "note": "walk"}, route="walk").id
              for centre, rec in records.items()}
    return {"records": records, "tokens": tokens, "grants": grants, "professional_id": professional_ids["DN"]}


def _snapshot(svc, ref: str) -> tuple:
    with svc.uow() as uow:
        s = uow.session
        call = s.execute(select(orm.calls.c.state, orm.calls.c.version, orm.calls.c.centre)
                         .where(orm.calls.c.ref == ref)).one()
        refs = s.execute(select(orm.referrals.c.state, orm.referrals.c.version)
                         .join(orm.calls, orm.calls.c.id == orm.referrals.c.call_id)
                         .where(orm.calls.c.ref == ref).order_by(orm.referrals.c.sent_at)).all()
        audits = s.scalar(select(func.count()).select_from(orm.audit_events)
                          .where(orm.audit_events.c.call_ref == ref))
        outbox = s.scalar(select(func.count()).select_from(orm.outbox))
    return tuple(call), tuple(map(tuple, refs)), audits, outbox


def _versions(svc, ref: str) -> dict:
    call, refs, _, _ = _snapshot(svc, ref)
    return {"call_version": call[1], "referral_version": refs[-1][1] if refs else 1}


def _body(endpoint: str, versions: dict) -> dict:
    body = {k: v.format(**versions) for k, v in BODIES.get(endpoint, {}).items()}
    if endpoint.startswith("api.") and "expected_version" in body:
        body["expected_version"] = int(body["expected_version"])  # JSON clients send numbers
    return body


def _url(rule, record: dict, world: dict, centre: str) -> str:
    values = {}
    for arg in rule.arguments:
        values[arg] = {"ref": record["ref"], "referral_id": record["referral_id"],
                       "token": link_token(record["referral_id"]), "job_id": "no-such-job", "sms_id": "no-such-text",
                       "grant_id": world["grants"][centre], "name": "call", "version": 1,
                       "service": "DN", "shift_id": 999999,
                       "professional_id": world["professional_id"], "call_sid": "CA" + "0" * 32}[arg]
    url = rule.build(values, append_unknown=False)[1]
    if rule.endpoint == "dashboard.calls":
        url += "?centre=CNH&measure=open"
    return url


@pytest.fixture
def walk_app(svc):
    return create_app({"TESTING": True, "SERVICES": svc, "SECRET_KEY": "walk", "WTF_CSRF_ENABLED": False,
                       "BENCH_ENDPOINTS": False, **NO_SIGN_IN_RULES})


def test_every_route_is_classified(walk_app):
    endpoints = {rule.endpoint for rule in walk_app.url_map.iter_rules()}
    assert endpoints - set(ROUTES) == set(), "new routes: decide who may use them (ROUTES)"
    assert set(ROUTES) - endpoints == set(), "routes listed here no longer exist"


def _request(client, rule, method, url, body, api_token):
    if rule.endpoint.startswith("api."):
        return client.open(url, method=method, json=body if method == "POST" else None,
                           headers={"Authorization": f"Bearer {api_token}"})
    return client.open(url, method=method, data=body if method == "POST" else None)


@pytest.mark.parametrize("role", sorted(ROLES))
def test_each_role_on_every_route(walk_app, svc, world, role):
    client = walk_app.test_client()
    username = ROLES[role][0]
    signed = client.post("/login", data={"username": username, "password": PASSWORD})
    assert signed.status_code == 302, signed.get_data(as_text=True)
    token = world["tokens"][role]
    inside = INSIDE[role]
    outside_ids = [i for c in ("CNH", "ASC") if c != inside for i in _identifiers(c)]
    problems = []
    for rule in sorted(walk_app.url_map.iter_rules(), key=lambda r: r.rule):
        kind = ROUTES[rule.endpoint]
        if kind[0] == "skip":
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for centre in ("CNH", "ASC"):
                record = world["records"][centre]
                url = _url(rule, record, world, centre)
                body = _body(rule.endpoint, _versions(svc, record["ref"]))
                before = _snapshot(svc, record["ref"])
                resp = _request(client, rule, method, url, body, token)
                text = resp.get_data(as_text=True)
                where = f"{role} {method} {url}"
                if resp.status_code >= 500:
                    problems.append(f"{where}: {resp.status_code}")
                leaked = [i for i in outside_ids if i in text]
                if leaked:
                    problems.append(f"{where}: shows {leaked}")
                expected = _expected(kind, role, method, centre == inside, rule.endpoint)
                if expected is not None and resp.status_code not in expected:
                    problems.append(f"{where}: {resp.status_code}, expected {sorted(expected)}")
                if kind[0] in ("record", "grant") and centre != inside and _snapshot(svc, record["ref"]) != before:
                    problems.append(f"{where}: changed a record outside the relationship")
                if rule.endpoint == "auth.logout":  # the walk goes on signed in
                    client.post("/login", data={"username": username, "password": PASSWORD})
                if not rule.arguments:
                    break  # one request is enough for a route with no record in it
    assert not problems, "\n".join(problems)


def _expected(kind: tuple, role: str, method: str, inside: bool, endpoint: str) -> set[int] | None:
    if kind[0] == "public":
        return kind[1]
    if kind[0] == "page":
        return {200, 302} if role in kind[1] else {403}
    if kind[0] == "form":  # GET the form; POST it empty: invalid for those allowed, refused for the rest
        return ({200} if method == "GET" else {422}) if role in kind[1] else {403}
    if kind[0] == "form_400":  # GET the form; POST it empty: refused with 400 naming the fields
        return ({200} if method == "GET" else {400}) if role in kind[1] else {403}
    if kind[0] == "no_such_shift":  # a rota's weekly shift that does not exist: not found, else refused
        return {404} if role in kind[1] else {403}
    if kind[0] == "link":  # an SMS link: a professional is sent on to their referral page, which applies the
        # policy; staff to the call's page only if the policy lets them see it, else refused there and then
        # (a redirect would put the reference in the access logs: docs/security.md, "Links in texts")
        if role not in kind[1]:
            return {403}
        return {302} if inside or role in PROFESSIONALS else {403}
    if kind[0] == "post_page":
        return {302} if role in kind[1] else {403}
    if kind[0] == "post_redirect":  # a POST answered with See Other
        return {303} if role in kind[1] else {403}
    if kind[0] == "demo_off":  # the demo's routes, switched off: not found, else refused
        return {404} if role in kind[1] else {403}
    if kind[0] == "no_such_text":  # a text that does not exist, no note: not found or invalid, else refused
        return {400, 404} if role in kind[1] else {403}
    if kind[0] == "api_post":  # an empty body: invalid for those allowed to post, refused for the rest
        return {400, 422} if role in kind[1] else {403}
    if kind[0] == "break_glass":  # no reason given: invalid for those who may break glass, refused for the rest
        return {400, 422} if role in kind[1] else {403}
    if kind[0] == "grant":  # the review of a break-glass access to that centre's call, with no comment
        return ({302} if inside else {403}) if role in kind[1] else {403}
    roles, action = kind[1], kind[2]
    if not inside or role not in roles:
        return {403}
    if method == "GET" and action in ("view", "view_referral", "view_access_log"):
        return {200}
    return None  # acting inside the relationship: whatever the workflow says (but never a 5xx)
