"""Time zone names a client may have: one list, the same on every host.

Read from the tzdata package, not the host's /usr/share/zoneinfo, so the API's allow-list (and
its OpenAPI enum) and the zones the scheduler walks are the same everywhere; zoneinfo falls back
to tzdata, so every name here loads.
"""

from __future__ import annotations

import importlib.resources

# Aliases for host settings, not zones a client lives in.
NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})
ZONES: tuple[str, ...] = tuple(
    sorted(
        set(importlib.resources.files("tzdata").joinpath("zones").read_text().split()) - NOT_ZONES
    )
)
KNOWN = frozenset(ZONES)


def is_zone(name: str) -> bool:
    """Whether `name` is on the list of zones a client may have."""
    return name in KNOWN
