"""``/openapi.json`` as the contract clients generate code from: bearer security where a key is checked, every
error as ``application/problem+json`` (:mod:`herald.web.api.problems` answers them), the answers' models.

The error statuses every operation shares are added here, from what the operation is: an authenticated one can
answer 401, one with a path parameter 404, one that takes input 422, and any 500 and 503 (a database outage). Statuses only some routes answer (403, 409, 413, 429...) are named on the route with :func:`answers`
or :func:`errors`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from herald.web.api.deps import BEARER, BEARER_SCHEME
from herald.web.api.problems import MEDIA_TYPE

# Not behind a tenant key, yet guarded by a bearer token when the operator sets HERALD_METRICS_TOKEN.
OPTIONAL_BEARER = {("get", "/metrics")}
TITLES = {
    401: "Unauthorized: no valid credentials (an API key, or the caller's signature)",
    403: "Forbidden: the key may not do this",
    404: "Not found",
    409: "Conflict with the object's state, or an idempotency key reused with another body",
    410: "Gone",
    413: "Content too large",
    422: "Unprocessable content: the field at fault is named",
    429: "Too many requests (see Retry-After)",
    500: "Internal server error",
    503: "Service unavailable (see Retry-After)",
}

# On every create that takes one (herald.web.api.idempotency): the same key and body replay the first answer.
IDEMPOTENT: dict[str, Any] = {
    "parameters": [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "description": "retry safely: the same key and body answer the first answer again; another body is a 409",
            "schema": {"type": "string", "minLength": 1, "maxLength": 200},
        }
    ]
}


class FieldError(BaseModel):
    """One field at fault, by dotted path (``body`` for the body as a whole)."""

    field: str
    message: str


class ProblemDetails(BaseModel):
    """RFC 9457 problem details: every error Herald answers, as ``application/problem+json``."""

    type: str = Field(default="about:blank", description="always about:blank: the status says it all")
    title: str
    status: int
    detail: str = Field(description="what went wrong, in words (for a 422 the fields at fault and why)")
    instance: str | None = Field(default=None, description="the path of the request")
    errors: list[FieldError] | None = Field(default=None, description="the fields at fault, when known")


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Error answers a route gives besides the shared ones (their schema is filled in by :func:`install`)."""
    return {status: {"description": TITLES[status]} for status in statuses}


def answers(model: Any, status: int = 200, *, also: Iterable[int] = ()) -> dict[str, Any]:
    """Route keyword arguments documenting ``model`` as the answer without filtering it at run time: the route
    builds its body itself (often as plain JSON already), and the answer stays byte for byte what it was. The
    contract tests check real answers against the model."""
    return {"response_model": None, "responses": {status: {"model": model}, **errors(*also)}}


def install(app: FastAPI) -> None:
    """Serve the customised specification at ``/openapi.json`` (built once, then cached like FastAPI's)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def build(app: FastAPI) -> dict[str, Any]:
    spec = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    components = spec.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for model in (FieldError, ProblemDetails):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schema.pop("$defs", None)
        schemas[model.__name__] = schema
    components.setdefault("securitySchemes", {})[BEARER] = BEARER_SCHEME
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            _declare(operation, method, path)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return spec


def _declare(operation: dict[str, Any], method: str, path: str) -> None:
    """Security and the shared error answers of one operation; every error's body is a problem.

    FastAPI declares the bearer scheme on the operations whose dependencies check the key (see
    :func:`herald.web.api.deps.authenticate`); every other operation is public by design and says so."""
    authenticated = "security" in operation
    if (method, path) in OPTIONAL_BEARER:
        operation["security"] = [{}, {BEARER: []}]
        authenticated = True
    operation.setdefault("security", [])
    shared = {500, 503}  # any route; each reads the database (an outage answers 503)
    if authenticated:
        shared.add(401)
    parameters = operation.get("parameters", [])
    if any(p["in"] == "path" for p in parameters):
        shared.add(404)
    if "requestBody" in operation or any(p["in"] != "path" for p in parameters):
        shared.add(422)
    responses: dict[str, Any] = operation.setdefault("responses", {})
    for code in sorted(shared):
        responses.setdefault(str(code), {"description": TITLES[code]})
    problem = {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}
    for status, response in responses.items():
        if status[0] in "45" and _is_default_error(response):
            response["content"] = problem
            if status == "422":
                response["description"] = TITLES[422]
    for status, response in responses.items():
        content = response.get("content", {})
        if (
            status.startswith("2")
            and len(content) > 1
            and content.get("application/json", {}).get("schema") == {}
        ):
            del content["application/json"]  # FastAPI's default beside the media type the route declares


def _is_default_error(response: dict[str, Any]) -> bool:
    """No body declared, or FastAPI's own 422: an error answered by the problem handlers."""
    content = response.get("content")
    if not content:
        return True
    schema = content.get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/HTTPValidationError"))
