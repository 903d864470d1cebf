import asyncio
import dataclasses
import threading

import pytest

from shared.channels.http_gateway import iso_utc
from shared.channels.registry import build_registry
from shared.domain.outcomes import SENT, TRANSIENT
from tests.integration.messengers.contract import MessengerContract
from tests.support.fake_gateway import FakeGateway, closed_port_url

FAULTS = {"transient": 503, "permanent": 400, "drop": "drop"}


class OnLoop:
    """Drives an async messenger from test code, on an event loop in a thread of its own."""

    def __init__(self, factory):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._messenger = self._run(factory())
        self.channel = self._messenger.channel

    def _run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    def send(self, item):
        return self._run(self._messenger.send(item))

    def close(self):
        self._run(self._messenger.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


def http_messenger(settings):
    return OnLoop(build_registry(settings)["http"])


class TestHttpGatewayMessenger(MessengerContract):
    address = "+7 912 345-67-89"

    @pytest.fixture
    def fake(self):
        gateway = FakeGateway().start()
        yield gateway
        gateway.stop()

    @pytest.fixture(autouse=True)
    def _settings(self, settings):
        self.settings = dataclasses.replace(settings, gateway_timeout_s=1.0, sender_concurrency=4)

    def make_messenger(self, fake):
        settings = dataclasses.replace(
            self.settings, gateway_url=fake.url, gateway_token=fake.token
        )
        return http_messenger(settings)

    def make_unreachable_messenger(self):
        return http_messenger(dataclasses.replace(self.settings, gateway_url=closed_port_url()))

    def fail_next(self, fake, message_id, fault):
        fake.script(message_id, [FAULTS[fault]])

    def delivered_count(self, fake, message_id):
        return fake.request_count(message_id)

    def test_posts_the_probe_protocol_json_and_headers(self, fake, messenger):
        item = self.make_item()

        messenger.send(item)

        [request] = fake.requests_for(item.message_id)
        assert request.path == f"/v1/send/{item.message_id}"
        assert request.body == {
            "id": item.message_id,
            "phone": "79123456789",
            "text": "Hello",
            "valid_until": iso_utc(item.deadline),
        }
        assert request.headers["Authorization"] == f"Bearer {fake.token}"
        assert request.headers["Idempotency-Key"] == str(item.message_id)
        assert request.headers["Content-Type"] == "application/json"

    @pytest.mark.parametrize("step", [500, 502, 408, 429, "malformed", "hang"])
    def test_retryable_replies_are_transient(self, fake, messenger, step):
        item = self.make_item()
        fake.script(item.message_id, [step])

        assert messenger.send(item).kind == TRANSIENT

    def test_wrong_token_is_permanent_and_the_token_is_not_in_the_error(self, fake):
        settings = dataclasses.replace(self.settings, gateway_url=fake.url, gateway_token="s3cret")
        messenger = http_messenger(settings)

        result = messenger.send(self.make_item())

        messenger.close()
        assert result.kind == "permanent"
        assert result.error.startswith("HTTP 401")
        assert "s3cret" not in result.error

    def test_connections_are_kept_alive_across_sends(self, fake, messenger):
        items = [self.make_item() for _ in range(5)]

        results = [messenger.send(item) for item in items]

        assert {r.kind for r in results} == {SENT}
        ports = {fake.requests_for(i.message_id)[0].client_port for i in items}
        assert len(ports) == 1

    def test_a_throttled_reply_carries_the_gateways_retry_after(self, fake, messenger):
        fake.set_behaviour(status_429_rate=1.0, retry_after_s=7)

        result = messenger.send(self.make_item())

        assert result.kind == TRANSIENT
        assert result.retry_after_s == 7.0
        assert result.gateway == "default"

    def test_valid_until_is_the_items_own_when_it_has_one(self, fake, messenger):
        item = dataclasses.replace(self.make_item(), valid_until=1_800_000_000.0)

        messenger.send(item)

        [request] = fake.requests_for(item.message_id)
        assert request.body["valid_until"] == "2027-01-15T08:00:00Z"
