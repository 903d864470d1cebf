"""configure(service): JSON lines on stderr with the service name and the correlation id.

Known secret values (passwords, tokens) are masked in every line, whatever logged them.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from urllib.parse import quote, unquote, urlsplit

from shared.config import Settings

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)

MASK = "***"
# Shorter values would mask ordinary words; real secrets are longer than this.
MIN_SECRET_CHARS = 6

_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: timestamp, level, service, logger, message, context."""

    def __init__(self, service: str, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.service = service
        self.secrets = masked_forms(secrets)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        cid = correlation_id.get()
        if cid:
            entry["correlation_id"] = cid
        # Context passed with `extra=` travels as record attributes.
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return self.mask(json.dumps(entry, default=str))

    def mask(self, line: str) -> str:
        for secret in self.secrets:
            if secret in line:
                line = line.replace(secret, MASK)
        return line


def masked_forms(secrets: Iterable[str]) -> tuple[str, ...]:
    """Each secret as written, URL-encoded and JSON-escaped; longest first."""
    forms: set[str] = set()
    for secret in secrets:
        if len(secret) < MIN_SECRET_CHARS:
            continue
        forms.update({secret, quote(secret, safe=""), json.dumps(secret)[1:-1]})
    return tuple(sorted(forms, key=len, reverse=True))


def secrets_of(settings: Settings) -> list[str]:
    """Every secret value the settings hold: URL passwords, tokens, keys."""
    found = [settings.gateway_token, settings.smtp_password, settings.signing_key]
    found.extend(settings.api_tokens)
    found.extend(gateway.token for gateway in settings.routing.gateways.values())
    for url in (settings.database_url, *settings.amqp_urls):
        password = urlsplit(url).password
        if password:
            found.append(unquote(password))
    return [s for s in found if s]


def configure(service: str, level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    """Send every log record to stderr as one JSON object per line, secrets masked."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service, secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("pika").setLevel(logging.WARNING)
