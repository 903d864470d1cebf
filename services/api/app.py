"""create_app(settings, engine): Api, blueprints, auth, error handlers, /metrics, /docs."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    gc_collector,
    generate_latest,
    platform_collector,
    process_collector,
)
from sqlalchemy import Engine

from services.api.auth import API_PREFIX, ApiContext, require_token
from services.api.console import register_console
from services.api.core.operations import dead_letters_of
from services.api.docs import OPENAPI_CONFIG, SECURITY_SCHEME, register_docs
from services.api.errors import Api
from services.api.resources import (
    campaigns,
    clients,
    health,
    notifications,
    operations,
    preview_send,
    receipts,
    stats,
    templates,
    token,
    unsubscribe,
    webhooks,
)
from shared.config import Settings
from shared.logging import correlation_id
from shared.outbox import OutboxBacklog

REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Probes and scrapes come every few seconds; a line each would bury the requests that matter.
UNLOGGED_PATHS = ("/metrics", "/healthz", "/readyz")

log = logging.getLogger("services.api.requests")


class Metrics:
    """Request counters on a registry of the app's own, so several apps can share a process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        process_collector.ProcessCollector(registry=self.registry)
        platform_collector.PlatformCollector(registry=self.registry)
        gc_collector.GCCollector(registry=self.registry)
        self.requests = Counter(
            "herald_api_requests_total",
            "HTTP requests served",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "herald_api_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
        )

    def observe(self, response: Response) -> Response:
        """after_request hook; the route label is the URL rule, so ids do not explode it."""
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        self.requests.labels(request.method, route, str(response.status_code)).inc()
        self.duration.labels(request.method, route).observe(elapsed)
        return response

    def serve(self) -> Response:
        return Response(generate_latest(self.registry), content_type=CONTENT_TYPE_LATEST)


def start_request() -> None:
    """Time the request and adopt the caller's X-Request-ID if well-formed, else make one."""
    g.started = time.perf_counter()
    given = request.headers.get("X-Request-ID", "")
    g.request_id = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    # Every log line of this request, and the events it records, carry the id.
    g.log_token = correlation_id.set(g.request_id)


def echo_request_id(response: Response) -> Response:
    response.headers["X-Request-ID"] = g.get("request_id") or uuid.uuid4().hex
    return response


def log_request(response: Response) -> Response:
    """One line per API request: method, route, status and duration, with its request id."""
    if request.path not in UNLOGGED_PATHS:
        log.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "route": request.url_rule.rule if request.url_rule is not None else None,
                "status": response.status_code,
                "duration_s": round(time.perf_counter() - g.get("started", 0.0), 4),
            },
        )
    return response


def forget_request_id(_exc: BaseException | None) -> None:
    token = g.pop("log_token", None)
    if token is not None:
        correlation_id.reset(token)


def create_app(
    settings: Settings, engine: Engine, broker_ready: Callable[[], bool] | None = None
) -> Flask:
    """Build the API app around its settings, database engine and broker readiness check."""
    app = Flask("herald.api")
    app.config.update(OPENAPI_CONFIG, MAX_CONTENT_LENGTH=settings.max_request_bytes)
    app.extensions["herald"] = ApiContext(settings, engine, broker_ready or (lambda: True))
    app.extensions[operations.DEAD_LETTERS] = dead_letters_of(settings)

    metrics = Metrics()
    metrics.registry.register(OutboxBacklog(engine))
    # Order matters: timing and the request id must exist before auth can refuse a request.
    app.before_request(start_request)
    app.before_request(require_token)
    app.after_request(metrics.observe)
    app.after_request(echo_request_id)
    app.after_request(log_request)
    app.teardown_request(forget_request_id)
    app.add_url_rule("/metrics", "metrics", metrics.serve)
    register_docs(app)
    register_console(app)

    api = Api(app)
    api.spec.components.security_scheme(SECURITY_SCHEME, {"type": "http", "scheme": "bearer"})
    api.register_blueprint(health.blp)
    api.register_blueprint(clients.blp, url_prefix=f"{API_PREFIX}/clients")
    api.register_blueprint(campaigns.blp, url_prefix=f"{API_PREFIX}/campaigns")
    api.register_blueprint(preview_send.blp, url_prefix=f"{API_PREFIX}/campaigns")
    api.register_blueprint(unsubscribe.blp)
    api.register_blueprint(notifications.blp, url_prefix=f"{API_PREFIX}/notifications")
    api.register_blueprint(templates.blp, url_prefix=f"{API_PREFIX}/templates")
    api.register_blueprint(webhooks.blp, url_prefix=f"{API_PREFIX}/webhooks")
    api.register_blueprint(stats.blp, url_prefix=API_PREFIX)
    api.register_blueprint(receipts.blp, url_prefix=f"{API_PREFIX}/receipts")
    api.register_blueprint(token.blp, url_prefix=f"{API_PREFIX}/token")
    api.register_blueprint(operations.blp, url_prefix=f"{API_PREFIX}/operations")
    return app
