"""When the next full scan is due: a fixed interval ("90s", "15m", "1h", "1d") or a cron expression."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Schedule:
    spec: str
    interval: timedelta | None = None
    cron: str | None = None

    def next_after(self, when: datetime) -> datetime:
        if self.interval is not None:
            return when + self.interval
        from croniter import croniter

        nxt: datetime = croniter(self.cron, when).get_next(datetime)
        return nxt


def parse_schedule(spec: str) -> Schedule:
    """Raise ValueError naming the problem when ``spec`` is neither an interval nor a valid cron expression."""
    text = spec.strip()
    m = re.fullmatch(r"(\d+)\s*([smhd])", text)
    if m:
        seconds = int(m.group(1)) * _UNITS[m.group(2)]
        if seconds < 1:
            raise ValueError(f"--interval {spec!r}: must be at least 1s")
        return Schedule(spec, interval=timedelta(seconds=seconds))
    from croniter import croniter

    if len(text.split()) in (5, 6) and croniter.is_valid(text):
        return Schedule(spec, cron=text)
    raise ValueError(f"--interval {spec!r}: not an interval (30s, 15m, 1h, 1d) nor a cron expression ('0 * * * *')")
