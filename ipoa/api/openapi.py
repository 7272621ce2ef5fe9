"""The OpenAPI 3.1 document of /api/v1. Request schemas come from the pydantic input models the API
validates with, so the document cannot drift from the validation."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from .. import __version__
from ..domain.access import BREAK_GLASS_NOTE_REQUIRED, BREAK_GLASS_REASONS, NOTE_MAX
from ..domain.sharing import BASES, CONSENT, LAWFUL_BASES, REASON_MAX
from ..service.calls import RerouteReferral
from ..service.inputs import CONSENT_OVERRIDE_DOC, DecideRoute, FireTrigger, LogCall, RecordConsent


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string"}, "message": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": {"type": "string"},
                   "description": "Field path (dotted) -> what is wrong with it"},
        "allowed": {"type": "array", "items": {"type": "string"}},
        "current_version": {"type": ["integer", "null"]},
        "break_glass": {"type": "string", "description": "With code outside_relationship, when the user's "
                        "role may open the call by break-glass: how to (POST /calls/{ref}/break-glass)"},
    }}},
}
CONSENT_OVERRIDE = {
    "type": "object",
    "description": CONSENT_OVERRIDE_DOC + " Malformed (not an object, an unknown basis, a missing or "
                   "over-long reason): 422 with fields data.consent_override.basis / .reason.",
    "required": ["basis", "reason"],
    "additionalProperties": False,
    "properties": {
        "basis": {"type": "string", "enum": list(LAWFUL_BASES),
                  "description": "; ".join(f"{k}: {v}" for k, v in LAWFUL_BASES.items())},
        "reason": {"type": "string", "minLength": 1, "maxLength": REASON_MAX},
    },
}
CONSENT_RECORDED = {
    "type": "object",
    "required": ["ref", "state", "version", "consent", "consent_recorded_by", "consent_recorded_at"],
    "properties": {
        "ref": {"type": "string"}, "state": {"type": "string"},
        "version": {"type": "integer", "description": "The call's new version"},
        "consent": {"type": "string", "enum": list(CONSENT)},
        "consent_recorded_by": {"type": "string"},
        "consent_recorded_at": {"type": "string", "format": "date-time"},
    },
}
BREAK_GLASS = {
    "type": "object",
    "required": ["reason"],
    "additionalProperties": False,
    "properties": {
        "reason": {"type": "string", "enum": list(BREAK_GLASS_REASONS),
                   "description": "; ".join(f"{k}: {v}" for k, v in BREAK_GLASS_REASONS.items())},
        "note": {"type": ["string", "null"], "maxLength": NOTE_MAX,
                 "description": "Why; required for " + ", ".join(sorted(BREAK_GLASS_NOTE_REQUIRED))},
    },
}
BREAK_GLASS_GRANTED = {
    "type": "object",
    "required": ["ref", "grant_id", "reason", "expires_at"],
    "properties": {
        "ref": {"type": "string"}, "grant_id": {"type": "integer"},
        "reason": {"type": "string", "enum": list(BREAK_GLASS_REASONS)},
        "expires_at": {"type": "string", "format": "date-time",
                       "description": "The opening lasts until then; every view is recorded"},
    },
}
ACCESS_LOG = {
    "type": "object",
    "required": ["ref", "views"],
    "properties": {
        "ref": {"type": "string"},
        "views": {"type": "array", "description": "Oldest first", "items": {
            "type": "object",
            "required": ["at", "username", "name", "role", "centre", "route", "why", "referral_id"],
            "properties": {
                "at": {"type": "string", "format": "date-time"}, "username": {"type": "string"},
                "name": {"type": ["string", "null"]}, "role": {"type": "string"},
                "centre": {"type": ["string", "null"]},
                "route": {"type": "string", "description": "Where it was seen, e.g. 'GET /calls/<ref>'"},
                "why": {"type": "string", "description": "The relationship that allowed it (own_centre, "
                        "transferred, own_service) or break_glass"},
                "referral_id": {"type": ["string", "null"]}}}},
    },
}
DECISION = {
    "type": "object",
    "required": ["tier", "service", "outcome", "locality", "rule"],
    "properties": {
        "tier": {"type": "integer", "enum": [1, 2, 3]},
        "service": {"type": ["string", "null"]},
        "outcome": {"type": ["string", "null"], "enum": ["divert_999", "resolved_at_first_contact", None]},
        "locality": {"type": ["string", "null"]},
        "rule": {"type": "string", "description": "The id of the routing row that decided"},
        "reason": {"type": "string"},
        "out_of_area": {"type": "boolean"},
        "alert_supervisor": {"type": "boolean"},
        "next_open": {"type": ["string", "null"], "format": "date-time"},
        "out_of_hours": {
            "type": ["object", "null"],
            "description": "While the recommended service is closed (next_open set): the routing table's "
                           "out-of-hours alternative, offered only when it is open now; absent otherwise. Refer to it "
                           "with data.out_of_hours_alternative: true and no reason is needed.",
            "required": ["service", "open_now"],
            "properties": {"service": {"type": "string"}, "open_now": {"type": "boolean"}}},
    },
}


CLOCK = {
    "type": "object",
    "description": "A running SLA clock of the call (referral_id null) or of one of its referrals. A clock "
                   "that breached stays listed, overdue, until it stops.",
    "required": ["clock", "due_at", "remaining", "overdue", "seconds_left", "rule", "referral_id", "breached"],
    "properties": {
        "clock": {"type": "string", "enum": ["triage", "acceptance", "response", "callback"]},
        "due_at": {"type": "string", "format": "date-time", "description": "UTC"},
        "due_local": {"type": "string", "description": "Due time in Europe/London, e.g. 'Mon 23 Nov 10:15'; "
                      "a time in the hour that happens twice says which, 'Sun 25 Oct 01:30 GMT'"},
        "remaining": {"type": "string", "description": "'due in 12 min', 'overdue by 3 min', 'due now'"},
        "overdue": {"type": "boolean"},
        "seconds_left": {"type": "integer", "description": "Negative once overdue"},
        "rule": {"type": "string", "description": "What set the due time, e.g. 'urgent: 15 min'"},
        "referral_id": {"type": ["string", "null"]},
        "breached": {"type": "boolean", "description": "The clock ran out and was escalated"},
    },
}
BREACH = {
    "breach": {"type": ["string", "null"], "enum": ["triage", "acceptance", "response", "callback", None],
               "description": "The SLA clock that ran out (the latest), or null; never cleared"},
    "breached_at": {"type": ["string", "null"], "format": "date-time"},
}
CALL = {
    "type": "object",
    "description": "A call with its referrals, history, allowed triggers, running SLA clocks and breaches.",
    "properties": {
        "ref": {"type": "string"}, "state": {"type": "string"}, "version": {"type": "integer"},
        "centre": {"type": "string"}, "urgency": {"type": "string"},
        "subject": {"type": "object", "description": "The person the call is about (null where not known, "
                    "or removed under retention)", "properties": {
            "nhs_number": {"type": ["string", "null"]}, "given_name": {"type": "string"},
            "family_name": {"type": "string"}, "date_of_birth": {"type": ["string", "null"], "format": "date"},
            "postcode": {"type": ["string", "null"]},
            "address_line_1": {"type": ["string", "null"], "description": "The first line of the address"},
            "town": {"type": ["string", "null"], "description": "The town or city"}}},
        "callback_due": {"type": ["string", "null"], "format": "date-time"},
        **BREACH,
        "clocks": {"type": "array", "items": {"$ref": "#/components/schemas/Clock"},
                   "description": "The call's and its referrals' running clocks, soonest due first"},
        "consent": {"type": ["string", "null"], "enum": [*CONSENT, None],
                    "description": "Consent to share with services of other organisations; null on calls "
                                   "logged before it was asked (treated as not_asked)"},
        "consent_recorded_by": {"type": ["string", "null"]},
        "consent_recorded_at": {"type": ["string", "null"], "format": "date-time"},
        "referrals": {"type": "array", "items": {"type": "object", "properties": {
            "id": {"type": "string"}, "service": {"type": "string"}, "state": {"type": "string"},
            "version": {"type": "integer"}, **BREACH,
            "sharing_basis": {"type": ["string", "null"], "enum": [*BASES, None],
                              "description": "Why the details could go to this service"},
            "sharing_reason": {"type": ["string", "null"],
                               "description": "The reason given with a lawful basis (an override)"}}}},
        "allowed_triggers": {"type": "array", "items": {"type": "string"}},
        "history": {"type": "array", "items": {"type": "object"}},
    },
}
REFERRAL_BRIEF = {"type": "object", "properties": {
    "id": {"type": "string"}, "service": {"type": "string"}, "state": {"type": "string"},
    "version": {"type": "integer"}}}
REROUTED = {
    "type": "object",
    "required": ["ref", "state", "version", "withdrawn", "referral"],
    "properties": {
        "ref": {"type": "string"}, "state": {"type": "string", "description": "The call's state: referred"},
        "version": {"type": "integer", "description": "The call's new version"},
        "withdrawn": {**REFERRAL_BRIEF, "description": "The referral withdrawn"},
        "referral": {**REFERRAL_BRIEF, "description": "The new referral, sent"},
    },
}


def _responses(ok: int, schema: dict[str, Any] | None, *errors: int, body: bool = False) -> dict[str, Any]:
    """Every answer an operation can give: 400 (a query parameter with characters not allowed, or a body
    that is not JSON), 401 and 403 always; 404 where the path names a record; 413 and 422 with a body."""
    out: dict[str, Any] = {str(ok): {"description": "OK", **(_json(schema) if schema else {})}}
    text = {400: "A query parameter holds a character not allowed (code bad_request); with a body: the body "
                 "is not JSON (bad_request), or is nested more than 32 levels deep (too_deep); an "
                 "Idempotency-Key that is not 1 to 200 printable ASCII characters (invalid_idempotency_key)",
            401: "No token, or an unknown or revoked one (code unauthorised), or an expired one (code "
                 "token_expired, saying when it expired)",
            403: "Role not allowed (code forbidden), or no relationship with the call (code "
                 "outside_relationship, with a break_glass hint when the role may open it by break-glass)",
            404: "Not found (also for a path value with a control character, or longer than 200 characters)",
            409: "Version conflict (code version_conflict), a possible duplicate (code possible_duplicate), "
                 "or, with an Idempotency-Key, the first request with that key still running (code "
                 "idempotency_in_progress, with Retry-After) or taken over by a retry (idempotency_superseded): "
                 "retry with the same key",
            413: "The body is larger than 64 KiB (code too_large); refused before it is read",
            422: "Invalid fields (each named in fields; a text with a control character such as NUL, or a "
                 "bidirectional override, is invalid), or a trigger not allowed now; with an "
                 "Idempotency-Key, the key used before for another request",
            429: "Escalated too recently (code too_soon): Retry-After gives the seconds until it may be "
                 "repeated, retry_at the time (UTC)"}
    codes = {400, 401, 403, *errors} | ({413, 422} if body else set())
    for code in sorted(codes):
        out[str(code)] = {"description": text[code], **_json(_ref("Error"))}
    return out


def _with_enum(prop: dict[str, Any], values: tuple[str, ...]) -> None:
    """Give a string property (or the string branch of an optional one) its allowed values."""
    if not values:
        return
    for branch in prop.get("anyOf", [prop]):
        if branch.get("type") == "string":
            branch["enum"] = list(values)
            branch.pop("pattern", None)


def _trigger_schema(base: dict[str, Any], triggers: tuple[str, ...], what: str) -> dict[str, Any]:
    schema = {**base, "properties": {**base["properties"]}, "title": what}
    schema["properties"]["trigger"] = {**base["properties"]["trigger"]}
    _with_enum(schema["properties"]["trigger"], triggers)
    return schema


def document_for(catalogue: Any) -> dict[str, Any]:
    """The document for a loaded catalogue (workflows/): its centres, needs, services, and the triggers
    clients may send (every version's, less internal ones)."""
    triggers: dict[str, set[str]] = {}
    for wf in catalogue.workflows:
        triggers.setdefault(wf.name, set()).update(t.trigger for t in wf.transitions if not t.internal)
    return document(centres=tuple(catalogue.directory.centres), needs=tuple(catalogue.routing.needs),
                    services=tuple(catalogue.directory.services),
                    call_triggers=tuple(sorted(triggers.get("call", ()))),
                    referral_triggers=tuple(sorted(triggers.get("referral", ()))))


@lru_cache(maxsize=8)
def document(centres: tuple[str, ...] = (), needs: tuple[str, ...] = (), services: tuple[str, ...] = (),
             call_triggers: tuple[str, ...] = (), referral_triggers: tuple[str, ...] = ()) -> dict[str, Any]:
    """The document; with the deployed directory's centres, needs and services, and the workflows' triggers,
    as enums (so clients, and the fuzzing in tests/security, can send values that succeed)."""
    schemas: dict[str, Any] = {"Error": ERROR, "RoutingDecision": DECISION, "Clock": CLOCK, "Call": CALL,
                               "Rerouted": REROUTED, "ConsentOverride": CONSENT_OVERRIDE,
                               "ConsentRecorded": CONSENT_RECORDED, "BreakGlass": BREAK_GLASS,
                               "BreakGlassGranted": BREAK_GLASS_GRANTED, "AccessLog": ACCESS_LOG}
    for model in (LogCall, FireTrigger, DecideRoute, RerouteReferral, RecordConsent):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in schema.pop("$defs", {}).items():
            schemas[name] = sub
        schemas[model.__name__] = schema
    # data is free-form per trigger; name the inputs refer takes so clients see the override's shape.
    schemas["FireTrigger"]["properties"]["data"].update(properties={
        "service": {"type": "string", "description": "refer: the service's code (directory.yaml)"},
        "consent_override": _ref("ConsentOverride"),
        "centre": {"type": "string", "description": "transfer: the centre's code"},
        "callback_at": {"type": "string", "format": "date-time",
                        "description": "promise_callback: in the future, at most 30 days ahead"},
        "out_of_hours_alternative": {
            "type": "boolean",
            "description": "refer: true to take the routing table's out-of-hours alternative (the call's "
                           "recommendation's out_of_hours.service, as the table decides now): no reason is "
                           "needed, and the route is audited as such. For any other service, or when none "
                           "is offered now: 400 not_offered naming data.service, nothing stored"}},
        additionalProperties=True)
    data_props = schemas["FireTrigger"]["properties"]["data"]["properties"]
    _with_enum(data_props["service"], services)
    _with_enum(data_props["centre"], centres)
    _with_enum(schemas["LogCall"]["properties"]["centre"], centres)
    _with_enum(schemas["LogCall"]["properties"]["need"], needs)
    _with_enum(schemas["DecideRoute"]["properties"]["centre"], centres)
    _with_enum(schemas["DecideRoute"]["properties"]["need"], needs)
    _with_enum(schemas["RerouteReferral"]["properties"]["service"], services)
    schemas["CallTrigger"] = _trigger_schema(schemas["FireTrigger"], call_triggers, "CallTrigger")
    schemas["ReferralTrigger"] = _trigger_schema(schemas["FireTrigger"], referral_triggers, "ReferralTrigger")
    reroute_override = schemas["RerouteReferral"]["properties"]["consent_override"]
    schemas["RerouteReferral"]["properties"]["consent_override"] = {
        "anyOf": [_ref("ConsentOverride"), {"type": "null"}], "default": None,
        "description": reroute_override.get("description", "")}
    created = {"type": "object", "properties": {
        "ref": {"type": "string"}, "state": {"type": "string"}, "version": {"type": "integer"},
        "recommended_route": _ref("RoutingDecision")}}
    # docs/security.md, "Races and retries"; ipoa/api/idempotency.py.
    idempotency = {"name": "Idempotency-Key", "in": "header", "required": False,
                   "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                   "description": "A key the client makes up for this request (a UUID, say). A retry with "
                                  "the same key gets the first answer, status and body, with "
                                  "Idempotent-Replayed: true, and changes nothing. Kept 24 hours per user."}

    def keyed(responses: dict[str, Any]) -> dict[str, Any]:
        for code, answer in responses.items():
            if code.startswith("2"):
                answer["headers"] = {"Idempotent-Replayed": {
                    "description": "true when this is the stored answer to an earlier request with the key",
                    "schema": {"type": "string", "enum": ["true"]}}}
        return responses

    ref_param = [{"name": "ref", "in": "path", "required": True, "schema": {"type": "string"},
                  "description": "The call's reference, e.g. 'K7QX-3M9P'"}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "ipoa API", "version": __version__,
                 "description": "Call intake, triage and routing for Integrated Points of Access."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": {
            "/calls": {"post": {
                "summary": "Log a call",
                "parameters": [{"name": "allow_duplicate", "in": "query", "schema": {"type": "boolean"},
                                "description": "Log even if open calls exist for the NHS number"},
                               idempotency],
                "requestBody": {"required": True, **_json(_ref("LogCall"))},
                "responses": keyed(_responses(201, created, 409, body=True))}},
            "/calls/{ref}": {"get": {
                "summary": "A call with its referrals, history, allowed triggers, SLA clocks and breaches",
                "description": "Only for users with a relationship to the call (its centre's staff, the "
                               "centres it was transferred to or from). Anyone else gets 403 with code "
                               "outside_relationship and, where the role allows it, a break_glass hint: "
                               "POST /calls/{ref}/break-glass with a reason opens it for a limited time. "
                               "Every read is recorded in the call's access log.",
                "parameters": ref_param, "responses": _responses(200, _ref("Call"), 404)}},
            "/calls/{ref}/events": {"post": {
                "summary": "Apply a trigger to a call",
                "description": "refer takes data.service and, for a service of another organisation than "
                               "the centre's when the person's consent is refused or not_asked, "
                               "data.consent_override {basis, reason} (schema ConsentOverride). Without it "
                               "the refer is refused: 422 guard_failed with the field 'consent' saying which "
                               "organisation runs the service and what the consent is; nothing is stored. "
                               "Sharing within one organisation needs no consent step. While the "
                               "recommended service is closed, refer with data.out_of_hours_alternative: "
                               "true takes the routing table's out-of-hours alternative without a reason; "
                               "a claim the table does not make now is 400 not_offered, nothing stored.",
                "parameters": ref_param + [idempotency],
                "requestBody": {"required": True, **_json(_ref("CallTrigger"))},
                "responses": keyed(_responses(200, {"type": "object"}, 404, 409, body=True))}},
            "/calls/{ref}/consent": {"post": {
                "summary": "Record the person's consent to share as it is now",
                "description": "Audited on the call (trigger record_consent, data {from, to}); who and when "
                               "are the caller and now. The call's version moves: expected_version is the "
                               "call's, and a stale one is 409. 422 for an unknown consent or the consent "
                               "already recorded. Governs referrals from now on; those sent keep their basis.",
                "parameters": ref_param,
                "requestBody": {"required": True, **_json(_ref("RecordConsent"))},
                "responses": _responses(200, _ref("ConsentRecorded"), 404, 409, body=True)}},
            "/calls/{ref}/break-glass": {"post": {
                "summary": "Open one call outside the user's relationship, with a reason, for a limited time",
                "description": "For roles that may break glass; the opening is recorded, shown on the call "
                               "and reviewed by the supervisors of the centre holding it. 403 code forbidden "
                               "when the role may not, or when the user can already see the call; 422 for "
                               "an unknown reason or a missing note for 'other'.",
                "parameters": ref_param,
                "requestBody": {"required": True, **_json(_ref("BreakGlass"))},
                "responses": _responses(201, _ref("BreakGlassGranted"), 404, body=True)}},
            "/calls/{ref}/access-log": {"get": {
                "summary": "Supervisors: who has viewed the call's record",
                "description": "For the supervisors of the centres the call has been with; anyone else "
                               "gets 403 with code outside_relationship.",
                "parameters": ref_param,
                "responses": _responses(200, _ref("AccessLog"), 404)}},
            "/calls/{ref}/referrals/{referral_id}/events": {"post": {
                "summary": "Apply a trigger to one of a call's referrals",
                "description": "The referring centre's triggers only (withdraw, with a reason). Accept, "
                               "decline, start and complete are the receiving service's: its "
                               "professionals take them on their own page or by text, and anyone else "
                               "gets 403 and nothing is stored.",
                "parameters": ref_param + [{"name": "referral_id", "in": "path", "required": True,
                                            "schema": {"type": "string"}}, idempotency],
                "requestBody": {"required": True, **_json(_ref("ReferralTrigger"))},
                "responses": keyed(_responses(200, {"type": "object"}, 404, 409, body=True))}},
            "/calls/{ref}/referrals/{referral_id}/reroute": {"post": {
                "summary": "Supervisors: withdraw a referral not yet accepted and refer the call to another "
                           "service, in one action",
                "description": "The referral (state sent) is withdrawn with the reason, the call goes back "
                               "to triage and is referred to `service` with the same reason, in one "
                               "transaction. `expected_version` is the referral's version. 403 for "
                               "handlers; 409 if the referral changed; 422 for a missing reason, an "
                               "unknown or the same service, or a referral no longer in state sent; and, "
                               "like refer, 422 with the field 'consent' for a service of another "
                               "organisation the consent does not allow, unless consent_override gives a "
                               "lawful basis and a reason.",
                "parameters": ref_param + [{"name": "referral_id", "in": "path", "required": True,
                                            "schema": {"type": "string"}}],
                "requestBody": {"required": True, **_json(_ref("RerouteReferral"))},
                "responses": _responses(200, _ref("Rerouted"), 404, 409, body=True)}},
            "/calls/{ref}/referrals/{referral_id}/escalate": {"post": {
                "summary": "Supervisors: text the receiving service's duty lead about an open referral now",
                "description": "Audited on the referral (state and version unchanged); the text carries the "
                               "call reference, service, urgency, the running clock's due time and the "
                               "secure link, never the reason. 403 for handlers; 422 without a reason or "
                               "for a referral no longer open (sent, accepted or in progress); 429 with "
                               "Retry-After within ESCALATION_REPEAT_MINUTES (default 10) of the last "
                               "escalation by hand.",
                "parameters": ref_param + [{"name": "referral_id", "in": "path", "required": True,
                                            "schema": {"type": "string"}}],
                "requestBody": {"required": True, **_json({
                    "type": "object", "required": ["reason"], "additionalProperties": False,
                    "properties": {"reason": {"type": "string", "maxLength": 2000}}})},
                "responses": _responses(200, {"type": "object"}, 404, 429, body=True)}},
            "/queues": {"get": {
                "summary": "Per centre and per service: counts by state and oldest wait in seconds",
                "responses": _responses(200, {"type": "object"})}},
            "/routing/decide": {"post": {
                "summary": "The route the table recommends; nothing is stored",
                "requestBody": {"required": True, **_json(_ref("DecideRoute"))},
                "responses": _responses(200, _ref("RoutingDecision"), body=True)}},
            "/openapi.json": {"get": {"summary": "This document",
                                      "responses": _responses(200, {"type": "object"})}},
        },
    }
