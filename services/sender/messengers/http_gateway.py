"""HttpGatewayMessenger: POST /v1/send/{id} over a shared keep-alive urllib3 pool.

urllib3 rather than requests: the client is the hot path, and one process reaches about
twice the request rate with it. Its pools are thread-safe, so all threads share one.
"""

from __future__ import annotations

import json

import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from shared.config import Settings
from shared.domain.outcomes import DeliveryResult, classify_http, connection_failed, timed_out
from shared.messaging.envelopes import DeliveryItem

CHANNEL = "http"
CONNECT_TIMEOUT_CAP_S = 5.0


def make_pool(settings: Settings) -> urllib3.HTTPConnectionPool:
    """One keep-alive pool to the gateway, as wide as the dispatcher's thread pool."""
    timeout_s = settings.gateway_timeout_s
    return urllib3.connection_from_url(
        settings.gateway_url,
        maxsize=settings.sender_concurrency,
        # Blocking keeps the number of sockets at maxsize instead of opening throwaway ones.
        block=True,
        # Retries belong to the broker's delay tiers, where they cost no thread and no ack.
        retries=False,
        timeout=urllib3.Timeout(connect=min(CONNECT_TIMEOUT_CAP_S, timeout_s), read=timeout_s),
    )


class HttpGatewayMessenger:
    """Sends items through the "probe" gateway protocol; the message id is the idempotency key."""

    channel = CHANNEL

    def __init__(self, pool: urllib3.HTTPConnectionPool, base_path: str, token: str) -> None:
        self._pool = pool
        self._base_path = base_path.rstrip("/")
        self._auth = f"Bearer {token}"

    def send(self, item: DeliveryItem) -> DeliveryResult:
        """POST the item and classify the reply; network trouble is transient."""
        message_id = str(item.message_id)
        body = json.dumps(
            {"id": item.message_id, "phone": phone_digits(item.address), "text": item.text}
        ).encode()
        headers = {
            "Authorization": self._auth,
            "Content-Type": "application/json",
            "Idempotency-Key": message_id,
        }
        try:
            response = self._pool.urlopen(
                "POST",
                f"{self._base_path}/v1/send/{message_id}",
                body=body,
                headers=headers,
                retries=False,
                redirect=False,
            )
        except NewConnectionError as exc:
            # Checked first: urllib3 2 still derives it from its connect-timeout error.
            return connection_failed(exc)
        except (Urllib3Timeout, TimeoutError) as exc:
            return timed_out(exc)
        except (HTTPError, OSError) as exc:
            # Refused or reset connections, protocol errors, TLS failures.
            return connection_failed(exc)
        return classify_http(response.status, response.data)

    def close(self) -> None:
        """Close the shared pool: call it once every thread is done sending."""
        self._pool.close()


def phone_digits(address: str) -> str:
    """The gateway wants digits only: '+7 (912) 345' -> '7912345'."""
    return "".join(ch for ch in address if ch.isdigit())
