"""The HTTP application: operational endpoints (§4.1-4.4) and the business API (§4.5).

Every refusal is decided before anything is written, so that a refused request leaves
no row and no event; every error, whatever raised it, has the same JSON shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import signal
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import psycopg
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tradehub_reference_hub import CONTRACT_VERSION, __version__
from tradehub_reference_hub.config import Config
from tradehub_reference_hub.entities import ENTITIES, EntitySpec, create_model_for
from tradehub_reference_hub.logs import request_id_var
from tradehub_reference_hub.metrics import CONTENT_TYPE, Metrics
from tradehub_reference_hub.migrations import SCHEMA_VERSION
from tradehub_reference_hub.runtime import DependencyUnavailable, HubRuntime
from tradehub_reference_hub.store import EntityStore

log = logging.getLogger("tradehub.app")
access_log = logging.getLogger("tradehub.access")

MAX_LIMIT = 500
DEFAULT_LIMIT = 50
MAX_OFFSET = 1_000_000_000
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_DIGITS_RE = re.compile(r"^[0-9]{1,10}$")


class ApiError(Exception):
    """A refusal with its status and ``code`` from the table of contract §4.5."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Sequence[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = list(details or [])
        self.headers = headers or {}


def error_response(
    status: int,
    code: str,
    message: str,
    details: Sequence[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = list(details)
    return JSONResponse({"error": error}, status_code=status, headers=headers)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(404, "not_found", f"no such path: {request.url.path}")
    if exc.status_code == 405:
        allow = (exc.headers or {}).get("Allow", "")
        return error_response(
            405,
            "method_not_allowed",
            f"method {request.method} is not allowed here; allowed: {allow}",
            headers={"Allow": allow} if allow else None,
        )
    return error_response(exc.status_code, "http_error", str(exc.detail))


async def _dependency_error(request: Request, exc: Exception) -> Response:
    log.warning("request refused: %s", exc)
    return error_response(503, "dependency_unavailable", str(exc))


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled error", exc_info=exc)
    return error_response(500, "internal_error", "the hub failed to serve the request")


# -- request parsing ---------------------------------------------------------------


def _require_json(request: Request) -> None:
    media_type = request.headers.get("content-type", "").split(";", 1)[0]
    if media_type.strip().lower() != "application/json":
        raise ApiError(
            415,
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
        )


async def read_body(request: Request, limit: int) -> bytes:
    """Read the body, refusing it as soon as it exceeds *limit* bytes.

    A declared Content-Length is refused before reading; a chunked body is counted
    while it arrives, so an endless body never fills the memory.
    """
    too_large = ApiError(
        413,
        "body_too_large",
        f"request body is larger than {limit} bytes (TRADEHUB_MAX_BODY_BYTES)",
        headers={"Connection": "close"},
    )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise ApiError(400, "invalid_json", "request body is empty; send a JSON object")
    try:
        # RFC 8259: JSON exchanged between systems is UTF-8, without a byte order mark.
        document = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(
            400, "invalid_json", f"request body is not valid JSON: {exc}"
        ) from None
    if not isinstance(document, dict):
        raise ApiError(400, "invalid_json", "request body must be a JSON object")
    return document


def _problem(error: Any) -> str:
    kind = error.get("type")
    if kind == "missing":
        return "field required"
    if kind == "extra_forbidden":
        return "unknown field"
    return str(error.get("msg", "invalid value"))


def validation_details(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {
            "field": ".".join(str(part) for part in err["loc"]) or "(body)",
            "problem": _problem(err),
        }
        for err in exc.errors(include_url=False)
    ]


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not _DIGITS_RE.match(raw) or not low <= int(raw) <= high:
        raise ApiError(
            400,
            "invalid_parameter",
            f"{name} must be an integer from {low} to {high}",
            [{"field": name, "problem": f"expected an integer from {low} to {high}"}],
        )
    return int(raw)


def _item_id(request: Request) -> uuid.UUID:
    raw = request.path_params["id"]
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ApiError(
            400,
            "invalid_parameter",
            "id must be a UUID",
            [{"field": "id", "problem": "expected a UUID like 0b8e...-...-..."}],
        ) from None


# -- observation ---------------------------------------------------------------------


class ObserveMiddleware:
    """Request id, access log line and HTTP metrics for every request.

    It wraps the whole application, so it sees the status that really went out,
    including errors rendered by Starlette's outermost middleware.
    """

    def __init__(self, app: ASGIApp, *, routes: Sequence[BaseRoute], metrics: Metrics):
        self.app = app
        self.routes = routes
        self.metrics = metrics

    def route_template(self, scope: Scope) -> str:
        """The template the router will pick, or ``unmatched``: bounded cardinality."""
        partial: str | None = None
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL and isinstance(route, Route):
                return route.path
            if match is Match.PARTIAL and partial is None and isinstance(route, Route):
                partial = route.path
        return partial or "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = Headers(scope=scope).get("x-request-id", "")
        request_id = given if _REQUEST_ID_RE.match(given) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        route = self.route_template(scope)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append("X-Request-ID", request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.observe_request(scope["method"], route, status, elapsed)
            access_log.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "method": scope["method"],
                    "route": route,
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                    "request_id": request_id,
                },
            )
            request_id_var.reset(token)


# -- application ---------------------------------------------------------------------


def create_app(config: Config) -> ASGIApp:
    """Build the ASGI application of the hub named in *config*."""
    entity: EntitySpec = ENTITIES[config.hub]
    model = create_model_for(entity)
    metrics = Metrics(config.hub, __version__, SCHEMA_VERSION)
    runtime = HubRuntime(config, entity, metrics)
    store = EntityStore(entity, config.database_schema)
    version_doc = version_document(config.hub)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "hub": config.hub})

    async def readyz(request: Request) -> Response:
        ready, results = await runtime.readiness()
        body = {
            "status": "ready" if ready else "not_ready",
            "hub": config.hub,
            "failing": [name for name, result in results.items() if not result.ok],
            "checks": {name: result.as_json() for name, result in results.items()},
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    async def version(request: Request) -> Response:
        return JSONResponse(version_doc)

    async def metrics_endpoint(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    async def collection(request: Request) -> Response:
        if request.method == "POST":
            return await create_item(request)
        return await list_items(request)

    async def list_items(request: Request) -> Response:
        limit = _int_param(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        offset = _int_param(request, "offset", 0, 0, MAX_OFFSET)
        async with runtime.connection() as conn:
            items = await store.list(conn, limit, offset)
        return JSONResponse({"items": items, "limit": limit, "offset": offset})

    async def create_item(request: Request) -> Response:
        _require_json(request)
        body = await read_body(request, config.max_body_bytes)
        parse_object(body)
        try:
            values = model.model_validate_json(body).model_dump()
        except ValidationError as exc:
            if any(err["type"] == "json_invalid" for err in exc.errors()):
                raise ApiError(
                    400, "invalid_json", "request body is not valid JSON"
                ) from None
            raise ApiError(
                422,
                "validation_failed",
                "request body does not match the schema",
                validation_details(exc),
            ) from None
        try:
            async with runtime.connection() as conn:
                row = await store.insert(conn, values)
        except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
            # The table's constraints mirror the model, so this is a safety net.
            column = exc.diag.column_name or exc.diag.constraint_name or "(body)"
            raise ApiError(
                422,
                "validation_failed",
                "the database refused the row",
                [{"field": column, "problem": exc.diag.message_primary or "invalid"}],
            ) from None
        # The transaction is committed here: only now may the event go out.
        await runtime.publish("created", row)
        location = f"{entity.collection_path}/{row['id']}"
        return JSONResponse(row, status_code=201, headers={"Location": location})

    async def get_item(request: Request) -> Response:
        item_id = _item_id(request)
        async with runtime.connection() as conn:
            row = await store.get(conn, item_id)
        if row is None:
            raise ApiError(404, "not_found", f"no {entity.singular} with id {item_id}")
        return JSONResponse(row)

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route(entity.collection_path, collection, methods=["GET", "POST"]),
        Route(entity.item_path, get_item, methods=["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        log.info("starting %s hub %s", config.hub, __version__, extra=config.summary())
        await runtime.start()
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGHUP, runtime.reload_license)
            hup = True
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            hup = False
        try:
            yield
        finally:
            if hup:
                loop.remove_signal_handler(signal.SIGHUP)
            await runtime.stop()

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            DependencyUnavailable: _dependency_error,
            Exception: _internal_error,
        },
    )
    # One URL per resource: a trailing slash is a 404, not a redirect.
    app.router.redirect_slashes = False
    app.state.runtime = runtime
    return ObserveMiddleware(app, routes=routes, metrics=metrics)


def version_document(hub: str) -> dict[str, Any]:
    """The ``/version`` document, also printed by ``tradehub-hub version``."""
    return {
        "hub": hub,
        "version": __version__,
        "schema_version": SCHEMA_VERSION,
        "contract": CONTRACT_VERSION,
    }
