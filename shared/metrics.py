"""Metric names and helpers; serve(port) for services without an HTTP server of their own.

Labels stay low-cardinality: channel, gateway and outcome only, never message ids or addresses.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import ThreadingWSGIServer, make_wsgi_app

DELIVERY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

SENDER_DELIVERIES = Counter(
    "herald_sender_deliveries",
    "Delivery attempts by channel and result (sent, transient, permanent, expired).",
    ["channel", "outcome"],
)
SENDER_DELIVERY_DURATION = Histogram(
    "herald_sender_delivery_duration_seconds",
    "Time one delivery attempt took in its messenger.",
    ["channel"],
    buckets=DELIVERY_BUCKETS_S,
)
SENDER_BATCHES_CONSUMED = Counter(
    "herald_sender_batches_consumed",
    "Delivery batches taken from the broker.",
    ["channel"],
)
SENDER_RETRIES = Counter(
    "herald_sender_retries",
    "Items sent back to a retry delay tier.",
    ["channel"],
)
SENDER_DEAD_LETTERS = Counter(
    "herald_sender_dead_letters",
    "Items parked in the dead-letter queue (permanent or exhausted), plus poison batches.",
    ["channel"],
)
SENDER_ABANDONED_ITEMS = Counter(
    "herald_sender_abandoned_items",
    "Items not handed to the messenger because the session holding their batch was lost "
    "(the broker delivers the batch again).",
    ["channel"],
)
SENDER_KEPT_RESULTS_USED = Counter(
    "herald_sender_kept_results_used",
    "Items of a redelivered batch settled from their delivery before the session was lost, "
    "instead of being sent again.",
    ["channel"],
)
SENDER_IN_FLIGHT = Gauge(
    "herald_sender_in_flight",
    "Items handed to the dispatcher and not yet finished.",
)
SENDER_CAMPAIGN_SLOTS = Gauge(
    "herald_sender_campaign_slots",
    "Campaign deliveries a sender lets in flight now, sized to the gateway's latency.",
    ["channel"],
)
SENDER_CIRCUIT_OPEN = Gauge(
    "herald_sender_circuit_open",
    "1 while the channel's circuit breaker keeps deliveries back (open or trying), else 0.",
    ["channel"],
)
SENDER_CIRCUIT_OPENED = Counter(
    "herald_sender_circuit_opened",
    "Times the channel's circuit breaker opened (or reopened after a failed trial).",
    ["channel"],
)
SENDER_GATEWAY_DELIVERIES = Counter(
    "herald_sender_gateway_deliveries",
    "Delivery attempts by SMS gateway and result (sent, transient, permanent).",
    ["gateway", "outcome"],
)
SENDER_GATEWAY_SEGMENTS = Counter(
    "herald_sender_gateway_segments",
    "SMS segments a gateway took (its bill, in parts).",
    ["gateway"],
)
SENDER_GATEWAY_FAILOVERS = Counter(
    "herald_sender_gateway_failovers",
    "Deliveries a gateway did not take (circuit open, receipts low, ceiling reached, "
    "connection refused) that went to the next gateway of their route.",
    ["gateway"],
)
SENDER_GATEWAY_UNSURE_MOVES = Counter(
    "herald_sender_gateway_unsure_moves",
    "Deliveries that may have reached a gateway out for longer than "
    "HERALD_GATEWAY_UNSURE_WAIT_S, sent through the next gateway of their route instead "
    "(each may reach its recipient twice).",
)
SENDER_GATEWAY_CIRCUIT_OPEN = Gauge(
    "herald_sender_gateway_circuit_open",
    "1 while this sender holds deliveries back from the gateway after repeated failures.",
    ["gateway"],
)
SENDER_GATEWAY_CIRCUIT_OPENED = Counter(
    "herald_sender_gateway_circuit_opened",
    "Times a gateway's circuit breaker opened (or reopened after a failed trial).",
    ["gateway"],
)
SENDER_GATEWAY_LOW_DELIVERY = Gauge(
    "herald_sender_gateway_low_delivery",
    "1 while the gateway's receipts say it delivers under HERALD_GATEWAY_MIN_DELIVERY_SHARE.",
    ["gateway"],
)
SENDER_HELD_CAMPAIGNS = Gauge(
    "herald_sender_held_campaigns",
    "Campaigns (paused or cancelled) whose items this sender does not start.",
)


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would drown the service's own log lines."""


def with_healthz(metrics_app: WsgiApp) -> WsgiApp:
    """Answer /healthz with 200 (the process is alive); everything else is the metrics app."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"ok\n"]
        return metrics_app(environ, start_response)

    return app


def serve(
    port: int, registry: CollectorRegistry = REGISTRY, host: str = "0.0.0.0"
) -> WSGIServer | None:
    """Serve /metrics and /healthz in a background thread; port 0 disables it."""
    if port <= 0:
        return None
    server = make_server(
        host,
        port,
        with_healthz(make_wsgi_app(registry)),
        ThreadingWSGIServer,
        handler_class=_QuietHandler,
    )
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
