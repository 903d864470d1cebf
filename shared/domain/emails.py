"""Build one campaign e-mail: MIME headers, plain text, an optional HTML alternative, the envelope.

EmailMessage refuses CR/LF in headers, so client data never adds one; that is a ValueError.
"""

from __future__ import annotations

import email.utils
import functools
from dataclasses import dataclass
from email import policy
from email.headerregistry import BaseHeader
from email.message import EmailMessage

# 7bit transfer: every part is ASCII on the wire, whatever the relay says about 8BITMIME.
# Lines up to RFC 5322's 998: a long List-Unsubscribe URL must stay one plain line, not be
# folded into encoded words that mail clients would not read as a URL.
WIRE = policy.SMTP.clone(cte_type="7bit", max_line_length=998)
WIRE_UTF8 = policy.SMTPUTF8.clone(cte_type="7bit", max_line_length=998)
ONE_CLICK = "List-Unsubscribe=One-Click"


@dataclass(frozen=True, slots=True)
class Email:
    """What one e-mail needs, already rendered."""

    message_id: int
    to: str
    subject: str
    text: str
    html: str | None = None
    unsubscribe_url: str | None = None


@dataclass(frozen=True, slots=True)
class Envelope:
    """The SMTP transaction for one e-mail: reverse-path, recipient, bytes on the wire."""

    sender: str
    recipient: str
    data: bytes
    needs_smtputf8: bool


def sender_address(mail_from: str) -> str:
    """The bare address of a From value ('Herald <h@x.org>' -> 'h@x.org'); ValueError if none."""
    _, address = email.utils.parseaddr(mail_from)
    if not is_single_address(address):
        raise ValueError(f"not an e-mail address: {mail_from!r}")
    return address


def is_single_address(address: str) -> bool:
    """One bare addr-spec: something@domain, no spaces, brackets, commas or line breaks."""
    local, at, domain = address.rpartition("@")
    return (
        bool(local and at and domain)
        and not any(ch.isspace() or ch in '<>,;"()[]\\' for ch in domain)
        and not any(ch.isspace() or ch in "<>,;" for ch in local)
    )


def message_id_header(message_id: int, mail_from: str) -> str:
    """A stable Message-ID from the idempotency key, so a resent e-mail is recognisably the same."""
    domain = sender_address(mail_from).rpartition("@")[2]
    return f"<herald-{message_id}@{domain}>"


def build_message(mail: Email, mail_from: str, sent_at: float) -> EmailMessage:
    """The MIME message; ValueError when a header would be unsafe or the address is not one."""
    if not is_single_address(mail.to):
        raise ValueError("the recipient is not a single e-mail address")
    message = EmailMessage(policy=WIRE)
    message["From"] = parsed_header("From", mail_from)
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = parsed_header("Date", email.utils.formatdate(int(sent_at), usegmt=True))
    message["Message-ID"] = message_id_header(mail.message_id, mail_from)
    if mail.unsubscribe_url:
        message["List-Unsubscribe"] = f"<{mail.unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = parsed_header("List-Unsubscribe-Post", ONE_CLICK)
    message.set_content(mail.text, cte=None if mail.text.isascii() else "quoted-printable")
    if mail.html is not None:
        message.add_alternative(
            mail.html, subtype="html", cte=None if mail.html.isascii() else "quoted-printable"
        )
    return message


@functools.lru_cache(maxsize=64)
def parsed_header(name: str, value: str) -> BaseHeader:
    """A header parsed once and shared by every message (they are immutable): parsing address
    and date headers is most of the cost of building a message."""
    if "\r" in value or "\n" in value:
        raise ValueError("Header values may not contain linefeed or carriage return characters")
    return WIRE.header_factory(name, value)  # type: ignore[no-any-return]


def build_envelope(mail: Email, mail_from: str, sent_at: float) -> Envelope:
    """Message and envelope; non-ASCII addresses need the relay's SMTPUTF8 extension."""
    message = build_message(mail, mail_from, sent_at)
    sender = sender_address(mail_from)
    needs_smtputf8 = not (sender.isascii() and mail.to.isascii())
    data = message.as_bytes(policy=WIRE_UTF8 if needs_smtputf8 else WIRE)
    return Envelope(sender, mail.to, data, needs_smtputf8)
