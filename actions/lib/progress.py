"""Progress of long copies and checksums: percent, rate and ETA, reported at a calm pace."""
import time
from typing import Any, Callable, Dict, Optional

Report = Callable[[Dict[str, Any]], None]


class Progress:
    """Turns "fraction done" updates into reports at most every ``interval`` seconds (and at
    the end), with the rate and ETA derived from the bytes done so far."""

    def __init__(self, what: str, total_bytes: int, report: Optional[Report],
                 interval: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.what = what
        self.total = max(int(total_bytes), 0)
        self._report = report
        self._interval = interval
        self._clock = clock
        self._started = clock()
        self._last_report = self._started
        self._last_fraction = -1.0

    def update(self, fraction: float) -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        now = self._clock()
        due = now - self._last_report >= self._interval
        if self._report is None or fraction <= self._last_fraction or not (due or fraction >= 1):
            return
        self._last_fraction, self._last_report = fraction, now
        self._report(self.snapshot(fraction, now))

    def snapshot(self, fraction: float, now: Optional[float] = None) -> Dict[str, Any]:
        elapsed = (now if now is not None else self._clock()) - self._started
        done = fraction * self.total
        rate = done / elapsed if elapsed > 0 else None
        eta = (self.total - done) / rate if rate else None
        return {"what": self.what, "percent": round(100 * fraction, 1),
                "mb_per_second": round(rate / 1e6, 1) if rate else None,
                "eta_seconds": round(eta) if eta is not None else None,
                "elapsed_seconds": round(elapsed, 1)}


def describe(report: Dict[str, Any]) -> str:
    """One readable line for logs and chat: ``copy x: 45% at 380 MB/s, ETA 12 s``."""
    text = "%s: %.0f%%" % (report["what"], report["percent"])
    if report.get("mb_per_second"):
        text += " at %.0f MB/s" % report["mb_per_second"]
    if report.get("eta_seconds") is not None and report["percent"] < 100:
        text += ", ETA %d s" % report["eta_seconds"]
    return text
