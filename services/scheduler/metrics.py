"""The scheduler's Prometheus metrics."""

from prometheus_client import Counter, Gauge, Histogram

TICK_SECONDS = Histogram(
    "herald_scheduler_tick_duration_seconds",
    "Time one scheduler tick took.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
RELEASED = Counter(
    "herald_scheduler_released_messages_total", "Messages released to senders.", ["channel"]
)
BATCHES = Counter(
    "herald_scheduler_released_batches_total", "Delivery batches published.", ["channel"]
)
MATERIALISED = Counter(
    "herald_scheduler_materialised_messages_total", "Messages created when campaigns started."
)
MATERIALISE_SECONDS = Histogram(
    "herald_scheduler_materialise_duration_seconds",
    "Time to materialise one campaign's messages.",
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60),
)
EXPIRED = Counter("herald_scheduler_expired_messages_total", "Messages expired at ends_at.")
CANCELLED = Counter("herald_scheduler_cancelled_messages_total", "Messages of cancelled campaigns.")
NOTIFICATIONS_RELEASED = Counter(
    "herald_scheduler_released_notifications_total",
    "Notifications released to the priority lane.",
    ["channel"],
)
NOTIFICATION_WAIT_SECONDS = Histogram(
    "herald_scheduler_notification_wait_seconds",
    "From a notification's acceptance to its release to the priority lane.",
    ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600),
)
NOTIFICATIONS_EXPIRED = Counter(
    "herald_scheduler_expired_notifications_total",
    "Notifications expired before they could be released.",
)
PARTITIONS_MADE = Counter(
    "herald_scheduler_message_partitions_made_total",
    "Message partitions made ahead of materialisation.",
)
PARTITIONS = Gauge(
    "herald_message_partitions",
    "Partitions of the message table, the overflow included, at the last retention run.",
)
MESSAGE_TABLE_BYTES = Gauge(
    "herald_message_table_bytes",
    "Size of the message table's partitions with their indexes, at the last retention run.",
)
RETENTION_SECONDS = Histogram(
    "herald_retention_run_duration_seconds",
    "Time one run of the message retention job took.",
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
RETENTION_DROPPED_PARTITIONS = Counter(
    "herald_retention_dropped_partitions_total",
    "Message partitions dropped because every campaign in them was past the retention.",
)
RETENTION_DROPPED_MESSAGES = Counter(
    "herald_retention_dropped_messages_total",
    "Message rows dropped with their partitions (their campaigns keep their figures).",
)
RETENTION_LAST_SUCCESS = Gauge(
    "herald_retention_last_success_timestamp_seconds",
    "When the retention job last ran to its end (Unix time).",
)
