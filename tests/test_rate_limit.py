"""brs_common.rate_limit.ChangeLimiter on a made-up clock: what is said when."""

from __future__ import annotations

import pytest

from brs_common.rate_limit import ChangeLimiter


def test_changes_are_said_at_most_once_per_period_and_the_end_state_is_said():
    lim = ChangeLimiter(2.0)
    assert lim.offer("bus", "ok", 0.0, initial="ok") is None  # no change
    first = lim.offer("bus", "warn", 0.1, initial="ok")
    assert first is not None and first.changes == 1 and first.suffix() == ""
    for k, t in enumerate((0.3, 0.5, 0.7, 0.9)):  # flapping within the period: held back
        assert lim.offer("bus", "ok" if k % 2 == 0 else "warn", t) is None
    assert lim.due(1.0) == []  # the period has not run out
    assert lim.due(2.2) == []  # it has, but the stream is back where it was said (warn)
    assert lim.offer("bus", "ok", 2.3).changes == 5  # the next change carries the count
    lim.offer("bus", "warn", 2.4)
    lim.offer("bus", "ok", 2.5)
    lim.offer("bus", "warn", 2.6)
    [(key, state, report)] = lim.due(4.3)  # ended elsewhere than said: said once the period is out
    assert (key, state, report.changes) == ("bus", "warn", 3) and report.span == pytest.approx(2.0)
    assert report.suffix() == " (3 changes in the last 2.0 s)"
    assert lim.due(10.0) == []


def test_forced_reports_come_at_once_and_streams_are_independent():
    lim = ChangeLimiter(5.0)
    assert lim.offer("a", 1, 0.0, initial=0) is not None
    assert lim.offer("a", 0, 0.1) is None
    assert lim.offer("a", 2, 0.2, force=True).changes == 2  # e.g. an ERROR: now, with the folded change
    assert lim.offer("b", 1, 0.3, initial=0) is not None  # another stream has its own period
    assert lim.state("a") == 2 and lim.state("c", "none") == "none"
    with pytest.raises(ValueError):
        ChangeLimiter(0)
