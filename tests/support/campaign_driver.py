"""Driving one campaign through a running stack's REST API, as the fault tests do.

A mixin: the class using it has `api_url` and an authorised `http` session, and says in
`diagnosis` where the messages of a campaign that did not finish are.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import requests

from tests.support.waiting import wait_until

FINISHED = ("completed", "expired", "cancelled")


class CampaignDriver:
    api_url: str
    http: requests.Session

    def create_campaign(self, tags: tuple[str, ...] = ()) -> requests.Response:
        now = dt.datetime.now(dt.UTC)
        body = {
            "name": f"faults {secrets.token_hex(3)}",
            "channel": "http",
            "text": "Hello {{ name }}",
            "filter": {"tags": list(tags), "operator_codes": []},
            "starts_at": now.isoformat(),
            "ends_at": (now + dt.timedelta(hours=2)).isoformat(),
        }
        return self.http.post(f"{self.api_url}/api/v1/campaigns", json=body, timeout=30)

    def start_campaign(self, tags: tuple[str, ...] = ()) -> int:
        response = self.create_campaign(tags)
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    def stats(self, campaign_id: int) -> dict[str, Any] | None:
        """The stats endpoint's answer, or None while the API cannot give one."""
        try:
            response = self.http.get(
                f"{self.api_url}/api/v1/campaigns/{campaign_id}/stats", timeout=10
            )
        except requests.RequestException:
            return None
        return response.json() if response.status_code == 200 else None

    def readiness(self) -> dict[str, Any]:
        try:
            response = requests.get(f"{self.api_url}/readyz", timeout=10)
            return {"http_status": response.status_code, **response.json()}
        except (requests.RequestException, ValueError):
            return {"http_status": None}

    def wait_share_final(self, campaign_id: int, share: float, timeout: float = 120) -> None:
        """Wait until this share of the recipients has a final status."""

        def reached() -> bool:
            s = self.stats(campaign_id)
            final = s and s["sent"] + s["failed"] + s["expired"] + s["cancelled"]
            return bool(s and s["total"] and final >= share * s["total"])

        wait_until(reached, timeout=timeout)

    def wait_finished(self, campaign_id: int, timeout: float = 120) -> dict[str, Any]:
        def finished() -> dict[str, Any] | None:
            s = self.stats(campaign_id)
            return s if s and s["status"] in FINISHED else None

        try:
            return wait_until(finished, timeout=timeout, interval=0.25)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.diagnosis(campaign_id)}") from None

    def diagnosis(self, campaign_id: int) -> str:
        raise NotImplementedError
