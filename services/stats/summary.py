"""Daily summary e-mail: the last 24 hours of campaigns, sent once a day at summary_hour (UTC).

The day is claimed in summary_report in the same transaction that sends the mail, so
restarts and several stats processes send it once; a failed send rolls the claim back.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from shared.channels.smtp_pool import (
    Relay,
    SessionError,
    open_first_session,
    parse_relays,
    session_options,
)
from shared.config import Settings

log = logging.getLogger(__name__)

CHECK_INTERVAL_S = 60.0

CLAIM_DAY = text(
    """
    INSERT INTO summary_report (day, sent_at) VALUES (:day, :now)
    ON CONFLICT (day) DO NOTHING
    RETURNING day
    """
)

# Campaigns that did something in the window: started, finished, or still under way. Sent is
# what the gateway took, told apart by receipts since or not.
CAMPAIGNS_OF_WINDOW = text(
    """
    SELECT k.id, k.name, k.channel, k.status, p.total,
           p.sent + p.delivered + p.undelivered AS sent, p.failed, p.expired,
           p.cancelled, p.pending + p.queued AS waiting
      FROM campaign k JOIN campaign_progress p ON p.campaign_id = k.id
     WHERE k.status IN ('running', 'paused')
        OR k.started_at >= :since OR k.finished_at >= :since
     ORDER BY k.id
    """
)


@dataclass(frozen=True, slots=True)
class CampaignLine:
    id: int
    name: str
    channel: str
    status: str
    total: int
    sent: int
    failed: int
    expired: int
    cancelled: int
    waiting: int


Deliver = Callable[[Settings, EmailMessage], None]


def campaigns_since(conn: Connection, since: dt.datetime) -> list[CampaignLine]:
    rows = conn.execute(CAMPAIGNS_OF_WINDOW, {"since": since}).mappings()
    return [CampaignLine(**row) for row in rows]


def render(day: dt.date, since: dt.datetime, lines: Sequence[CampaignLine]) -> tuple[str, str]:
    """Subject and plain-text body of the summary."""
    sent = sum(c.sent for c in lines)
    failed = sum(c.failed for c in lines)
    subject = f"Herald daily summary {day.isoformat()}: {sent} sent, {failed} failed"
    header = f"Campaigns active since {since.isoformat(timespec='minutes')} (UTC)\n\n"
    columns = (
        f"{'id':>6}  {'status':<10} {'total':>9} {'sent':>9} {'failed':>7} {'waiting':>8}  name"
    )
    rows = [
        f"{c.id:>6}  {c.status:<10} {c.total:>9} {c.sent:>9} {c.failed:>7} {c.waiting:>8}  "
        f"{c.name} ({c.channel})"
        for c in lines
    ]
    totals = (
        f"\n{len(lines)} campaigns: {sent} sent, {failed} failed, "
        f"{sum(c.expired for c in lines)} expired, {sum(c.cancelled for c in lines)} cancelled, "
        f"{sum(c.waiting for c in lines)} still waiting.\n"
    )
    body = header + "\n".join([columns, *rows]) if rows else header + "No campaign ran.\n"
    return subject, body + totals


def build_message(settings: Settings, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = ", ".join(recipients(settings))
    message["Subject"] = subject
    message.set_content(body)
    return message


def recipients(settings: Settings) -> list[str]:
    return [a.strip() for a in settings.summary_to.split(",") if a.strip()]


def send_mail(settings: Settings, message: EmailMessage) -> None:
    """Send through the first SMTP relay that takes a session; raise if any recipient is refused."""
    _, smtp = open_first_session(parse_relays(settings), session_options(settings), fell_over)
    with smtp:
        refused = smtp.send_message(message)
    if refused:
        raise smtplib.SMTPRecipientsRefused(refused)


def fell_over(relay: Relay, exc: SessionError) -> None:
    log.warning("SMTP relay %s failed, trying the next for the daily summary: %s", relay, exc)


def is_due(settings: Settings, now: dt.datetime) -> bool:
    return bool(recipients(settings)) and now.astimezone(dt.UTC).hour >= settings.summary_hour


def send_daily_summary(
    engine: Engine, settings: Settings, now: dt.datetime, deliver: Deliver = send_mail
) -> bool:
    """Send today's summary if its hour has come and nobody sent it yet; True if sent now."""
    if not is_due(settings, now):
        return False
    now = now.astimezone(dt.UTC)
    since = now - dt.timedelta(days=1)
    with engine.begin() as conn:
        # A concurrent claimer waits on this row until we commit, then sees it taken.
        if conn.execute(CLAIM_DAY, {"day": now.date(), "now": now}).first() is None:
            return False
        lines = campaigns_since(conn, since)
        subject, body = render(now.date(), since, lines)
        deliver(settings, build_message(settings, subject, body))
    log.info("daily summary sent", extra={"day": now.date().isoformat(), "campaigns": len(lines)})
    return True


def run_daily_summaries(
    engine: Engine,
    settings: Settings,
    stopping: threading.Event,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    interval_s: float = CHECK_INTERVAL_S,
) -> None:
    """Check every interval whether the day's summary is due; failures are retried later."""
    while not stopping.is_set():
        try:
            send_daily_summary(engine, settings, clock())
        except (SQLAlchemyError, smtplib.SMTPException, OSError) as exc:
            log.warning("daily summary not sent, retrying later: %s", exc)
        stopping.wait(interval_s)
