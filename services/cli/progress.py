"""`herald campaigns watch`: a progress line redrawn from /stats until the campaign is over."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from services.cli.campaigns import duration
from services.cli.client import Api

FINAL = frozenset({"completed", "cancelled", "expired"})
WIDTH = 30


def progress_line(stats: Mapping[str, Any], width: int = WIDTH) -> str:
    """[#####.....]  4,213/10,000  42.1%  1,234.5/s  ETA 5 s  running  delivered 3,990 (94.7%)

    The delivered part shows once a receipt came (delivery rate: delivered / sent).
    """
    total, done = stats["total"], stats["done"]
    filled = (
        int(width * min(done / total, 1.0)) if total else (width if stats["status"] in FINAL else 0)
    )
    eta = "ETA -" if stats["eta_s"] is None else f"ETA {duration(stats['eta_s'])}"
    line = (
        f"[{'#' * filled}{'.' * (width - filled)}]  {done:,}/{total:,}"
        f"  {stats['percent_done']:.1f}%  {stats['rate_per_s']:,.1f}/s  {eta}  {stats['status']}"
    )
    delivered, undelivered = stats.get("delivered", 0), stats.get("undelivered", 0)
    rate = stats.get("delivery_rate")
    if delivered + undelivered and rate is not None:
        line += f"  delivered {delivered:,} ({rate:.1%})"
    return line


def watch(
    api: Api,
    campaign_id: int,
    out: TextIO,
    interval_s: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Redraw until the campaign completes, is cancelled or expires; return the last stats.

    On a terminal the line is redrawn in place; otherwise a line is printed per change.
    """
    in_place = out.isatty()
    last = ""
    while True:
        stats = api.get(f"/campaigns/{campaign_id}/stats")
        line = progress_line(stats)
        if in_place:
            print(f"\r{line}\x1b[K", end="", file=out, flush=True)
        elif line != last:
            print(line, file=out, flush=True)
        last = line
        if stats["status"] in FINAL:
            if in_place:
                print(file=out)
            return stats
        sleep(interval_s)
