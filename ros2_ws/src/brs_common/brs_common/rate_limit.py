"""Rate limiting of state-change lines (console and log) so a flapping stream cannot flood them.

    limiter = ChangeLimiter(period=5.0)
    report = limiter.offer("/left_arm_driver/joint_states", "stale", now)
    if report:                      # say it now; report.changes > 1: others were folded in
        log(f"... stale{report.suffix()}")
    for key, state, report in limiter.due(now):   # call every so often
        log(f"... {state}{report.suffix()}")      # where a stream ended up, once its period ran out

A stream's change is reported at once when its previous report is at least `period` old (or
when the caller forces it, e.g. an ERROR); otherwise it is held back and counted. Once the period
since the last report has passed, `due` reports the streams whose state now differs from the one
last reported, with the number of changes folded in. A stream that flapped and came back to the
state last reported says nothing until its next change, which then carries the count. So each
stream prints at most one line per period (plus forced ones), and its last line is never stale
for longer than one period.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Report:
    changes: int  # state changes this report stands for (1: just this one)
    span: float  # s since the stream's previous report (inf: the first)

    def suffix(self) -> str:
        """'' for a single change, else ' (N changes in the last S s)'."""
        if self.changes <= 1:
            return ""
        span = f"{self.span:.1f} s" if math.isfinite(self.span) else "a while"
        return f" ({self.changes} changes in the last {span})"


@dataclass
class _Stream:
    current: Any
    reported: Any
    last: float = -math.inf  # time of the last report
    held: int = 0  # changes since the last report that were not reported


class ChangeLimiter:
    """Per-stream (any hashable key) state changes, reported at most once per `period` seconds."""

    def __init__(self, period: float):
        if not period > 0:
            raise ValueError(f"period must be positive, got {period}")
        self.period = float(period)
        self._streams: dict[Hashable, _Stream] = {}

    def state(self, key: Hashable, default: Any = None) -> Any:
        """The stream's latest state (reported or not)."""
        stream = self._streams.get(key)
        return default if stream is None else stream.current

    def offer(self, key: Hashable, state: Any, now: float, *, initial: Any = None,
              force: bool = False) -> Report | None:
        """The stream's state at `now` (a stream starts in `initial`). A Report when this is to
        be said now: a change whose stream has not reported for `period` s, or any call with
        `force` (then even without a change); None when nothing changed or it is held back."""
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = _Stream(initial, initial)
        if state != stream.current:
            stream.current = state
            stream.held += 1
        elif not force:
            return None
        if force or now - stream.last >= self.period:
            return self._report(stream, now)
        return None

    def due(self, now: float) -> list[tuple[Hashable, Any, Report]]:
        """(key, state, report) of every held-back stream whose period has run out and whose
        state differs from the one last reported: to be said now."""
        out = []
        for key, stream in self._streams.items():
            if stream.held and stream.current != stream.reported and now - stream.last >= self.period:
                out.append((key, stream.current, self._report(stream, now)))
        return out

    @staticmethod
    def _report(stream: _Stream, now: float) -> Report:
        report = Report(max(stream.held, 1), now - stream.last)
        stream.held, stream.reported, stream.last = 0, stream.current, now
        return report
