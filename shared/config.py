"""Settings (frozen dataclass) + Settings.from_env(environ); the only reader of the environment.

A `.env` file in the working directory is read first if present; real environment
variables win over it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from shared.domain.routes import Routing, parse_routing, single_gateway

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/herald"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
# The key the README shows: anyone can sign opt-out links with it, so only the local
# development stack (HERALD_DEV_STACK=1) may run on it.
EXAMPLE_SIGNING_KEY = "change-me-signing-key"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
SMTP_TLS_MODES = ("none", "starttls", "ssl")
FLAGS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False, "": False}


def read_env_file(path: Path) -> dict[str, str]:
    """Parse KEY=VALUE lines of a .env file; comments and blank lines are skipped."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip().strip('"').strip("'")
    return values


class ConfigError(ValueError):
    """A setting that cannot be used; the message names the variable and what it expects."""


def parse_delays(spec: str) -> tuple[int, ...]:
    try:
        return tuple(int(d) for d in spec.split(",") if d.strip())
    except ValueError:
        raise ConfigError(
            f"HERALD_RETRY_DELAYS_MS must be comma-separated milliseconds, not {spec!r}"
        ) from None


def parse_public_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"HERALD_PUBLIC_URL must be the API's public http(s) base URL, not {url!r}"
        )
    return url.rstrip("/")


def split_amqp_urls(spec: str) -> tuple[str, ...]:
    """The broker nodes of HERALD_AMQP_URL: one URL, or several separated by commas.

    Each must be amqp:// or amqps:// with a host; an error shows the URL without its password.
    """
    urls = tuple(part.strip() for part in spec.split(","))
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
            shown = url.replace(f":{parts.password}@", ":***@") if parts.password else url
            raise ConfigError(
                "HERALD_AMQP_URL must be amqp:// or amqps:// URLs with a host, separated by "
                f"commas, not {shown!r}"
            )
    return urls


# receipts: a gateway's credential, good for /api/v1/receipts and nothing else.
TOKEN_SCOPES = ("read", "write", "receipts")


def parse_tokens(spec: str) -> dict[str, str]:
    """Turn 'tok1:write,tok2:read,tok3:receipts' into {token: scope}."""
    tokens: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        token, _, scope = part.rpartition(":")
        if not token or scope not in TOKEN_SCOPES:
            raise ConfigError(
                f"HERALD_API_TOKENS entries are token:read, token:write or token:receipts: {part!r}"
            )
        tokens[token] = scope
    return tokens


# Channel ceilings are read here, once: the scheduler applies them, the preview forecasts
# with them, and both see the same values.
@dataclass(frozen=True, slots=True)
class ChannelLimits:
    """A channel's ceilings: messages per second, and (count, seconds) rolling windows."""

    per_second: float | None = None
    windows: tuple[tuple[int, float], ...] = ()

    @property
    def longest_window_s(self) -> float:
        return max((seconds for _, seconds in self.windows), default=0.0)


RATES, WINDOWS = "CHANNEL_RATE_LIMITS", "CHANNEL_WINDOW_LIMITS"
FORMS = {
    RATES: "channel=messages per second above zero (http=500,email=50)",
    WINDOWS: "channel=count/seconds, seconds above zero (email=2000/86400)",
}


def parse_channel_limits(rates: str, windows: str) -> dict[str, ChannelLimits]:
    """Parse "http=500,email=50" (per second) and "email=2000/86400" (count/seconds).

    The only reader of both settings. What it cannot use raises ValueError naming the
    variable (HERALD_CHANNEL_RATE_LIMITS or HERALD_CHANNEL_WINDOW_LIMITS) and the form it wants.
    """
    per_second: dict[str, float] = {}
    for name, value, entry in _entries(rates, RATES):
        if name in per_second:
            raise ValueError(f"HERALD_{RATES} names channel {name!r} twice: {rates!r}")
        per_second[name] = _number(value, float, entry, RATES, inclusive=False)
    spans: dict[str, list[tuple[int, float]]] = {}
    for name, value, entry in _entries(windows, WINDOWS):
        count, slash, seconds = value.partition("/")
        if not slash:
            raise _refused(WINDOWS, entry)
        window = (
            _number(count, int, entry, WINDOWS, inclusive=True),
            _number(seconds, float, entry, WINDOWS, inclusive=False),
        )
        spans.setdefault(name, []).append(window)
    return {
        name: ChannelLimits(per_second.get(name), tuple(spans.get(name, ())))
        for name in sorted(per_second.keys() | spans.keys())
    }


def _entries(spec: str, setting: str) -> list[tuple[str, str, str]]:
    """(channel, value, the entry as written) for each comma-separated channel=value."""
    entries = []
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        name, equals, value = entry.partition("=")
        if not equals or not name.strip() or not value.strip():
            raise _refused(setting, entry)
        entries.append((name.strip(), value.strip(), entry))
    return entries


def _number(
    text: str, kind: type[int] | type[float], entry: str, setting: str, inclusive: bool
) -> Any:
    """A finite number not below zero (and above it unless `inclusive`)."""
    try:
        value = kind(text.strip())
    except ValueError:
        raise _refused(setting, entry) from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not inclusive):
        raise _refused(setting, entry)
    return value


def _refused(setting: str, text: str) -> ValueError:
    return ValueError(f"HERALD_{setting} entries are {FORMS[setting]}, not {text!r}")


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    amqp_url: str = DEFAULT_AMQP_URL
    api_tokens: Mapping[str, str] = field(default_factory=dict, repr=False)
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    metrics_port: int = 0
    # `make run` numbers its services' metrics ports from here (scheduler, stats, senders).
    metrics_port_base: int = 9100
    gateway_url: str = "http://127.0.0.1:8900"
    gateway_token: str = field(default="sandbox-token", repr=False)
    gateway_timeout_s: float = 10.0
    # Several gateways and the routes to them (HERALD_GATEWAYS, HERALD_ROUTES; see
    # shared/domain/routes.py); None: the one gateway above. Read it as `routing`.
    gateway_routing: Routing | None = field(default=None, repr=False)
    # A gateway whose receipts say it delivers less than this share loses its traffic to the
    # next gateway on the route until it recovers (0: receipts never move traffic).
    gateway_min_delivery_share: float = 0.0
    # An item that may have reached a gateway retries only there, unless that gateway has been
    # out (circuit open) for longer than this: then it takes its route, maybe sent twice.
    gateway_unsure_wait_s: float = 300.0
    # An SMS text (campaign or notification) rendering to more parts than this is refused.
    sms_max_segments: int = 10
    sender_channels: tuple[str, ...] = ("http",)
    # Modules defining further channels (see shared/channels/plugins.py).
    channel_modules: tuple[str, ...] = ()
    # Deliveries in flight per sender (HTTP requests and pooled connections), and unacked
    # batches: 20% of 50 x 100 items parked on a slow gateway fill the 1,000 slots.
    sender_concurrency: int = 1000
    sender_prefetch: int = 50
    batch_size: int = 100
    max_attempts: int = 0
    retry_delays_ms: tuple[int, ...] = (5_000, 30_000, 300_000)
    max_queued_per_campaign: int = 20_000
    release_per_tick: int = 10_000
    tick_interval_s: float = 0.2
    outbox_poll_s: float = 0.2
    notification_poll_s: float = 0.25  # the releaser also wakes on every accept
    notification_linger_s: float = 0.02  # after a wake-up, to release several at once
    stats_flush_max: int = 200
    stats_flush_s: float = 0.1
    early_receipt_days: int = 7  # receipts whose message never became sent are then forgotten
    # Message rows of campaigns finished this many days ago are dropped, a partition at a
    # time, by the scheduler's retention job every retention_interval_s (0: kept forever).
    # Counters and figures stay with the campaign. Each partition holds this many ids.
    message_retention_days: int = 0
    retention_interval_s: float = 3600.0
    message_partition_ids: int = 10_000_000
    max_request_bytes: int = 64 * 1024 * 1024
    log_level: str = "INFO"
    # Circuit breaker: senders pause a channel when most recent deliveries fail transiently.
    breaker_failure_ratio: float = 0.9
    breaker_min_calls: int = 200
    breaker_open_s: float = 5.0
    # Each sender tells stats its breakers' states this often; the API lists the senders
    # heard from within the stale bound as live.
    sender_health_s: float = 5.0
    sender_health_stale_s: float = 30.0
    # Per-channel ceilings shared by all running campaigns, from "http=500,email=50" per
    # second (HERALD_CHANNEL_RATE_LIMITS) and "email=2000/86400" per rolling window
    # (HERALD_CHANNEL_WINDOW_LIMITS, count/seconds).
    channel_limits: Mapping[str, ChannelLimits] = field(default_factory=dict)
    # E-mail channel. Several relays: "host:port,host:port" (HERALD_SMTP_RELAYS) or one host.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    smtp_relays: str = ""
    smtp_user: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_tls: str = "none"  # none | starttls | ssl
    smtp_timeout_s: float = 30.0
    smtp_pool_size: int = 4
    smtp_max_per_connection: int = 100
    mail_from: str = "Herald <herald@localhost>"
    # Public base URL of the API for links in messages (unsubscribe), and their signing key.
    public_url: str = "http://127.0.0.1:8000"
    signing_key: str = field(default=EXAMPLE_SIGNING_KEY, repr=False)
    # Set by `make run` (and the tests and benches that start services): the local
    # development stack, the one place the example signing key is allowed.
    dev_stack: bool = False
    # Daily summary e-mail sent by the stats service (empty recipient: off).
    summary_to: str = ""
    summary_hour: int = 7
    # A running campaign alerts when delivered / sent falls under this share (0 to 1).
    delivery_rate_alert_share: float = 0.8
    # Webhooks. Allowing private addresses lets a webhook reach inside the network: unsafe
    # outside tests and local development.
    webhook_allow_private: bool = False
    webhook_timeout_s: float = 10.0
    webhook_concurrency: int = 32
    webhook_poll_s: float = 0.2
    webhook_retain_days: int = 7

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, env_file: Path | None = None
    ) -> Settings:
        """Build settings from HERALD_* variables, over the .env file, over the defaults."""
        env = dict(read_env_file(env_file or Path(".env")))
        env.update(os.environ if environ is None else environ)

        defaults: dict[str, Any] = {f.name: f.default for f in fields(cls)}

        def get(name: str, default: object = None) -> str:
            if default is None:
                default = defaults[name.lower()]
            return env.get(f"HERALD_{name}", str(default))

        def number(name: str, kind: type[int] | type[float], default: object = None) -> Any:
            value = get(name, default)
            try:
                return kind(value)
            except ValueError:
                expected = "an integer" if kind is int else "a number"
                raise ConfigError(f"HERALD_{name} must be {expected}, not {value!r}") from None

        def one_of(name: str, choices: tuple[str, ...], value: str) -> str:
            if value not in choices:
                raise ConfigError(
                    f"HERALD_{name} must be one of {', '.join(choices)}, not {value!r}"
                )
            return value

        def flag(name: str) -> bool:
            value = get(name, "")
            one_of(name, tuple(FLAGS), value.strip().lower())
            return FLAGS[value.strip().lower()]

        def share(name: str) -> float:
            value = number(name, float)
            if not 0 <= value <= 1:
                raise ConfigError(f"HERALD_{name} must be a share from 0 to 1, not {value!r}")
            return float(value)

        def channel_limits() -> dict[str, ChannelLimits]:
            try:
                return parse_channel_limits(
                    get("CHANNEL_RATE_LIMITS", ""), get("CHANNEL_WINDOW_LIMITS", "")
                )
            except ValueError as error:
                raise ConfigError(str(error)) from None

        def routing() -> Routing | None:
            if not get("GATEWAYS", "").strip() and not get("ROUTES", "").strip():
                return None
            try:
                return parse_routing(
                    get("GATEWAYS", ""),
                    get("ROUTES", ""),
                    get("GATEWAY_URL"),
                    get("GATEWAY_TOKEN"),
                )
            except ValueError as error:
                raise ConfigError(str(error)) from None

        def positive(name: str) -> int:
            value = number(name, int)
            if value < 1:
                raise ConfigError(f"HERALD_{name} must be an integer above zero, not {value!r}")
            return int(value)

        def positive_seconds(name: str) -> float:
            value = number(name, float)
            if not value > 0:
                raise ConfigError(
                    f"HERALD_{name} must be a number of seconds above zero, not {value!r}"
                )
            return float(value)

        def at_least(name: str, minimum: int) -> int:
            value = number(name, int)
            if value < minimum:
                raise ConfigError(f"HERALD_{name} must be at least {minimum}, not {value}")
            return int(value)

        delays = get("RETRY_DELAYS_MS", ",".join(map(str, defaults["retry_delays_ms"])))
        return cls(
            database_url=get("DATABASE_URL", DEFAULT_DATABASE_URL),
            amqp_url=",".join(split_amqp_urls(get("AMQP_URL", DEFAULT_AMQP_URL))),
            api_tokens=parse_tokens(get("API_TOKENS", "")),
            api_host=get("API_HOST"),
            api_port=number("API_PORT", int),
            metrics_port=number("METRICS_PORT", int, "0"),
            metrics_port_base=number("METRICS_PORT_BASE", int),
            gateway_url=get("GATEWAY_URL").rstrip("/"),
            gateway_token=get("GATEWAY_TOKEN"),
            gateway_timeout_s=number("GATEWAY_TIMEOUT_S", float),
            gateway_routing=routing(),
            gateway_min_delivery_share=share("GATEWAY_MIN_DELIVERY_SHARE"),
            gateway_unsure_wait_s=number("GATEWAY_UNSURE_WAIT_S", float),
            sms_max_segments=positive("SMS_MAX_SEGMENTS"),
            sender_channels=tuple(
                c.strip() for c in get("SENDER_CHANNELS", "http").split(",") if c.strip()
            ),
            channel_modules=tuple(
                m.strip() for m in get("CHANNEL_MODULES", "").split(",") if m.strip()
            ),
            sender_concurrency=number("SENDER_CONCURRENCY", int),
            sender_prefetch=number("SENDER_PREFETCH", int),
            batch_size=number("BATCH_SIZE", int),
            max_attempts=number("MAX_ATTEMPTS", int),
            retry_delays_ms=parse_delays(delays),
            max_queued_per_campaign=number("MAX_QUEUED_PER_CAMPAIGN", int),
            release_per_tick=number("RELEASE_PER_TICK", int),
            tick_interval_s=number("TICK_INTERVAL_S", float),
            outbox_poll_s=number("OUTBOX_POLL_S", float),
            notification_poll_s=number("NOTIFICATION_POLL_S", float),
            notification_linger_s=number("NOTIFICATION_LINGER_S", float),
            stats_flush_max=number("STATS_FLUSH_MAX", int),
            stats_flush_s=number("STATS_FLUSH_S", float),
            early_receipt_days=number("EARLY_RECEIPT_DAYS", int),
            message_retention_days=at_least("MESSAGE_RETENTION_DAYS", 0),
            retention_interval_s=positive_seconds("RETENTION_INTERVAL_S"),
            message_partition_ids=at_least("MESSAGE_PARTITION_IDS", 1),
            max_request_bytes=number("MAX_REQUEST_BYTES", int),
            log_level=one_of("LOG_LEVEL", LOG_LEVELS, get("LOG_LEVEL").upper()),
            breaker_failure_ratio=number("BREAKER_FAILURE_RATIO", float),
            breaker_min_calls=number("BREAKER_MIN_CALLS", int),
            breaker_open_s=number("BREAKER_OPEN_S", float),
            sender_health_s=positive_seconds("SENDER_HEALTH_S"),
            sender_health_stale_s=positive_seconds("SENDER_HEALTH_STALE_S"),
            channel_limits=channel_limits(),
            smtp_host=get("SMTP_HOST"),
            smtp_port=number("SMTP_PORT", int),
            smtp_relays=get("SMTP_RELAYS"),
            smtp_user=get("SMTP_USER"),
            smtp_password=get("SMTP_PASSWORD"),
            smtp_tls=one_of("SMTP_TLS", SMTP_TLS_MODES, get("SMTP_TLS").lower()),
            smtp_timeout_s=number("SMTP_TIMEOUT_S", float),
            smtp_pool_size=number("SMTP_POOL_SIZE", int),
            smtp_max_per_connection=number("SMTP_MAX_PER_CONNECTION", int),
            mail_from=get("MAIL_FROM"),
            public_url=parse_public_url(get("PUBLIC_URL")),
            signing_key=get("SIGNING_KEY"),
            dev_stack=flag("DEV_STACK"),
            summary_to=get("SUMMARY_TO"),
            summary_hour=number("SUMMARY_HOUR", int),
            delivery_rate_alert_share=share("DELIVERY_RATE_ALERT_SHARE"),
            webhook_allow_private=flag("WEBHOOK_ALLOW_PRIVATE"),
            webhook_timeout_s=number("WEBHOOK_TIMEOUT_S", float),
            webhook_concurrency=number("WEBHOOK_CONCURRENCY", int),
            webhook_poll_s=number("WEBHOOK_POLL_S", float),
            webhook_retain_days=number("WEBHOOK_RETAIN_DAYS", int),
        )

    @property
    def amqp_urls(self) -> tuple[str, ...]:
        """Each broker node's URL, in the order to try them."""
        return split_amqp_urls(self.amqp_url)

    @property
    def routing(self) -> Routing:
        """The gateways and their routes: HERALD_GATEWAYS', or the single gateway's."""
        if self.gateway_routing is not None:
            return self.gateway_routing
        return single_gateway(self.gateway_url, self.gateway_token)

    def check_signing_key(self) -> None:
        """Refuse a key anyone can sign with, outside the local development stack."""
        if not self.signing_key:
            raise ConfigError("HERALD_SIGNING_KEY must be a secret of your own, not empty")
        if self.signing_key == EXAMPLE_SIGNING_KEY and not self.dev_stack:
            raise ConfigError(
                "HERALD_SIGNING_KEY is unset or the README's example key, with which anyone "
                "can forge an opt-out link; set a secret of your own (HERALD_DEV_STACK=1 "
                "allows the example key on a local development stack only)"
            )


def service_settings(service: str, signs_links: bool = False) -> Settings:
    """A service's settings, or exit with one line naming the variable at fault.

    A service that signs or verifies opt-out links also refuses the example signing key.
    """
    try:
        settings = Settings.from_env()
        if signs_links:
            settings.check_signing_key()
    except ConfigError as error:
        raise SystemExit(f"herald {service}: configuration error: {error}") from None
    return settings
