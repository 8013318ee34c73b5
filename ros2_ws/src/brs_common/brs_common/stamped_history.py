"""A short history of stamped samples, for matching one stream's messages to another's stamps.

    h = StampedHistory(maxlen=300)            # or horizon=0.5: keep 0.5 s behind the newest
    h.add(stamp_to_sec(msg.header.stamp), positions)
    h.nearest(t)         # (stamp, value) closest to t, or None
    h.at_or_before(t)    # (stamp, value) of the newest sample stamped <= t, or None

Stamps must not go back: a sample older than the newest one means the clock restarted (a sim
restarted from zero), and the history starts over from it.
"""

from __future__ import annotations

import bisect
from collections import deque
from typing import Any


class StampedHistory:
    def __init__(self, maxlen: int | None = None, horizon: float | None = None):
        if maxlen is None and horizon is None:
            raise ValueError("StampedHistory needs a maxlen, a horizon (s) or both")
        self.horizon = horizon
        self._t: deque[float] = deque(maxlen=maxlen)
        self._v: deque[Any] = deque(maxlen=maxlen)

    def __len__(self) -> int:
        return len(self._t)

    def clear(self) -> None:
        self._t.clear()
        self._v.clear()

    def add(self, stamp: float, value) -> None:
        if self._t and stamp < self._t[-1]:
            self.clear()
        self._t.append(stamp)
        self._v.append(value)
        if self.horizon is not None:
            while self._t[0] < stamp - self.horizon:
                self._t.popleft()
                self._v.popleft()

    def latest(self) -> tuple[float, Any] | None:
        return (self._t[-1], self._v[-1]) if self._t else None

    def nearest(self, t: float) -> tuple[float, Any] | None:
        """The sample whose stamp is closest to `t` (the earlier one on a tie)."""
        if not self._t:
            return None
        i = bisect.bisect_left(self._t, t)
        j = min((k for k in (i - 1, i) if 0 <= k < len(self._t)), key=lambda k: abs(self._t[k] - t))
        return self._t[j], self._v[j]

    def at_or_before(self, t: float, tolerance: float = 1e-6) -> tuple[float, Any] | None:
        """The newest sample stamped at or before `t` (+ `tolerance`), or None."""
        i = bisect.bisect_right(self._t, t + tolerance) - 1
        return (self._t[i], self._v[i]) if i >= 0 else None
