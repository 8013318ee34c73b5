"""brs_common.stamped_history: the one history the recorder, perception and policy nodes match stamps with."""

from __future__ import annotations

import numpy as np
import pytest

from brs_common.stamped_history import StampedHistory


def test_nearest_and_at_or_before_against_a_linear_scan():
    rng = np.random.default_rng(0)
    stamps = np.cumsum(rng.uniform(0.001, 0.05, 200))
    h = StampedHistory(maxlen=500)
    for k, t in enumerate(stamps):
        h.add(float(t), k)
    for t in rng.uniform(stamps[0] - 0.1, stamps[-1] + 0.1, 500):
        best = int(np.argmin(np.abs(stamps - t)))
        assert h.nearest(t) == (stamps[best], best)
        before = np.flatnonzero(stamps <= t + 1e-6)
        assert h.at_or_before(t) == ((stamps[before[-1]], int(before[-1])) if len(before) else None)
    assert h.latest() == (stamps[-1], 199) and len(h) == 200


def test_bounds_and_a_clock_that_goes_back():
    h = StampedHistory(maxlen=3)
    for k in range(5):
        h.add(float(k), k)
    assert len(h) == 3 and h.nearest(-10.0) == (2.0, 2)  # the oldest kept
    h.add(1.0, "restart")  # the sim restarted: stale samples must not match new stamps
    assert len(h) == 1 and h.nearest(4.0) == (1.0, "restart")
    w = StampedHistory(horizon=0.5)
    for k in range(10):
        w.add(0.1 * k, k)
    assert w.at_or_before(0.3) is None and w.nearest(0.0) == (pytest.approx(0.4), 4)
    empty = StampedHistory(maxlen=1)
    assert empty.nearest(1.0) is None and empty.at_or_before(1.0) is None and empty.latest() is None
    with pytest.raises(ValueError, match="needs a maxlen, a horizon"):
        StampedHistory()
