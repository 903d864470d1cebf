"""The SMTP messenger against a real SMTP server on loopback (aiosmtpd), faults included."""

from __future__ import annotations

import base64
import dataclasses
import logging
import smtplib
import threading
import time
from typing import cast

import pytest

from shared.channels.base import MessengerFactory
from shared.channels.registry import build_registry
from shared.channels.smtp import smtp_factory, transact
from shared.channels.smtp_pool import Connection, Relay, RelayRotation, parse_relays
from shared.domain.emails import Envelope
from shared.domain.outcomes import PERMANENT, SENT, TRANSIENT, DeliveryResult
from shared.domain.signing import OptOut, verify_unsubscribe
from shared.messaging.envelopes import DeliveryItem
from tests.integration.messengers.contract import MessengerContract, _ids
from tests.support.smtp_sink import SmtpSink, free_port, self_signed_certificate
from tests.support.waiting import wait_until

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

FAULTS = {"transient": ["451"], "permanent": ["550"], "drop": ["drop"]}
MAIL_FROM = "Herald News <news@mail.example.org>"
PUBLIC_URL = "https://herald.example.org"
SIGNING_KEY = "smtp-test-signing-key"
PASSWORD = "s3cret-Pa55"


def item(address: str, **fields) -> DeliveryItem:
    values = {"subject": "Hello", "text": "Hi there"} | fields
    return DeliveryItem(next(_ids), address, values.pop("text"), 1, time.time() + 3600, **values)


@pytest.fixture
def smtp_settings(settings):
    return dataclasses.replace(
        settings,
        smtp_host="127.0.0.1",
        smtp_timeout_s=5.0,
        mail_from=MAIL_FROM,
        public_url=PUBLIC_URL,
        signing_key=SIGNING_KEY,
    )


@pytest.fixture
def sink():
    server = SmtpSink().start()
    yield server
    server.stop()


def messenger_for(settings, port: int, **changes):
    factory = build_registry(dataclasses.replace(settings, smtp_port=port, **changes))["email"]
    return factory()


class TestSmtpMessenger(MessengerContract):
    address = "ann@example.com"

    @pytest.fixture
    def fake(self):
        server = SmtpSink().start()
        yield server
        server.stop()

    @pytest.fixture(autouse=True)
    def _settings(self, smtp_settings):
        self.settings = smtp_settings

    def make_messenger(self, fake):
        return messenger_for(self.settings, fake.port)

    def make_unreachable_messenger(self):
        return messenger_for(self.settings, free_port())

    def fail_next(self, fake, message_id, fault):
        fake.script(self.address, FAULTS[fault])

    def delivered_count(self, fake, message_id):
        return sum(
            1 for m in fake.messages if m.message_id == f"<herald-{message_id}@mail.example.org>"
        )


def test_the_message_on_the_wire_has_every_header_and_both_parts(smtp_settings, sink):
    messenger = messenger_for(smtp_settings, sink.port)
    sent_item = item(
        "ann@example.com", subject="News for Ann", html="<p>Hi &amp; bye</p>", client_id=42
    )

    result = messenger.send(sent_item)

    messenger.close()
    assert result.kind == SENT
    [received] = sink.messages
    assert (received.mail_from, received.recipients) == (
        "news@mail.example.org",
        ("ann@example.com",),
    )
    message = received.message()
    assert message["From"] == MAIL_FROM
    assert message["To"] == "ann@example.com"
    assert message["Subject"] == "News for Ann"
    assert message["Message-ID"] == f"<herald-{sent_item.message_id}@mail.example.org>"
    assert message["Date"]
    link = message["List-Unsubscribe"].strip("<>")
    assert link.startswith(f"{PUBLIC_URL}/unsubscribe/")
    assert verify_unsubscribe(SIGNING_KEY, link.rsplit("/", 1)[1]) == OptOut(42, "email")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, html = message.iter_parts()
    assert text.get_content().strip() == "Hi there"
    assert html.get_content().strip() == "<p>Hi &amp; bye</p>"


def test_many_messages_share_one_connection_reset_between_them(smtp_settings, sink):
    messenger = messenger_for(smtp_settings, sink.port)

    results = [messenger.send(item(f"r{i}@example.com")) for i in range(10)]

    messenger.close()
    assert {r.kind for r in results} == {SENT}
    assert len(sink.messages) == 10
    assert sink.count("connections") == 1
    assert sink.count("rsets") >= 9


def test_a_connection_is_recycled_before_the_servers_session_limit(smtp_settings):
    sink = SmtpSink(max_per_session=3).start()
    messenger = messenger_for(smtp_settings, sink.port, smtp_max_per_connection=3)

    results = [messenger.send(item(f"r{i}@example.com")) for i in range(10)]

    messenger.close()
    sink.stop()
    assert {r.kind for r in results} == {SENT}
    assert sink.count("connections") == 4


def test_a_421_past_the_session_limit_is_retried_on_a_new_connection(smtp_settings):
    sink = SmtpSink(max_per_session=3).start()
    messenger = messenger_for(smtp_settings, sink.port, smtp_max_per_connection=100)

    results = [messenger.send(item(f"r{i}@example.com")) for i in range(5)]

    messenger.close()
    sink.stop()
    assert [r.kind for r in results] == [SENT, SENT, SENT, TRANSIENT, SENT]
    assert results[3].error.startswith("SMTP 421")


def test_reconnects_when_the_server_dropped_an_idle_connection(smtp_settings, sink):
    messenger = messenger_for(smtp_settings, sink.port)
    assert messenger.send(item("first@example.com")).kind == SENT

    sink.drop_connections()
    result = messenger.send(item("second@example.com"))

    messenger.close()
    assert result.kind == SENT
    assert sink.count("connections") == 2


def test_a_connection_dropped_mid_batch_loses_nothing(smtp_settings, sink):
    messenger = messenger_for(smtp_settings, sink.port)
    items = [item(f"r{i}@example.com") for i in range(20)]
    for dropped in items[3::7]:
        sink.script(dropped.address, ["drop"])

    first = [messenger.send(i) for i in items]
    retried = [messenger.send(i) for i, r in zip(items, first, strict=True) if r.kind != SENT]

    messenger.close()
    assert [r.kind for r in first].count(TRANSIENT) == 3
    assert {r.kind for r in retried} == {SENT}
    for sent_item in items:
        assert len(sink.received_for(sent_item.address)) == 1


def test_a_451_is_retried_until_the_server_accepts(smtp_settings, sink):
    messenger = messenger_for(smtp_settings, sink.port)
    sink.script("busy@example.com", ["451", "451"])
    busy = item("busy@example.com")

    results = [messenger.send(busy) for _ in range(3)]

    messenger.close()
    assert [r.kind for r in results] == [TRANSIENT, TRANSIENT, SENT]
    assert "451" in results[0].error
    assert len(sink.received_for("busy@example.com")) == 1


def test_a_550_fails_with_the_servers_reply(smtp_settings, sink):
    messenger = messenger_for(smtp_settings, sink.port)
    sink.script("nobody@example.com", ["550"])

    result = messenger.send(item("nobody@example.com"))

    messenger.close()
    assert result.kind == PERMANENT
    assert (
        result.error
        == "SMTP 550: 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown"
    )
    assert sink.messages == []


def test_a_message_that_would_inject_headers_is_refused_before_the_wire(smtp_settings, sink):
    messenger = messenger_for(smtp_settings, sink.port)

    result = messenger.send(item("ann@example.com", subject="Hi\r\nBcc: eve@example.com"))

    messenger.close()
    assert result.kind == PERMANENT
    assert sink.count("connections") == 0


def test_threads_share_a_pool_no_larger_than_its_size(smtp_settings, sink):
    settings = dataclasses.replace(
        smtp_settings, smtp_port=sink.port, smtp_pool_size=2, smtp_max_per_connection=1000
    )
    factory = cast(MessengerFactory, build_registry(settings)["email"])  # SMTP is synchronous
    results: list[DeliveryResult] = []

    def deliver(thread: int) -> None:
        messenger = factory()  # as the dispatcher does: a messenger per delivery thread
        results.extend(messenger.send(item(f"t{thread}-{i}@example.com")) for i in range(20))

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    factory().close()
    assert {r.kind for r in results} == {SENT} and len(results) == 320
    assert len(sink.messages) == 320
    assert sink.max_concurrent <= 2
    assert sink.count("connections") <= 2


def test_messages_spread_over_relays_and_skip_one_that_is_down(smtp_settings):
    first, second = SmtpSink().start(), SmtpSink().start()
    relays = f"127.0.0.1:{first.port},127.0.0.1:{second.port}"
    messenger = messenger_for(smtp_settings, 1, smtp_relays=relays)

    spread = [messenger.send(item(f"a{i}@example.com")) for i in range(10)]
    second.stop()
    after_failure = [messenger.send(item(f"b{i}@example.com")) for i in range(10)]

    messenger.close()
    first.stop()
    assert {r.kind for r in spread + after_failure} == {SENT}
    assert len(first.messages) == 5 + 10
    assert len(second.messages) == 5


def test_a_relay_that_failed_is_tried_last_until_its_cool_down_ends():
    now = [0.0]
    a, b, c = Relay("a", 25), Relay("b", 25), Relay("c", 25)
    rotation = RelayRotation((a, b, c), cooldown_s=5.0, clock=lambda: now[0])

    assert [rotation.order()[0] for _ in range(3)] == [a, b, c]
    rotation.failed(b)
    assert [rotation.order() for _ in range(3)] == [[c, a, b], [a, c, b], [c, a, b]]
    now[0] = 5.0
    assert [rotation.order()[0] for _ in range(3)] == [a, b, c]


def test_relays_are_read_from_the_settings(smtp_settings):
    given = dataclasses.replace(smtp_settings, smtp_relays=" mx1:25, mx2:2525,[::1]:26,mx3 ")

    assert parse_relays(given) == (
        Relay("mx1", 25),
        Relay("mx2", 2525),
        Relay("::1", 26),
        Relay("mx3", smtp_settings.smtp_port),
    )
    assert parse_relays(dataclasses.replace(smtp_settings, smtp_relays="")) == (
        Relay("127.0.0.1", smtp_settings.smtp_port),
    )


def test_logs_in_when_credentials_are_set(smtp_settings):
    sink = SmtpSink(credentials=("herald", PASSWORD)).start()
    messenger = messenger_for(smtp_settings, sink.port, smtp_user="herald", smtp_password=PASSWORD)

    result = messenger.send(item("ann@example.com"))

    messenger.close()
    sink.stop()
    assert result.kind == SENT
    assert sink.auth_attempts == [(b"herald", PASSWORD.encode())]


def test_refused_login_is_transient_and_never_shows_the_password(smtp_settings, caplog):
    sink = SmtpSink(credentials=("herald", "the-right-one")).start()
    messenger = messenger_for(smtp_settings, sink.port, smtp_user="herald", smtp_password=PASSWORD)

    with caplog.at_level(logging.DEBUG):
        result = messenger.send(item("ann@example.com"))

    messenger.close()
    sink.stop()
    assert result.kind == TRANSIENT
    assert "535" in result.error
    encoded = base64.b64encode(f"\0herald\0{PASSWORD}".encode()).decode()
    for text in (result.error, caplog.text, repr(smtp_settings)):
        assert PASSWORD not in text and encoded not in text
    assert sink.messages == []


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_sends_over_tls_with_login(smtp_settings, certificate, mode):
    sink = SmtpSink(tls=mode, certificate=certificate, credentials=("herald", PASSWORD)).start()
    settings = dataclasses.replace(
        smtp_settings,
        smtp_port=sink.port,
        smtp_tls=mode,
        smtp_user="herald",
        smtp_password=PASSWORD,
    )
    messenger = smtp_factory(settings, tls_context=certificate.client_context())()

    results = [messenger.send(item(f"r{i}@example.com")) for i in range(3)]

    messenger.close()
    sink.stop()
    assert {r.kind for r in results} == {SENT}
    assert len(sink.messages) == 3
    assert sink.count("connections") == 1


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_an_untrusted_certificate_sends_nothing(smtp_settings, certificate, mode):
    sink = SmtpSink(tls=mode, certificate=certificate).start()
    settings = dataclasses.replace(smtp_settings, smtp_port=sink.port, smtp_tls=mode)
    messenger = smtp_factory(settings)()  # the system's trust store does not know the sink

    result = messenger.send(item("ann@example.com"))

    messenger.close()
    sink.stop()
    assert result.kind == TRANSIENT
    assert "CERTIFICATE_VERIFY_FAILED" in (result.error or "")
    assert sink.messages == []


def test_an_unknown_tls_mode_stops_the_sender_at_start(smtp_settings):
    with pytest.raises(ValueError, match="HERALD_SMTP_TLS"):
        smtp_factory(dataclasses.replace(smtp_settings, smtp_tls="tls"))


class _PartlyRefusingSmtp:
    """sendmail() as smtplib answers when some recipients of a transaction were refused."""

    def __init__(self, refused: dict[str, tuple[int, bytes]]) -> None:
        self.refused = refused

    def sendmail(self, *args, **kwargs) -> dict[str, tuple[int, bytes]]:
        return self.refused


@pytest.mark.parametrize(("code", "kind"), [(550, PERMANENT), (450, TRANSIENT)])
def test_a_recipient_in_the_refused_dict_is_not_sent(code, kind):
    refusing = cast(smtplib.SMTP, _PartlyRefusingSmtp({"ann@x.org": (code, b"no")}))
    connection = Connection(Relay("mx", 25), refusing)
    envelope = Envelope("news@x.org", "ann@x.org", b"Subject: hi\r\n\r\nhi\r\n", False)

    result, is_reusable = transact(connection, envelope)

    assert result.kind == kind
    assert result.error == f"SMTP {code}: no"
    assert is_reusable


def test_close_closes_idle_connections(smtp_settings, sink):
    messenger = messenger_for(smtp_settings, sink.port)
    messenger.send(item("ann@example.com"))

    messenger.close()

    wait_until(lambda: sink.open_connections == 0, timeout=5)


def test_smtplib_debug_output_is_never_enabled(smtp_settings, sink, capsys):
    messenger = messenger_for(smtp_settings, sink.port, smtp_user="", smtp_password=PASSWORD)

    messenger.send(item("ann@example.com"))

    messenger.close()
    assert "send:" not in capsys.readouterr().err
    assert smtplib.SMTP.debuglevel == 0


def test_a_relay_that_is_down_is_logged_once_per_outage_not_per_message(smtp_settings, caplog):
    messenger = messenger_for(smtp_settings, free_port())

    with caplog.at_level(logging.WARNING):
        results = [messenger.send(item(f"r{i}@example.com")) for i in range(5)]

    messenger.close()
    assert {r.kind for r in results} == {TRANSIENT}
    assert sum("cooling down" in r.message for r in caplog.records) == 1
