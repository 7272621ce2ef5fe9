"""The OpenAPI 3.1 document of /api/v1. Request schemas come from the pydantic commands the API
validates with, so the document cannot drift from the validation."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from ..service.commands import DecideRoute, FireTrigger, LogCall
from .. import __version__


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
    }}},
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
    },
}


def _responses(ok: int, schema: dict[str, Any] | None, *errors: int) -> dict[str, Any]:
    out: dict[str, Any] = {str(ok): {"description": "OK", **(_json(schema) if schema else {})}}
    text = {400: "Body is not JSON", 401: "No or bad token", 403: "Role not allowed", 404: "Not found",
            409: "Version conflict or possible duplicate", 422: "Invalid fields or trigger not allowed"}
    for code in (401, 403, *errors):
        out[str(code)] = {"description": text[code], **_json(_ref("Error"))}
    return out


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    schemas: dict[str, Any] = {"Error": ERROR, "RoutingDecision": DECISION}
    for model in (LogCall, FireTrigger, DecideRoute):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in schema.pop("$defs", {}).items():
            schemas[name] = sub
        schemas[model.__name__] = schema
    created = {"type": "object", "properties": {
        "ref": {"type": "string"}, "state": {"type": "string"}, "version": {"type": "integer"},
        "recommended_route": _ref("RoutingDecision")}}
    ref_param = [{"name": "ref", "in": "path", "required": True, "schema": {"type": "string"}}]
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
                                "description": "Log even if open calls exist for the NHS number"}],
                "requestBody": {"required": True, **_json(_ref("LogCall"))},
                "responses": _responses(201, created, 400, 409, 422)}},
            "/calls/{ref}": {"get": {
                "summary": "A call with its referrals, history and allowed triggers",
                "parameters": ref_param, "responses": _responses(200, {"type": "object"}, 404)}},
            "/calls/{ref}/events": {"post": {
                "summary": "Apply a trigger to a call",
                "parameters": ref_param,
                "requestBody": {"required": True, **_json(_ref("FireTrigger"))},
                "responses": _responses(200, {"type": "object"}, 400, 404, 409, 422)}},
            "/calls/{ref}/referrals/{referral_id}/events": {"post": {
                "summary": "Apply a trigger to one of a call's referrals",
                "parameters": ref_param + [{"name": "referral_id", "in": "path", "required": True,
                                            "schema": {"type": "string"}}],
                "requestBody": {"required": True, **_json(_ref("FireTrigger"))},
                "responses": _responses(200, {"type": "object"}, 400, 404, 409, 422)}},
            "/queues": {"get": {
                "summary": "Per centre and per service: counts by state and oldest wait in seconds",
                "responses": _responses(200, {"type": "object"})}},
            "/routing/decide": {"post": {
                "summary": "The route the table recommends; nothing is stored",
                "requestBody": {"required": True, **_json(_ref("DecideRoute"))},
                "responses": _responses(200, _ref("RoutingDecision"), 400, 422)}},
            "/openapi.json": {"get": {"summary": "This document",
                                      "responses": _responses(200, {"type": "object"})}},
        },
    }
