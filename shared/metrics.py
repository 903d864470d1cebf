"""Metric names and helpers; serve(port) for services without an HTTP server of their own.

Labels stay low-cardinality: channel and outcome only, never message ids or addresses.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

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
SENDER_IN_FLIGHT = Gauge(
    "herald_sender_in_flight",
    "Items handed to the dispatcher and not yet finished.",
)


def serve(port: int) -> None:
    """Expose the default registry on /metrics in a background thread; port 0 disables it."""
    if port > 0:
        start_http_server(port)
