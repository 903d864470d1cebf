"""Django's e-mail through Herald: EMAIL_BACKEND = "herald_client.django.EmailBackend".

Settings: HERALD_URL, HERALD_TOKEN, HERALD_TIMEOUT (seconds, default 10). Every recipient
(to, cc and bcc) of every message becomes one e-mail notification, all sent in one request
(1,000 per request). Herald's own From address is used; attachments are refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from email.utils import make_msgid, parseaddr
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.utils.html import strip_tags

from herald_client.client import HeraldClient
from herald_client.errors import HeraldError

KEY_PREFIX = "django:"


def message_id(message: EmailMessage) -> str:
    """The message's Message-ID header; one is made and kept on the message if it has none,
    so that sending the same message again derives the same keys."""
    for name, value in message.extra_headers.items():
        if name.lower() == "message-id":
            return str(value)
    value = make_msgid(domain="herald-client.invalid")
    message.extra_headers["Message-ID"] = value
    return value


def idempotency_key(message_id: str, address: str) -> str:
    """One key per message and recipient: a resend of the message repeats it, others differ."""
    digest = hashlib.sha256(f"{message_id}\n{address.lower()}".encode()).hexdigest()
    return KEY_PREFIX + digest


def addresses(message: EmailMessage) -> list[str]:
    """Every recipient's bare address (to, cc, bcc), each once, in order."""
    found: dict[str, str] = {}
    for raw in message.recipients():
        address = parseaddr(raw)[1] or raw
        found.setdefault(address.lower(), address)
    return list(found.values())


def notifications(message: EmailMessage) -> list[dict[str, Any]]:
    """The message as one e-mail notification per recipient, with its derived key."""
    if message.attachments:
        raise HeraldError(None, "Herald sends no attachments; the message has some")
    text, html = str(message.body), None
    if message.content_subtype == "html":
        text, html = strip_tags(text), text
    for content, mimetype in getattr(message, "alternatives", []):
        if mimetype == "text/html" and html is None:
            html = str(content)
    mid = message_id(message)
    items = []
    for address in addresses(message):
        item: dict[str, Any] = {
            "channel": "email",
            "to": {"email": address},
            "subject": str(message.subject),
            "text": text,
            "idempotency_key": idempotency_key(mid, address),
        }
        if html is not None:
            item["html"] = html
        items.append(item)
    return items


class EmailBackend(BaseEmailBackend):
    """Sends Django's EmailMessages as Herald e-mail notifications.

    After a send, each message has herald_notifications: {address: Notification or HeraldError}.
    """

    def __init__(
        self,
        fail_silently: bool = False,
        *,
        url: str | None = None,
        token: str | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(fail_silently=fail_silently, **kwargs)
        url = url or getattr(settings, "HERALD_URL", None)
        token = token or getattr(settings, "HERALD_TOKEN", None)
        if not url or not token:
            raise ImproperlyConfigured("herald_client.django needs HERALD_URL and HERALD_TOKEN")
        seconds = timeout if timeout is not None else getattr(settings, "HERALD_TIMEOUT", 10.0)
        self.client = HeraldClient(url, token, timeout=float(seconds))

    def close(self) -> None:
        self.client.close()

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Send every recipient of every message in as few requests as can be; return how
        many messages Herald accepted for all their recipients."""
        try:
            planned = [(message, notifications(message)) for message in email_messages]
            results = self.client.notify_many([item for _, items in planned for item in items])
        except HeraldError:
            if self.fail_silently:
                return 0
            raise
        sent, position = 0, 0
        refused: list[HeraldError] = []
        for message, items in planned:
            outcomes = results[position : position + len(items)]
            position += len(items)
            message.herald_notifications = {
                item["to"]["email"]: outcome for item, outcome in zip(items, outcomes, strict=True)
            }
            failures = [o for o in outcomes if isinstance(o, HeraldError)]
            refused.extend(failures)
            if items and not failures:
                sent += 1
        if refused and not self.fail_silently:
            first = refused[0]
            raise HeraldError(
                first.status,
                f"Herald refused {len(refused)} recipient(s), the first with {first.message}",
                first.field_errors,
            )
        return sent
