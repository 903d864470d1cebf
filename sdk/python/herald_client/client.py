"""HeraldClient: send notifications, one or thousands, read them back, wait for the outcome.

Every request carries an idempotency key fixed before its first attempt, so a retry after a
dropped connection, a timeout or a 502/503/504 can never send a notification twice.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from herald_client import bodies
from herald_client.errors import HeraldError, field_errors

# A receipt may have moved a sent notification on before it is looked at.
FINAL_STATUSES = frozenset({"sent", "failed", "expired", "cancelled", "delivered", "undelivered"})
RETRIED_STATUSES = frozenset({502, 503, 504})
NOTIFICATIONS = "/api/v1/notifications"


@dataclass(frozen=True, slots=True)
class Notification:
    """A notification's id and status; data holds every field the API returned."""

    id: int
    status: str
    is_replayed: bool = False
    data: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


class HeraldClient:
    """A client of one Herald API; safe to share between threads only if requests' Session is."""

    def __init__(
        self,
        base_url: str,
        token: str,
        timeout: float = 10.0,
        retries: int = 3,
        backoff_s: float = 0.2,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff_s = backoff_s
        self._sleep = sleep
        self._http = requests.Session()
        self._http.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    def __enter__(self) -> HeraldClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def notify(
        self,
        channel: str,
        to: bodies.Recipient,
        text: str | None = None,
        *,
        subject: str | None = None,
        html: str | None = None,
        template: str | None = None,
        variables: Mapping[str, Any] | None = None,
        expires_at: dt.datetime | str | None = None,
        send_window: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Notification:
        """Queue one notification; to is "+7...", "a@b", a client id or {"phone": ...}."""
        body = bodies.notification(
            channel,
            to,
            text,
            subject=subject,
            html=html,
            template=template,
            variables=variables,
            expires_at=expires_at,
            send_window=send_window,
        )
        key = idempotency_key or bodies.new_key()
        response = self._request("POST", NOTIFICATIONS, json=body, headers={"Idempotency-Key": key})
        answer = response.json()
        return Notification(
            int(answer["id"]),
            str(answer["status"]),
            is_replayed=response.headers.get("Idempotent-Replayed", "").lower() == "true",
            data=answer,
        )

    def notify_many(self, items: Iterable[Mapping[str, Any]]) -> list[Notification | HeraldError]:
        """Queue many notifications, 1,000 per request; one result per item, in order.

        An item is a notification's JSON ("to" may be shorthand, as for notify); one without an
        "idempotency_key" gets a fresh one. A refused item's result is a HeraldError, not raised.
        """
        results: list[Notification | HeraldError] = []
        for batch in bodies.batches(bodies.keyed(items)):
            answer = self._request("POST", NOTIFICATIONS, json=batch).json()
            results.extend(item_result(item) for item in answer["items"])
        return results

    def get(self, notification_id: int) -> Notification:
        """Read one notification: status, attempts, last_error, timestamps."""
        answer = self._request("GET", f"{NOTIFICATIONS}/{int(notification_id)}").json()
        return Notification(int(answer["id"]), str(answer["status"]), data=answer)

    def wait(
        self,
        notification_id: int,
        timeout: float | None = 60.0,
        *,
        interval: float = 0.5,
        on_change: Callable[[Notification], None] | None = None,
    ) -> Notification:
        """Poll until the notification is sent, failed, expired or cancelled; return it.

        on_change sees each new status or attempt count. TimeoutError after timeout seconds
        (None: wait as long as it takes; a notification always ends by its expires_at).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        seen: tuple[str, Any] | None = None
        while True:
            current = self.get(notification_id)
            if on_change is not None and (current.status, current.data.get("attempts")) != seen:
                seen = (current.status, current.data.get("attempts"))
                on_change(current)
            if current.is_final:
                return current
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(
                    f"notification {notification_id} still {current.status} after {timeout} s"
                )
            self._sleep(interval)

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send with retries on connection errors, timeouts and 502/503/504; raise on errors."""
        url = self.base_url + path
        attempt = 0
        while True:
            try:
                response = self._http.request(method, url, timeout=self.timeout, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                failure = HeraldError(None, f"cannot reach Herald at {url}: {exc}")
            else:
                if response.status_code < 400:
                    return response
                failure = error_of(response)
                if response.status_code not in RETRIED_STATUSES:
                    raise failure
            if attempt >= self.retries:
                raise failure
            self._sleep(self.backoff_s * 2**attempt)
            attempt += 1


def error_of(response: requests.Response) -> HeraldError:
    """The API's error payload as a HeraldError; any body that is not JSON still gives one."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    return HeraldError.from_body(response.status_code, response.reason or "", body)


def item_result(item: Mapping[str, Any]) -> Notification | HeraldError:
    """One entry of a batch answer: {"id", "status"} or {"errors": {...}}."""
    if "errors" in item:
        errors = field_errors(item["errors"])
        # The API names a key reused with another body under idempotency_key alone: a 409.
        if set(errors) == {"idempotency_key"}:
            return HeraldError(409, "Conflict: the key names another notification", errors)
        return HeraldError(422, "Unprocessable Entity: the item was refused", errors)
    return Notification(int(item["id"]), str(item["status"]), data=item)
