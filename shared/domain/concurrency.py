"""How many campaign deliveries a sender keeps in flight: sized to the gateway's latency.

A gateway that answers at once but serves a few thousand requests a second turns a thousand
requests in flight into a queue of a second at its door, and a notification sent then waits
in that queue behind the campaign. So the number in flight follows the latency, as TCP
Vegas and Netflix's gradient limit do: while answers come as fast as the fastest seen, the
limit grows (by its square root, each window); when they slow down beyond `tolerance` times
the fastest, it shrinks in proportion. It starts at its floor and doubles while nothing
queues (TCP's slow start), so the fastest answer is learnt before a queue exists, and a slow
gateway (50 ms an answer) reaches the ceiling within a few windows; one that queues keeps
only what it serves without a queue.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

WINDOW_SAMPLES = 50  # answers per adjustment
# Now and then the fastest answer is measured again, at the floor (the gateway may have
# changed): one window drains what was in flight, the next one measures.
PROBE_EVERY_WINDOWS = 100
SMOOTHING = 0.2  # share of each new estimate taken into the limit


@dataclass(slots=True)
class GradientLimit:
    ceiling: int
    floor: int = 16
    tolerance: float = 2.0
    limit: float = 0.0
    min_rtt: float = math.inf
    _samples: list[float] = field(default_factory=list)
    _windows: int = 0
    _is_starting: bool = True
    _probe: int = 0  # windows left in a probe: 2 draining, 1 measuring
    _resume_at: float = 0.0

    def __post_init__(self) -> None:
        self.floor = min(self.floor, self.ceiling)
        if not self.limit:
            self.limit = float(self.floor)

    @property
    def slots(self) -> int:
        """Deliveries allowed in flight now."""
        return max(self.floor, min(self.ceiling, int(self.limit)))

    def record(self, rtt_s: float) -> None:
        """One answer's round trip; every WINDOW_SAMPLES of them adjust the limit."""
        self._samples.append(rtt_s)
        if len(self._samples) >= WINDOW_SAMPLES:
            self._adjust(statistics.median(self._samples))
            self._samples.clear()

    def _adjust(self, rtt: float) -> None:
        self._windows += 1
        if self._probe:
            self._probe -= 1
            if not self._probe:
                # Measured at the floor: the fastest the gateway answers now. Start again
                # from where it was, doubling while nothing queues.
                self.min_rtt, self.limit, self._is_starting = rtt, self._resume_at, True
            return
        if self._windows % PROBE_EVERY_WINDOWS == 0:
            self._probe, self._resume_at, self.limit = 2, self.limit, float(self.floor)
            return
        self.min_rtt = min(self.min_rtt, rtt)
        gradient = max(0.5, min(1.0, self.tolerance * self.min_rtt / rtt)) if rtt > 0 else 1.0
        if gradient < 1.0:
            self._is_starting = False
        if self._is_starting:
            limit = self.limit * 2
        else:
            estimate = self.limit * gradient + math.sqrt(self.limit)
            limit = (1 - SMOOTHING) * self.limit + SMOOTHING * estimate
        self.limit = float(max(self.floor, min(self.ceiling, limit)))
