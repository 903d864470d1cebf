"""The daily summary e-mail: once a day at the configured hour, through a real SMTP server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import update

from services.stats.summary import send_daily_summary
from shared.db.models import Campaign, CampaignProgress
from tests.support.factories import make_campaign
from tests.support.smtp_sink import SmtpSink, free_port

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

SMTP_USER = "summary-user"
SMTP_PASSWORD = "summary-password-0425"
DAY = dt.date(2026, 3, 10)


def at(hour: int, minute: int = 0, day: dt.date = DAY) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=dt.UTC)


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    server = SmtpSink(credentials=(SMTP_USER, SMTP_PASSWORD)).start()
    yield server
    server.stop()


@pytest.fixture
def summary_settings(settings, sink):
    return replace(
        settings,
        smtp_host="127.0.0.1",
        smtp_port=sink.port,
        smtp_relays="",
        smtp_user=SMTP_USER,
        smtp_password=SMTP_PASSWORD,
        smtp_tls="none",
        mail_from="Herald <herald@example.test>",
        summary_to="ops@example.test, lead@example.test",
        summary_hour=7,
        smtp_timeout_s=5.0,
    )


def finished_campaign(engine, name: str, finished_at: dt.datetime, sent: int, failed: int) -> int:
    campaign_id = make_campaign(
        engine,
        name=name,
        starts_at=finished_at - dt.timedelta(hours=2),
        ends_at=finished_at + dt.timedelta(hours=1),
    )
    with engine.begin() as conn:
        conn.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(
                status="completed",
                started_at=finished_at - dt.timedelta(hours=1),
                finished_at=finished_at,
            )
        )
        conn.execute(
            update(CampaignProgress)
            .where(CampaignProgress.campaign_id == campaign_id)
            .values(total=sent + failed, sent=sent, failed=failed)
        )
    return campaign_id


def test_summary_goes_out_once_at_the_hour_with_the_last_days_campaigns(
    engine, sink, summary_settings
):
    finished_campaign(engine, "spring sale", at(2), sent=120, failed=3)
    finished_campaign(engine, "last week", at(2, day=DAY - dt.timedelta(days=6)), sent=9, failed=0)

    before = send_daily_summary(engine, summary_settings, at(6, 59))
    sent = send_daily_summary(engine, summary_settings, at(7, 0))
    again = send_daily_summary(engine, summary_settings, at(7, 1))
    after_restart = send_daily_summary(engine, summary_settings, at(18, 30))

    assert (before, sent, again, after_restart) == (False, True, False, False)
    assert len(sink.messages) == 1
    mail = sink.messages[0].message()
    assert mail["To"] == "ops@example.test, lead@example.test"
    assert mail["Subject"] == "Herald daily summary 2026-03-10: 120 sent, 3 failed"
    body = mail.get_content()
    assert "spring sale" in body
    assert "last week" not in body


def test_messages_told_apart_by_receipts_still_count_as_sent(engine, sink, summary_settings):
    campaign_id = finished_campaign(engine, "with receipts", at(2), sent=10, failed=1)
    with engine.begin() as conn:
        conn.execute(
            update(CampaignProgress)
            .where(CampaignProgress.campaign_id == campaign_id)
            .values(sent=2, delivered=7, undelivered=1)
        )

    assert send_daily_summary(engine, summary_settings, at(7))

    mail = sink.messages[0].message()
    assert mail["Subject"] == "Herald daily summary 2026-03-10: 10 sent, 1 failed"


def test_next_day_gets_its_own_summary(engine, sink, summary_settings):

    send_daily_summary(engine, summary_settings, at(8))
    send_daily_summary(engine, summary_settings, at(8, day=DAY + dt.timedelta(days=1)))

    assert [m.message()["Subject"] for m in sink.messages] == [
        "Herald daily summary 2026-03-10: 0 sent, 0 failed",
        "Herald daily summary 2026-03-11: 0 sent, 0 failed",
    ]


def test_a_failed_send_is_sent_on_the_next_try(engine, sink, summary_settings):
    unreachable = replace(summary_settings, smtp_port=free_port())

    with pytest.raises(OSError):
        send_daily_summary(engine, unreachable, at(9))
    retried = send_daily_summary(engine, summary_settings, at(9, 1))

    assert retried is True
    assert len(sink.messages) == 1


def test_wrong_smtp_password_sends_nothing(engine, sink, summary_settings):
    wrong = replace(summary_settings, smtp_password="not-the-password")

    with pytest.raises(Exception, match="535|[Aa]uthentication"):
        send_daily_summary(engine, wrong, at(9))

    assert sink.messages == []


def test_no_recipient_means_no_summary(engine, sink, summary_settings):

    sent = send_daily_summary(engine, replace(summary_settings, summary_to=""), at(12))

    assert sent is False
    assert sink.messages == []


def test_the_summary_falls_over_to_the_next_relay_like_the_sender(engine, sink, summary_settings):
    refused = free_port()  # nothing listens there
    relays = replace(
        summary_settings,
        smtp_port=refused,
        smtp_relays=f"127.0.0.1:{refused},127.0.0.1:{sink.port}",
    )

    sent = send_daily_summary(engine, relays, at(10))

    assert sent is True
    assert [m.message()["Subject"] for m in sink.messages] == [
        "Herald daily summary 2026-03-10: 0 sent, 0 failed"
    ]
