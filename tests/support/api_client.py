"""A thin requests wrapper over Herald's REST API, as an operator's script would use it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import requests


class ApiClient:
    def __init__(self, base_url: str, token: str) -> None:
        self.base = f"{base_url}/api/v1"
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        response = self.http.request(method, f"{self.base}{path}", timeout=120, **kwargs)
        assert response.status_code == expect, (response.status_code, response.text[:2000])
        return response.json() if response.content else None

    def import_clients(self, clients: list[dict[str, Any]]) -> dict[str, Any]:
        return self.request("POST", "/clients/import", json=clients)

    def create_campaign(self, **body: Any) -> dict[str, Any]:
        return self.request("POST", "/campaigns", expect=201, json=body)

    def stats(self, campaign_id: int) -> dict[str, Any]:
        return self.request("GET", f"/campaigns/{campaign_id}/stats")

    def completed_stats(self, campaign_id: int) -> dict[str, Any] | None:
        """The campaign's stats once it has completed; None before (a wait_until predicate)."""
        stats = self.stats(campaign_id)
        return stats if stats["status"] == "completed" else None

    def pages(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of a keyset-paginated listing."""
        after = None
        while True:
            query = {**params, "limit": 1000, **({"after": after} if after else {})}
            page = self.request("GET", path, params=query)
            yield from page["items"]
            after = page["next_after"]
            if after is None:
                return
