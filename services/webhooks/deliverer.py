"""Deliver owed webhook rows: lease, POST signed, record the answer; retries and disabling.

One POST in flight per subscription keeps its order, and a hanging endpoint holds only its
own slot. No transaction stays open during a POST: a row is leased (its next_attempt_at
pushed past the timeout) and committed first, so a crash mid-POST re-sends after the lease.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from sqlalchemy import Engine, RowMapping
from standardwebhooks import Webhook

from services.webhooks import metrics
from services.webhooks.guard import AddressRefused, GuardedResolver, refusal_of_host
from shared.db.queries import webhooks as queries
from shared.domain.webhooks import DISABLE_AFTER, is_delivered, is_to_disable, next_attempt_at

log = logging.getLogger(__name__)

LEASE_MARGIN_S = 30.0
PRUNE_EVERY_S = 3600.0
MAX_ERROR_CHARS = 500
USER_AGENT = "Herald-Webhooks/1"


@dataclass(frozen=True, slots=True)
class Answer:
    status_code: int | None
    error: str | None
    latency_ms: float


def signed_headers(secret: str, event_id: int, body: str, now: dt.datetime) -> dict[str, str]:
    """Standard Webhooks headers; the id is the row's, the same on every retry."""
    msg_id = f"evt_{event_id}"
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body),
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }


class Deliverer:
    """Polls for due rows and POSTs them, up to `concurrency` subscriptions at once."""

    def __init__(
        self,
        engine: Engine,
        *,
        timeout_s: float,
        concurrency: int,
        poll_s: float,
        allow_private: bool,
        retain_days: int,
    ) -> None:
        self.engine = engine
        self.timeout_s = timeout_s
        self.concurrency = concurrency
        self.poll_s = poll_s
        self.allow_private = allow_private
        self.retain_days = retain_days
        self.in_flight: dict[int, asyncio.Task[None]] = {}

    def run(self, stopping: threading.Event) -> None:
        """Deliver until `stopping` is set; POSTs in flight then are re-sent after their lease."""
        asyncio.run(self._run(stopping))

    async def _run(self, stopping: threading.Event) -> None:
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(self.allow_private), limit=self.concurrency
        )
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            pruned_at = 0.0
            while not stopping.is_set():
                if time.monotonic() - pruned_at >= PRUNE_EVERY_S:
                    pruned_at = time.monotonic()
                    await asyncio.to_thread(self.prune)
                await self.start_due(session)
                await self.wait_a_little()
            for task in self.in_flight.values():
                task.cancel()
            await asyncio.gather(*self.in_flight.values(), return_exceptions=True)

    async def wait_a_little(self) -> None:
        """Sleep a poll interval, waking early when a POST finishes and frees a slot."""
        if self.in_flight:
            await asyncio.wait(
                self.in_flight.values(), timeout=self.poll_s, return_when=asyncio.FIRST_COMPLETED
            )
        else:
            await asyncio.sleep(self.poll_s)

    async def start_due(self, session: aiohttp.ClientSession) -> None:
        free = self.concurrency - len(self.in_flight)
        if free <= 0:
            return
        try:
            rows = await asyncio.to_thread(self.lease, set(self.in_flight), free)
        except Exception:
            log.exception("leasing webhook events failed; trying again")
            return
        for row in rows:
            webhook_id = row["webhook_id"]
            task = asyncio.create_task(self.deliver(session, row))
            self.in_flight[webhook_id] = task
            task.add_done_callback(self.done_callback(webhook_id))

    def done_callback(self, webhook_id: int) -> Callable[[asyncio.Task[None]], None]:
        def forget(_: asyncio.Task[None]) -> None:
            self.in_flight.pop(webhook_id, None)

        return forget

    def lease(self, busy: set[int], limit: int) -> list[RowMapping]:
        with self.engine.begin() as conn:
            return queries.lease_due(conn, busy, limit, self.timeout_s + LEASE_MARGIN_S)

    async def deliver(self, session: aiohttp.ClientSession, row: RowMapping) -> None:
        attempted_at = dt.datetime.now(dt.UTC)
        answer = await self.post(session, row, attempted_at)
        try:
            await asyncio.to_thread(self.settle, row, answer, attempted_at)
        except Exception:
            # The lease runs out and the row is sent again: at least once.
            log.exception("recording webhook attempt for event %s failed", row["id"])

    async def post(
        self, session: aiohttp.ClientSession, row: RowMapping, now: dt.datetime
    ) -> Answer:
        url = row["url"]
        started = time.monotonic()
        refusal = refusal_of_host(urlsplit(url).hostname or "", self.allow_private)
        if refusal is not None:
            return Answer(None, f"refused at connect time: {refusal}", 0.0)
        body = json.dumps(row["payload"], separators=(",", ":"), ensure_ascii=False)
        headers = signed_headers(row["secret"], row["id"], body, now)
        try:
            async with session.post(
                url, data=body.encode(), headers=headers, allow_redirects=False
            ) as response:
                await response.read()
                status: int | None = response.status
                error = None if is_delivered(status) else f"answered {response.status}"
        except TimeoutError:
            status, error = None, f"no answer within {self.timeout_s:g} s"
        except aiohttp.ClientConnectorError as exc:
            refused = isinstance(exc.os_error, AddressRefused)
            status, error = None, str(exc.os_error) if refused else f"{type(exc).__name__}: {exc}"
        except aiohttp.ClientError as exc:
            status, error = None, f"{type(exc).__name__}: {exc}"
        latency_s = time.monotonic() - started
        metrics.LATENCY.observe(latency_s)
        return Answer(status, error, round(latency_s * 1000, 3))

    def settle(self, row: RowMapping, answer: Answer, attempted_at: dt.datetime) -> None:
        """In one transaction: the attempt, and the row delivered, rescheduled or given up."""
        webhook_id, event_id = row["webhook_id"], row["id"]
        now = dt.datetime.now(dt.UTC)
        with self.engine.begin() as conn:
            queries.record_attempt(
                conn,
                {
                    "webhook_id": webhook_id,
                    "event_id": event_id,
                    "attempted_at": attempted_at,
                    "status_code": answer.status_code,
                    "latency_ms": answer.latency_ms,
                    "error": answer.error,
                    "events": row["events"],
                },
            )
            if is_delivered(answer.status_code):
                queries.mark_delivered(conn, event_id)
                metrics.ATTEMPTS.labels("delivered").inc()
                metrics.EVENTS_DELIVERED.inc(row["events"])
                return
            metrics.ATTEMPTS.labels("failed").inc()
            error = (answer.error or "")[:MAX_ERROR_CHARS]
            retry_at = next_attempt_at(row["created_at"], row["attempts"] + 1, now)
            queries.mark_failed(conn, event_id, error, retry_at)
            failing_since = queries.mark_failing(conn, webhook_id, now)
            if is_to_disable(failing_since, now):
                self.disable(conn, webhook_id, row["url"], error)

    def disable(self, conn: Any, webhook_id: int, url: str, error: str) -> None:
        hours = DISABLE_AFTER.total_seconds() / 3600
        reason = f"failing for {hours:g} hours; last error: {error}"
        if queries.disable_webhook(conn, webhook_id, reason):
            metrics.DISABLED.inc()
            log.warning(
                "webhook %s disabled: %s has been failing for %g hours (last error: %s)",
                webhook_id,
                url,
                hours,
                error,
                extra={"webhook_id": webhook_id},
            )

    def prune(self) -> None:
        try:
            with self.engine.begin() as conn:
                pruned = queries.prune(conn, self.retain_days)
        except Exception:
            log.exception("pruning webhook rows failed")
            return
        if pruned:
            log.info("pruned %s webhook rows older than %s days", pruned, self.retain_days)
