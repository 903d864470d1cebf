"""E-mail campaigns end to end: the stack as processes, a real SMTP server on loopback.

One MIME message per recipient; 451 retried, 550 failed, drops lose nothing; opt-outs stick.
"""

from __future__ import annotations

import datetime as dt
import email
import email.message
import email.policy
import email.utils
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
import requests

from deploy.stack import Stack
from shared.db.migrate import rebuild
from shared.domain.signing import OptOut, verify_unsubscribe
from tests.conftest import WRITE_TOKEN, reset_vhost
from tests.e2e.conftest import free_port
from tests.support.api_client import ApiClient
from tests.support.smtp_sink import Received, SmtpSink
from tests.support.waiting import wait_until

DATABASE_URL = os.environ.get(
    "HERALD_E2E_EMAIL_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/herald_e2e_email"
)
VHOST = os.environ.get("HERALD_E2E_EMAIL_VHOST", "herald_e2e_email")
SIGNING_KEY = "e2e-email-signing-key"
MAIL_DOMAIN = "news.example.org"
MASS = 5000


@dataclass
class EmailStack:
    stack: Stack
    sink: SmtpSink
    api: ApiClient
    api_url: str


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmailStack]:
    """api, scheduler, two senders serving http and email, and stats; the sink in this process."""
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
        "HERALD_MAIL_FROM": f"Herald News <herald@{MAIL_DOMAIN}>",
        "HERALD_PUBLIC_URL": api_url,
        "HERALD_SIGNING_KEY": SIGNING_KEY,
        "HERALD_TICK_INTERVAL_S": "0.1",
        "HERALD_RETRY_DELAYS_MS": "1000,2000,4000",
    }
    log_dir = Path(tmp_path_factory.mktemp("logs"))
    stack = Stack(env=env, senders=2, log_dir=log_dir, metrics_base=19200)
    stack.start()
    try:
        stack.wait_ready(api_url)
        yield EmailStack(stack, sink, ApiClient(api_url, WRITE_TOKEN), api_url)
    finally:
        stack.stop()
        sink.stop()
        for log in sorted(log_dir.glob("*.log")):
            print(f"--- {log.name} (tail)\n{log.read_text()[-3000:]}")


def import_recipients(api: ApiClient, tag: str, count: int, first_phone: int) -> None:
    clients = [
        {
            "phone": f"+7916{first_phone + i:07d}",
            "email": f"{tag}-{i}@example.com",
            "tags": [tag],
            "attributes": {"name": f"Reader {i} & co"},
        }
        for i in range(count)
    ]
    report = api.import_clients(clients)
    assert (report["created"], report["rejected"]) == (count, 0), report


def email_campaign(api: ApiClient, tag: str) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    return api.create_campaign(
        name=f"{tag} letter",
        channel="email",
        subject="News for {{ name }}",
        text="Hello {{ name }}, here is the news.",
        html="<p>Hello <b>{{ name }}</b></p>",
        filter={"tags": [tag], "operator_codes": []},
        starts_at=now.isoformat(),
        ends_at=(now + dt.timedelta(hours=1)).isoformat(),
    )


def finished(api: ApiClient, campaign_id: int, timeout: float) -> dict[str, Any]:
    return wait_until(
        lambda: s if (s := api.stats(campaign_id))["status"] in ("completed", "expired") else None,
        timeout=timeout,
    )


def received_by_message_id(sink: SmtpSink) -> dict[str, list[Received]]:
    found: dict[str, list[Received]] = {}
    for received in sink.messages:
        found.setdefault(received.message_id or "", []).append(received)
    return found


def message_id(mid: int) -> str:
    return f"<herald-{mid}@{MAIL_DOMAIN}>"


def test_every_recipient_gets_one_proper_email(running: EmailStack) -> None:
    import_recipients(running.api, "mass", MASS, first_phone=0)
    emails = {c["id"]: c["email"] for c in running.api.pages("/clients", tag="mass")}

    campaign = email_campaign(running.api, "mass")
    final = finished(running.api, campaign["id"], timeout=90)

    assert (final["total"], final["sent"], final["failed"]) == (MASS, MASS, 0)
    by_id = received_by_message_id(running.sink)
    messages = list(running.api.pages(f"/campaigns/{campaign['id']}/messages"))
    assert len(messages) == MASS
    for message in messages:
        [received] = by_id.pop(message_id(message["id"]))
        client_email = emails[message["client_id"]]
        assert received.recipients == (client_email,)
        assert_proper_email(received.data, client_email, message["client_id"])
    strays = [r for rs in by_id.values() for r in rs if any("mass-" in a for a in r.recipients)]
    assert strays == []


def assert_proper_email(data: bytes, to: str, client_id: int) -> None:
    # compat32 parses ten times faster than the default policy, and every header here is ASCII.
    mail = email.message_from_bytes(data, policy=email.policy.compat32)
    number = to.split("-")[1].split("@")[0]
    assert mail["From"] == f"Herald News <herald@{MAIL_DOMAIN}>"
    assert mail["To"] == to
    assert mail["Subject"] == f"News for Reader {number} & co"
    assert email.utils.parsedate_to_datetime(mail["Date"])
    assert mail.get_content_type() == "multipart/alternative"
    parts = cast(list[email.message.Message], mail.get_payload())
    text, html = (cast(bytes, part.get_payload(decode=True)).decode().strip() for part in parts)
    assert text == f"Hello Reader {number} & co, here is the news."
    assert html == f"<p>Hello <b>Reader {number} &amp; co</b></p>"
    token = mail["List-Unsubscribe"].strip("<>").rsplit("/", 1)[1]
    assert verify_unsubscribe(SIGNING_KEY, token) == OptOut(client_id, "email")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


@pytest.mark.slow
def test_refusals_and_drops_end_as_their_replies_say(running: EmailStack) -> None:
    import_recipients(running.api, "faulty", 30, first_phone=100_000)
    busy = [f"faulty-{i}@example.com" for i in range(0, 10)]
    unknown = [f"faulty-{i}@example.com" for i in range(10, 15)]
    dropped = [f"faulty-{i}@example.com" for i in range(15, 20)]
    for address in busy:
        running.sink.script(address, ["451", "451"])
    for address in unknown:
        running.sink.script(address, ["550"])
    for address in dropped:
        running.sink.script(address, ["drop"])

    campaign = email_campaign(running.api, "faulty")
    final = finished(running.api, campaign["id"], timeout=60)

    assert (final["total"], final["sent"], final["failed"]) == (30, 25, 5)
    counts = Counter(r for m in running.sink.messages for r in m.recipients if "faulty-" in r)
    assert set(counts) == {f"faulty-{i}@example.com" for i in range(30)} - set(unknown)
    assert set(counts.values()) == {1}
    failed = list(running.api.pages(f"/campaigns/{campaign['id']}/messages", status="failed"))
    assert len(failed) == 5
    for message in failed:
        assert message["attempts"] == 1
        assert message["last_error"].startswith("SMTP 550: ")
        assert "Recipient address rejected" in message["last_error"]


def test_an_unsubscribe_link_keeps_its_recipient_out_of_later_campaigns(
    running: EmailStack,
) -> None:
    import_recipients(running.api, "letters", 3, first_phone=200_000)
    first = email_campaign(running.api, "letters")
    finished(running.api, first["id"], timeout=30)
    [letter] = running.sink.received_for("letters-0@example.com")
    link = letter.message()["List-Unsubscribe"].strip("<>")
    leaver = running.sink.received_for("letters-1@example.com")[0].message()
    forged = leaver["List-Unsubscribe"].strip("<>")[:-2] + "xx"

    refused = requests.post(forged, data={"List-Unsubscribe": "One-Click"}, timeout=10)
    followed = requests.post(link, data={"List-Unsubscribe": "One-Click"}, timeout=10)

    assert refused.status_code == 404
    assert followed.status_code == 200 and followed.json()["opted_out"] is True
    opted = {c["email"]: c["opted_out"] for c in running.api.pages("/clients", tag="letters")}
    assert opted == {
        "letters-0@example.com": ["email"],
        "letters-1@example.com": [],
        "letters-2@example.com": [],
    }
    second = email_campaign(running.api, "letters")
    final = finished(running.api, second["id"], timeout=30)
    assert (final["total"], final["sent"]) == (2, 2)
    assert len(running.sink.received_for("letters-0@example.com")) == 1
    assert len(running.sink.received_for("letters-2@example.com")) == 2


def test_a_preview_goes_out_at_once_and_touches_no_counter(running: EmailStack) -> None:
    import_recipients(running.api, "preview", 1, first_phone=300_000)
    campaign = email_campaign(running.api, "preview")
    finished(running.api, campaign["id"], timeout=30)
    before = running.api.stats(campaign["id"])

    result = running.api.request(
        "POST", f"/campaigns/{campaign['id']}/test", json={"address": "preview-0@example.com"}
    )

    assert result["kind"] == "sent" and result["client_id"] is not None
    letter, preview = running.sink.received_for("preview-0@example.com")
    assert preview.message_id == message_id(result["message_id"])
    assert preview.message()["Subject"] == letter.message()["Subject"] == "News for Reader 0 & co"
    assert running.api.stats(campaign["id"]) == before
