"""Django's send_mail through Herald: the stack as processes, a real SMTP sink on loopback.

Django is configured in this process with EMAIL_BACKEND = "herald_client.django.EmailBackend";
the stack's senders serve e-mail into the sink (the shared `running` has no SMTP, so this
module starts its own stack, as test_email_campaign does).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import django
import pytest
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, send_mail

from deploy.stack import Stack
from herald_client import HeraldClient, Notification
from shared.db.migrate import rebuild
from tests.conftest import WRITE_TOKEN, random_suffix, reset_vhost
from tests.e2e.conftest import E2E_DATABASE_URL, E2E_VHOST
from tests.support.processes import free_port, free_port_block
from tests.support.smtp_sink import Received, SmtpSink
from tests.support.waiting import wait_until

DATABASE_URL = os.environ.get("HERALD_E2E_DJANGO_DATABASE_URL", f"{E2E_DATABASE_URL}_django")
VHOST = os.environ.get("HERALD_E2E_DJANGO_VHOST", f"{E2E_VHOST}_django")
MAIL_FROM = "Herald <herald@mail.example.org>"


@dataclass
class MailStack:
    stack: Stack
    sink: SmtpSink
    herald: HeraldClient


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailStack]:
    """api, scheduler, two senders serving http and email, stats; Django pointed at the API."""
    rebuild(DATABASE_URL)
    reset_vhost(VHOST)
    sink = SmtpSink().start()
    api_port = free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    env = {
        "HERALD_DATABASE_URL": DATABASE_URL,
        "HERALD_AMQP_URL": f"amqp://guest:guest@127.0.0.1:5672/{VHOST}",
        "HERALD_API_TOKENS": f"{WRITE_TOKEN}:write",
        "HERALD_API_PORT": str(api_port),
        "HERALD_SENDER_CHANNELS": "http,email",
        "HERALD_SMTP_HOST": sink.host,
        "HERALD_SMTP_PORT": str(sink.port),
        "HERALD_SMTP_TIMEOUT_S": "10",
        "HERALD_MAIL_FROM": MAIL_FROM,
        "HERALD_PUBLIC_URL": api_url,
        "HERALD_SIGNING_KEY": "e2e-django-signing-key",
        "HERALD_TICK_INTERVAL_S": "0.1",
        "HERALD_RETRY_DELAYS_MS": "1000,2000,4000",
    }
    log_dir = Path(tmp_path_factory.mktemp("logs"))
    stack = Stack(env=env, senders=2, log_dir=log_dir, metrics_base=free_port_block(8))
    stack.start()
    try:
        stack.wait_ready(api_url)
        configure_django(api_url)
        with HeraldClient(api_url, WRITE_TOKEN) as herald:
            yield MailStack(stack, sink, herald)
    finally:
        stack.stop()
        sink.stop()
        for log in sorted(log_dir.glob("*.log")):
            print(f"--- {log.name} (tail)\n{log.read_text()[-3000:]}")


def configure_django(api_url: str) -> None:
    if not settings.configured:
        settings.configure(
            EMAIL_BACKEND="herald_client.django.EmailBackend",
            DEFAULT_FROM_EMAIL="app@example.org",
            HERALD_URL=api_url,
            HERALD_TOKEN=WRITE_TOKEN,
        )
        django.setup()
    # Settings can be configured once a process; a later stack only moves the URL.
    settings.HERALD_URL = api_url


def one_letter(sink: SmtpSink, address: str) -> EmailMessage:
    """The single e-mail the sink received for address (waiting for it)."""
    received: list[Received] = wait_until(lambda: sink.received_for(address), timeout=30)
    [letter] = received
    assert letter.recipients == (address,)
    return letter.message()


def plain(letter: EmailMessage) -> str:
    part = letter.get_body(("plain",))
    assert part is not None
    return str(part.get_content()).strip()


def all_sent(herald: HeraldClient, notifications: dict[str, object]) -> list[Notification]:
    finals = []
    for outcome in notifications.values():
        assert isinstance(outcome, Notification), outcome
        finals.append(herald.wait(outcome.id, timeout=30))
    return finals


def test_send_mail_reaches_every_recipient_once_with_subject_and_body(running: MailStack) -> None:
    tag = random_suffix()
    ann, bob = f"ann-{tag}@example.com", f"bob-{tag}@example.com"

    count = send_mail(f"Your code {tag}", "Code 1234", None, [ann, f"Bob <{bob}>"])

    assert count == 1
    for address in (ann, bob):
        letter = one_letter(running.sink, address)
        assert letter["Subject"] == f"Your code {tag}"
        assert letter["To"] == address
        assert letter["From"] == MAIL_FROM
        assert plain(letter) == "Code 1234"


def test_an_html_alternative_reaches_to_cc_and_bcc_and_each_is_sent(running: MailStack) -> None:
    tag = random_suffix()
    to, cc, bcc = (f"{who}-{tag}@example.com" for who in ("to", "cc", "bcc"))
    message = EmailMultiAlternatives(f"News {tag}", "Plain news", to=[to], cc=[cc], bcc=[bcc])
    message.attach_alternative("<p>Rich <b>news</b></p>", "text/html")

    count = message.send()

    assert count == 1
    finals = all_sent(running.herald, message.herald_notifications)
    assert [final.status for final in finals] == ["sent", "sent", "sent"]
    assert {final.data["address"] for final in finals} == {to, cc, bcc}
    for address in (to, cc, bcc):
        letter = one_letter(running.sink, address)
        assert letter["Subject"] == f"News {tag}"
        assert letter.get_content_type() == "multipart/alternative"
        assert plain(letter) == "Plain news"
        html = letter.get_body(("html",))
        assert html is not None
        assert str(html.get_content()).strip() == "<p>Rich <b>news</b></p>"


def test_sending_the_same_message_again_sends_nothing_twice(running: MailStack) -> None:
    tag = random_suffix()
    ann = f"again-{tag}@example.com"
    message = EmailMultiAlternatives(f"Once {tag}", "Only once", to=[ann])

    assert message.send() == 1
    first = dict(message.herald_notifications)
    assert message.send() == 1

    [again] = message.herald_notifications.values()
    [accepted] = first.values()
    assert isinstance(again, Notification) and isinstance(accepted, Notification)
    assert again.id == accepted.id
    assert [final.status for final in all_sent(running.herald, first)] == ["sent"]
    one_letter(running.sink, ann)
