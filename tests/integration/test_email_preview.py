"""POST /campaigns/{id}/test: one preview through the channel's messenger, nothing recorded."""

from __future__ import annotations

import dataclasses

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from services.api.app import create_app
from shared.domain.signing import OptOut, verify_unsubscribe
from tests.conftest import READ_TOKEN, WRITE_TOKEN
from tests.support.factories import make_campaign, make_clients
from tests.support.fake_gateway import FakeGateway
from tests.support.smtp_sink import SmtpSink

AUTH = {"Authorization": f"Bearer {WRITE_TOKEN}"}
KEY = "preview-test-key"


@pytest.fixture
def sink():
    server = SmtpSink().start()
    yield server
    server.stop()


@pytest.fixture
def gateway():
    server = FakeGateway().start()
    yield server
    server.stop()


@pytest.fixture
def api(settings, engine: Engine, sink: SmtpSink, gateway: FakeGateway) -> FlaskClient:
    configured = dataclasses.replace(
        settings,
        smtp_host=sink.host,
        smtp_port=sink.port,
        smtp_timeout_s=5.0,
        mail_from="Herald <news@example.org>",
        public_url="https://herald.example.org",
        signing_key=KEY,
        gateway_url=gateway.url,
        gateway_token=gateway.token,
    )
    return create_app(configured, engine).test_client()


@pytest.fixture
def email_campaign(engine: Engine) -> int:
    return make_campaign(
        engine,
        channel="email",
        subject="News for {{ name }}",
        text="Hello {{ name }}!",
        html="<p>Hello {{ name }}!</p>",
    )


def preview(api: FlaskClient, campaign_id: int, address: str, token: str = WRITE_TOKEN):
    return api.post(
        f"/api/v1/campaigns/{campaign_id}/test",
        json={"address": address},
        headers={"Authorization": f"Bearer {token}"},
    )


def records(engine: Engine) -> tuple[int, tuple[int, ...]]:
    with engine.connect() as conn:
        messages = conn.scalar(text("SELECT count(*) FROM message"))
        progress = conn.execute(
            text("SELECT total, pending, queued, sent, failed FROM campaign_progress")
        ).one()
    return int(messages or 0), tuple(progress)


def test_an_email_preview_is_rendered_for_the_addresss_client(api, engine, sink, email_campaign):
    [ann] = make_clients(engine, 1, email="Ann@Example.com", attributes={"name": "<Ann>"})
    before = records(engine)

    response = preview(api, email_campaign, "ann@example.com")

    assert response.status_code == 200
    assert response.json["kind"] == "sent" and response.json["error"] is None
    assert response.json["client_id"] == ann
    [received] = sink.messages
    message = received.message()
    assert received.recipients == ("ann@example.com",)
    assert message["Subject"] == "News for <Ann>"
    assert message["Message-ID"] == f"<herald-{response.json['message_id']}@example.org>"
    text_part, html_part = message.iter_parts()
    assert text_part.get_content().strip() == "Hello <Ann>!"
    assert html_part.get_content().strip() == "<p>Hello &lt;Ann&gt;!</p>"
    token = message["List-Unsubscribe"].strip("<>").rsplit("/", 1)[1]
    assert verify_unsubscribe(KEY, token) == OptOut(ann, "email")
    assert records(engine) == before


def test_an_address_without_a_client_gets_empty_variables(api, sink, email_campaign):
    response = preview(api, email_campaign, "stranger@example.com")

    assert response.json["kind"] == "sent" and response.json["client_id"] is None
    message = sink.messages[0].message()
    assert message["Subject"] == "News for "
    assert "List-Unsubscribe" not in message


def test_a_refused_address_answers_the_servers_reply(api, sink, email_campaign):
    sink.script("nobody@example.com", ["550"])

    response = preview(api, email_campaign, "nobody@example.com")

    assert response.status_code == 200
    assert response.json["kind"] == "permanent"
    assert response.json["error"].startswith("SMTP 550")


def test_an_http_preview_goes_to_the_gateway(api, engine, gateway):
    campaign_id = make_campaign(engine, channel="http", text="Hi {{ name }}")
    make_clients(engine, 1, first_phone=79123456789, attributes={"name": "Bob"})

    response = preview(api, campaign_id, "+7 (912) 345-67-89")

    assert response.json["kind"] == "sent"
    assert response.json["address"] == "+79123456789"
    [request] = gateway.requests_for(response.json["message_id"])
    assert request.body["phone"] == "79123456789"
    assert request.body["text"] == "Hi Bob"


@pytest.mark.parametrize(
    ("channel", "address"),
    [("email", "not an address"), ("email", "a@x.org, b@x.org"), ("http", "12")],
)
def test_an_address_unfit_for_the_channel_is_refused(api, engine, sink, channel, address):
    campaign_id = make_campaign(engine, channel=channel, subject="Hi")

    response = preview(api, campaign_id, address)

    assert response.status_code == 422
    assert "address" in response.json["errors"]["json"]
    assert sink.messages == []


def test_a_preview_needs_the_write_scope(api, sink, email_campaign):
    response = preview(api, email_campaign, "ann@example.com", token=READ_TOKEN)

    assert response.status_code == 403
    assert sink.messages == []


def test_a_preview_of_a_missing_campaign_is_not_found(api):
    assert preview(api, 999, "ann@example.com").status_code == 404
