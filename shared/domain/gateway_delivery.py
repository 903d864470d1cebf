"""DeliveryShares: each gateway's delivered share by its recent receipts, and its verdict.

A gateway whose receipts over the last `window_s` say it delivers under `min_share` of what
they report on is low; with fewer than `min_receipts` in the window there is no verdict, and
a gateway without one takes traffic. So a gateway that lost its traffic gets some back once
its old receipts age out: if it still delivers badly, its new receipts say so again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_WINDOW_S = 300.0
DEFAULT_MIN_RECEIPTS = 100


@dataclass(frozen=True, slots=True)
class Verdict:
    share: float  # delivered / (delivered + undelivered) in the window
    receipts: int
    low: bool


class DeliveryShares:
    def __init__(
        self,
        min_share: float,
        window_s: float = DEFAULT_WINDOW_S,
        min_receipts: int = DEFAULT_MIN_RECEIPTS,
    ) -> None:
        self.min_share = min_share
        self.window_s = window_s
        self.min_receipts = min_receipts
        self._entries: dict[str, deque[tuple[float, int, int]]] = {}

    def add(self, now: float, counts: Mapping[str, tuple[int, int]]) -> None:
        """Receipts applied at `now`: (delivered, undelivered) per gateway."""
        for gateway, (delivered, undelivered) in counts.items():
            if delivered or undelivered:
                self._entries.setdefault(gateway, deque()).append((now, delivered, undelivered))

    def verdicts(self, now: float) -> dict[str, Verdict]:
        """The gateways with enough recent receipts to judge, and whether each is low."""
        found = {}
        for gateway, entries in list(self._entries.items()):
            while entries and entries[0][0] < now - self.window_s:
                entries.popleft()
            if not entries:
                del self._entries[gateway]
                continue
            delivered = sum(e[1] for e in entries)
            total = delivered + sum(e[2] for e in entries)
            if total < self.min_receipts:
                continue
            share = delivered / total
            found[gateway] = Verdict(share, total, share < self.min_share)
        return found
