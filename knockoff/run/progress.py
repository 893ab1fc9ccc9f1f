"""Progress of a scan: a bar on a terminal, else a log line every so many seconds or listings.

The log lines (logger ``knockoff.run.progress``, level INFO) give the count, the rate and the time left, so
that a scan run by cron or CI shows it is alive; the CLI turns them on.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

log = logging.getLogger(__name__)

EVERY_S = 10.0
EVERY_N = 1000
_MIN_GAP_S = 1.0


def format_duration(seconds: float) -> str:
    """``"2 h 05 min"``, ``"3 min 20 s"``, ``"12 s"``; ``"unknown"`` when not finite."""
    if seconds != seconds or seconds == float("inf"):
        return "unknown"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


class Progress:
    """Counts decided listings. ``bar``: a tqdm bar on stderr (None: when stderr is a terminal); otherwise
    a log line every ``every_s`` seconds or ``every_n`` listings, whichever comes first, and at the end."""

    def __init__(self, total: int, *, bar: bool | None = None, every_s: float = EVERY_S, every_n: int = EVERY_N,
                 clock: Any = time.monotonic):
        self.total = total
        self.done = 0
        self.every_s, self.every_n = every_s, every_n
        self.clock = clock
        self.started = self.last_time = clock()
        self.last_done = 0
        self.bar: Any = None
        if (sys.stderr.isatty() if bar is None else bar) and total:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="listing", dynamic_ncols=True, file=sys.stderr)

    def advance(self, n: int) -> None:
        """Count ``n`` more decided listings."""
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = self.clock()
        due = now - self.last_time >= self.every_s or self.done - self.last_done >= self.every_n
        if self.done >= self.total or (due and now - self.last_time >= _MIN_GAP_S):
            log.info("%s", self.line(now))
            self.last_time, self.last_done = now, self.done

    def line(self, now: float | None = None) -> str:
        """``"scanned 1200/5000 listings (24 %), 35.2 a second, about 1 min 48 s left"``."""
        now = self.clock() if now is None else now
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        share = 100 * self.done / self.total if self.total else 100.0
        return (f"scanned {self.done}/{self.total} listings ({share:.0f} %), {rate:.1f} a second, "
                f"about {format_duration(left)} left")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
