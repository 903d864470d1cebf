"""The priority lane's releaser: due notifications to `deliver.<channel>.priority`, ceilings first.

It runs on a thread of its own, apart from the campaign tick, so a notification waits neither
for a tick nor behind a campaign's release: it wakes when the API commits one (LISTEN on the
channel the accept notifies) or after `notification_poll_s`, releases every channel's due
notifications in a short transaction each, and waits again.

Claim, publish and commit share one transaction, as for campaigns: a failed publish leaves
the notifications unreleased, and a crash after it releases them again under the same ids
(the gateway's idempotency key).

Channel ceilings count notifications first. The per-second ceiling allows notifications up
to its rate over the last second of their own releases, and each one released takes a token
from the channel's bucket, which campaigns then wait to refill; rolling windows count every
release of the channel, notifications and campaigns alike.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import select
import threading
import time
from collections.abc import Collection, Mapping
from typing import Any

from pika.adapters.blocking_connection import BlockingConnection
from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from services.scheduler import metrics
from services.scheduler.releaser import chunks
from shared.config import ChannelLimits, Settings
from shared.db.queries.notifications import WAKE_CHANNEL, forget_all_stale_keys
from shared.db.queries.scheduling import debit_channel, record_release, released_since
from shared.db.queries.statuses import (
    ReleasedNotification,
    expire_notifications,
    release_notifications,
)
from shared.domain import channels
from shared.domain.deliveries import NOTIFICATION, DeliveryItem
from shared.domain.throttle import window_room
from shared.messaging.envelopes import DeliveryBatch
from shared.messaging.publisher import ConfirmingPublisher
from shared.messaging.publishing import keep_publishing
from shared.messaging.topology import DELIVERIES_EXCHANGE, lane_key

log = logging.getLogger(__name__)

NO_LIMITS = ChannelLimits()
EXPIRE_EVERY_S = 1.0
FORGET_KEYS_EVERY_S = 60.0
WAIT_SLICE_S = 0.02  # between slices the broker connection serves its heartbeats


def to_item(notification: ReleasedNotification) -> DeliveryItem:
    # No client id: a notification is transactional and carries no unsubscribe link.
    return DeliveryItem(
        message_id=notification.id,
        address=notification.address,
        text=notification.text,
        attempt=1,
        deadline=notification.expires_at.timestamp(),
        subject=notification.subject,
        html=notification.html,
        operator_code=notification.operator_code,
    )


def notification_room(conn: Connection, channel: str, limits: ChannelLimits, cap: int) -> int:
    """How many notifications the channel's ceilings let out now, at most `cap`."""
    room = cap
    if limits.per_second:
        used = released_since(conn, channel, 1.0, kind=NOTIFICATION)
        room = min(room, window_room(math.floor(limits.per_second), used))
    for count, seconds in limits.windows:
        room = min(room, window_room(count, released_since(conn, channel, seconds)))
    return room


def release_channel_notifications(
    engine: Engine,
    publisher: ConfirmingPublisher,
    settings: Settings,
    channel: str,
    limits: ChannelLimits,
) -> int:
    """Release the channel's due notifications its ceilings allow; returns how many."""
    with engine.begin() as conn:
        room = notification_room(conn, channel, limits, settings.release_per_tick)
        if room <= 0:
            return 0
        due = release_notifications(conn, channel, room)
        if not due:
            return 0
        items = [to_item(n) for n in due]
        key = lane_key(channel, NOTIFICATION)
        for batch in chunks(items, settings.batch_size):
            body = DeliveryBatch(0, channel, batch, NOTIFICATION).encode()
            publisher.publish(DELIVERIES_EXCHANGE, key, body)
        if limits.per_second or limits.windows:
            record_release(conn, channel, len(due), kind=NOTIFICATION)
    if limits.per_second:
        with engine.begin() as conn:
            debit_channel(conn, channel, len(due))
    metrics.NOTIFICATIONS_RELEASED.labels(channel).inc(len(due))
    wait = metrics.NOTIFICATION_WAIT_SECONDS.labels(channel)
    now = dt.datetime.now(dt.UTC)
    for notification in due:
        wait.observe(max(0.0, (now - notification.created_at).total_seconds()))
    return len(due)


def release_all(
    engine: Engine,
    publisher: ConfirmingPublisher,
    settings: Settings,
    limits: Mapping[str, ChannelLimits],
    only: Collection[str] | None = None,
) -> int:
    """One pass over every channel (or those in `only`); returns how many were released."""
    return sum(
        release_channel_notifications(
            engine, publisher, settings, channel, limits.get(channel, NO_LIMITS)
        )
        for channel in channels.names()
        if only is None or channel in only
    )


class Wakeups:
    """LISTEN on a database connection of its own: wait() returns early when the API commits
    a notification. Only a hint: when the connection is down, wait() just sleeps."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # The driver's own errors: poll() on its connection raises them, not SQLAlchemy's.
        self._driver_errors: type[Exception] = engine.dialect.loaded_dbapi.Error
        self._raw: Any = None
        self._conn: Any = None

    def wait(self, seconds: float) -> set[str]:
        """Wait up to `seconds`; the channels named by accepts meanwhile (empty: none)."""
        try:
            conn = self._listening()
            ready, _, _ = select.select([conn], [], [], seconds)
            if not ready:
                return set()
            conn.poll()
            woken = {notice.payload for notice in conn.notifies}
            conn.notifies.clear()
            return woken
        except (SQLAlchemyError, self._driver_errors, OSError, ValueError) as exc:
            log.warning("notification wake-ups unavailable (%s); polling", exc)
            self.close()
            time.sleep(seconds)
            return set()

    def _listening(self) -> Any:
        if self._conn is None:
            raw = self.engine.raw_connection()
            conn: Any = raw.driver_connection
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute(f"LISTEN {WAKE_CHANNEL}")
            self._raw, self._conn = raw, conn
        return self._conn

    def close(self) -> None:
        raw, self._raw, self._conn = self._raw, None, None
        if raw is not None:
            try:
                raw.invalidate()
            except (SQLAlchemyError, self._driver_errors):  # gone already: nothing to give back
                log.debug("closing the wake-up connection failed", exc_info=True)


class NotificationReleaser:
    """The priority lane's loop on a daemon thread, with its own broker connection."""

    def __init__(self, settings: Settings, engine: Engine, stopping: threading.Event) -> None:
        self.settings = settings
        self.engine = engine
        self.stopping = stopping
        self.limits = settings.channel_limits
        self.wakeups = Wakeups(engine)
        self._expired_at = -math.inf
        self._forgot_at = -math.inf
        self._thread = threading.Thread(target=self._run, name="notifications", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        keep_publishing(
            self.settings.amqp_url,
            "scheduler-notifications",
            self.settings.retry_delays_ms,
            self.stopping,
            self._loop,
            also_retry=(SQLAlchemyError,),
        )
        self.wakeups.close()

    def _loop(self, connection: BlockingConnection, publisher: ConfirmingPublisher) -> None:
        only: set[str] | None = None  # None: every channel
        full_pass_at = -math.inf
        while not self.stopping.is_set():
            # Wake-ups name their channels; every poll interval all of them are looked at,
            # for notifications whose send window has opened since, however busy the others.
            if time.monotonic() - full_pass_at >= self.settings.notification_poll_s:
                only = None
            if only is None:
                full_pass_at = time.monotonic()
            released = release_all(self.engine, publisher, self.settings, self.limits, only)
            self.housekeeping()
            if released >= self.settings.release_per_tick:
                only = None
                continue
            only = self._wait(connection, self.settings.notification_poll_s)

    def _wait(self, connection: BlockingConnection, seconds: float) -> set[str] | None:
        """Wait for an accept (returns the channels it named) or `seconds` (returns None)."""
        deadline = time.monotonic() + seconds
        while not self.stopping.is_set() and (left := deadline - time.monotonic()) > 0:
            woken = self.wakeups.wait(min(WAIT_SLICE_S, left))
            if woken:
                return self._linger(connection, woken)
            connection.process_data_events(time_limit=0)
        return None

    def _linger(self, connection: BlockingConnection, woken: set[str]) -> set[str]:
        """Gather what else arrives for `notification_linger_s`: at hundreds a second, one
        release of several costs every service a fraction of one release each."""
        deadline = time.monotonic() + self.settings.notification_linger_s
        while (left := deadline - time.monotonic()) > 0:
            woken |= self.wakeups.wait(left)
        connection.process_data_events(time_limit=0)
        return woken

    def housekeeping(self) -> None:
        now = time.monotonic()
        if now - self._expired_at >= EXPIRE_EVERY_S:
            with self.engine.begin() as conn:
                expired = expire_notifications(conn)
            if expired:
                metrics.NOTIFICATIONS_EXPIRED.inc(expired)
                log.info("%d notifications expired before they could be released", expired)
            self._expired_at = now
        if now - self._forgot_at >= FORGET_KEYS_EVERY_S:
            with self.engine.begin() as conn:
                forget_all_stale_keys(conn)
            self._forgot_at = now
