"""SmtpMessenger: one e-mail per item, composed as MIME and sent through the process's pool.

RFC 5321 outcomes: 2yz sent, 4yz and lost sessions transient (retried), 5yz permanent.
"""

from __future__ import annotations

import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.channels.base import MessengerFactory
from shared.channels.smtp_pool import (
    Connection,
    RelayRotation,
    SmtpPool,
    parse_relays,
    session_options,
)
from shared.config import Settings
from shared.domain.deliveries import DeliveryItem
from shared.domain.emails import Email, Envelope, build_envelope, sender_address
from shared.domain.outcomes import (
    DeliveryResult,
    classify_smtp,
    connection_failed,
    expired,
    permanent,
    sent,
    timed_out,
    transient,
)
from shared.domain.signing import unsubscribe_url

CHANNEL = "email"
TLS_MODES = ("none", "starttls", "ssl")
# How long a delivery thread waits for a free connection before giving the item back.
POOL_WAIT_CAP_S = 300.0
CLOSING = 421  # the server is closing this session (e.g. past its per-session limit)


def transact(connection: Connection, envelope: Envelope) -> tuple[DeliveryResult, bool]:
    """One MAIL/RCPT/DATA exchange: its result, and whether the session can carry another."""
    options = ["SMTPUTF8"] if envelope.needs_smtputf8 else []
    connection.transactions += 1
    try:
        refused = connection.smtp.sendmail(
            envelope.sender, [envelope.recipient], envelope.data, mail_options=options
        )
    except smtplib.SMTPRecipientsRefused as exc:
        code, reply = exc.recipients.get(envelope.recipient, (-1, b"recipient refused"))
        return classify_smtp(code, reply), code not in (CLOSING, -1)
    except smtplib.SMTPResponseException as exc:
        # Sender refused, data refused: smtplib already RSET (or closed the session on 421).
        code = exc.smtp_code
        return classify_smtp(code, exc.smtp_error), code not in (CLOSING, -1)
    except smtplib.SMTPNotSupportedError as exc:
        return permanent(f"the relay does not take this address: {exc}"), True
    except UnicodeError as exc:
        return permanent(f"the address cannot be sent: {exc}"), True
    except smtplib.SMTPServerDisconnected as exc:
        return transient(f"connection dropped: {exc}"), False
    except TimeoutError as exc:
        return timed_out(exc), False
    except (OSError, smtplib.SMTPException) as exc:
        return connection_failed(exc), False
    # With several recipients smtplib returns the refused ones instead of raising: a
    # recipient in that dict was not sent to, whatever the transaction says.
    if envelope.recipient in refused:
        code, reply = refused[envelope.recipient]
        return classify_smtp(code, reply), True
    return sent(), True


@dataclass(frozen=True, slots=True)
class Composer:
    """Turns a delivery item into an SMTP envelope with its MIME message."""

    mail_from: str
    public_url: str
    signing_key: str = field(repr=False)

    def envelope(self, item: DeliveryItem, now: float) -> Envelope:
        url = None
        if item.client_id is not None:
            url = unsubscribe_url(self.public_url, self.signing_key, item.client_id, CHANNEL)
        mail = Email(item.message_id, item.address, item.subject or "", item.text, item.html, url)
        return build_envelope(mail, self.mail_from, now)


class SmtpMessenger:
    """Sends one e-mail per item through the process's pool; never raises for a delivery."""

    channel = CHANNEL

    def __init__(
        self, pool: SmtpPool, composer: Composer, clock: Callable[[], float] = time.time
    ) -> None:
        self._pool = pool
        self._composer = composer
        self._clock = clock

    def send(self, item: DeliveryItem) -> DeliveryResult:
        """Compose, lease a session, transact; 4xx and lost sessions retry, 5xx fail."""
        now = self._clock()
        try:
            envelope = self._composer.envelope(item, now)
        except ValueError as exc:
            return permanent(f"not a valid e-mail: {exc}")
        if not self._pool.acquire_slot(min(POOL_WAIT_CAP_S, item.deadline - now)):
            if self._clock() >= item.deadline:
                return expired()
            return transient("no SMTP connection came free in time")
        try:
            connection = self._pool.checkout()
            if isinstance(connection, DeliveryResult):
                return connection
            is_reusable = False
            try:
                result, is_reusable = transact(connection, envelope)
            finally:
                self._pool.checkin(connection, is_reusable)
            return result
        finally:
            self._pool.release_slot()

    def close(self) -> None:
        """Close the shared pool's idle sessions: call it once every thread is done sending."""
        self._pool.close()


def smtp_factory(settings: Settings, tls_context: ssl.SSLContext | None = None) -> MessengerFactory:
    """Every messenger the factory makes shares one pool; nothing connects until a send."""
    if settings.smtp_tls not in TLS_MODES:
        raise ValueError(f"HERALD_SMTP_TLS must be one of {TLS_MODES}: {settings.smtp_tls!r}")
    sender_address(settings.mail_from)  # a bad HERALD_MAIL_FROM stops the sender at start
    pool = SmtpPool(
        RelayRotation(parse_relays(settings)),
        session_options(settings, tls_context),
        settings.smtp_pool_size,
        settings.smtp_max_per_connection,
    )
    composer = Composer(settings.mail_from, settings.public_url, settings.signing_key)
    return lambda: SmtpMessenger(pool, composer)
