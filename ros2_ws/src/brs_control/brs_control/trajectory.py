"""Chunk interpolation for the whole-body controller: pure numpy, no ROS.

A *chunk* is one validated command in absolute time: knot times (K,), values (K, n) for a subset
`idx` of the 21-D action vector (positions for position joints, velocities for the virtual base
joints) and optional knot slopes for cubic interpolation.

`Reference` is the controller's 21-D reference. Chunks are installed into it and write their
joints' values at every sample; a newer chunk takes over the joints it names from older ones.
Before its first knot a chunk starts from an *anchor*: the reference value at the moment it was
installed. After its last knot the reference holds the last point.

Interpolation:
- linear: piecewise linear between knots (always used for base velocities);
- cubic: piecewise cubic Hermite. Knot slopes come from the command's `velocities` where given;
  otherwise they are estimated shape-preservingly (PCHIP: no overshoot between knots, so no
  overshoot past joint limits), with the current commanded velocity at the anchor and zero at the
  last knot (the reference comes to rest on the held point).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LINEAR = "linear"
CUBIC = "cubic"
INTERPOLATIONS = (LINEAR, CUBIC)


@dataclass
class Chunk:
    """A command in absolute time for the action indices `idx`."""

    idx: np.ndarray  # (n,) int indices into the 21-D action vector
    times: np.ndarray  # (K,) absolute seconds, strictly increasing
    values: np.ndarray  # (K, n) positions (position joints) or velocities (base joints)
    slopes: np.ndarray | None = None  # (K, n) knot derivatives for cubic; NaN = estimate
    linear_cols: np.ndarray | None = None  # (n,) bool: columns always interpolated linearly
    # Whether the reference comes to rest at the last knot (a motion) or the source is expected to
    # continue (a streaming sample): only a resting end is a stop point for the limiter.
    rest_at_end: bool = True

    def __post_init__(self):
        self.idx = np.asarray(self.idx, dtype=np.intp).reshape(-1)
        self.times = np.asarray(self.times, dtype=np.float64).reshape(-1)
        self.values = np.asarray(self.values, dtype=np.float64).reshape(len(self.times), len(self.idx))
        if self.linear_cols is None:
            self.linear_cols = np.zeros(len(self.idx), dtype=bool)
        if len(self.times) == 0 or np.any(np.diff(self.times) <= 0):
            raise ValueError("chunk times must be non-empty and strictly increasing")

    @property
    def start(self) -> float:
        return float(self.times[0])

    @property
    def end(self) -> float:
        return float(self.times[-1])


def _segment(times: np.ndarray, t: float) -> tuple[int, float]:
    """Segment k with times[k] <= t < times[k+1] and the normalised position s in [0, 1)."""
    k = int(np.searchsorted(times, t, side="right")) - 1
    return k, (t - times[k]) / (times[k + 1] - times[k])


def interp_linear(times: np.ndarray, values: np.ndarray, t: float) -> np.ndarray:
    """Piecewise-linear value at t; the first/last knot value outside [times[0], times[-1]]."""
    if t <= times[0]:
        return values[0].copy()
    if t >= times[-1]:
        return values[-1].copy()
    k, s = _segment(times, t)
    return values[k] + s * (values[k + 1] - values[k])


def slope_linear(times: np.ndarray, values: np.ndarray, t: float) -> np.ndarray:
    """Derivative of the piecewise-linear interpolant at t (zero outside the knots)."""
    if t < times[0] or t >= times[-1]:
        return np.zeros(values.shape[1])
    k, _ = _segment(times, t)
    return (values[k + 1] - values[k]) / (times[k + 1] - times[k])


def slope_hermite(times: np.ndarray, values: np.ndarray, slopes: np.ndarray, t: float) -> np.ndarray:
    """Derivative of the cubic Hermite interpolant at t (zero outside the knots)."""
    if t < times[0] or t >= times[-1]:
        return np.zeros(values.shape[1])
    k, s = _segment(times, t)
    h = times[k + 1] - times[k]
    s2 = s * s
    return ((6 * s2 - 6 * s) / h * values[k] + (3 * s2 - 4 * s + 1) * slopes[k]
            + (6 * s - 6 * s2) / h * values[k + 1] + (3 * s2 - 2 * s) * slopes[k + 1])


def interp_hermite(times: np.ndarray, values: np.ndarray, slopes: np.ndarray, t: float) -> np.ndarray:
    """Piecewise cubic Hermite value at t (knot values and slopes); clamped outside the knots."""
    if t <= times[0]:
        return values[0].copy()
    if t >= times[-1]:
        return values[-1].copy()
    k, s = _segment(times, t)
    h = times[k + 1] - times[k]
    s2, s3 = s * s, s * s * s
    h00 = 2 * s3 - 3 * s2 + 1
    h10 = s3 - 2 * s2 + s
    h01 = -2 * s3 + 3 * s2
    h11 = s3 - s2
    return h00 * values[k] + h10 * h * slopes[k] + h01 * values[k + 1] + h11 * h * slopes[k + 1]


def pchip_slopes(times: np.ndarray, values: np.ndarray, first=None, last=None) -> np.ndarray:
    """Shape-preserving knot slopes (Fritsch-Carlson / PCHIP) for (K,) times and (K, n) values.

    Interior slopes are the weighted harmonic mean of the neighbouring secants, zero where the
    secants change sign (local extremum), so the cubic never overshoots its knots. End slopes are
    `first` / `last` (default 0).
    """
    K = len(times)
    values = np.asarray(values, dtype=np.float64)
    m = np.zeros_like(values)
    if K >= 3:
        h = np.diff(times)[:, None]  # (K-1, 1)
        d = np.diff(values, axis=0) / h  # secants (K-1, n)
        h0, h1 = h[:-1], h[1:]
        d0, d1 = d[:-1], d[1:]
        w1, w2 = 2 * h1 + h0, h1 + 2 * h0
        same = (d0 * d1) > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            harmonic = (w1 + w2) / (w1 / d0 + w2 / d1)
        m[1:-1] = np.where(same, harmonic, 0.0)
    if first is not None:
        m[0] = first
    if last is not None:
        m[-1] = last
    return m


def turning_knots(values: np.ndarray) -> np.ndarray:
    """(K-1, n): for each segment, the index of the knot where that column next stops or turns.

    That is the first knot at or after the segment's end where the direction of motion changes
    (or the last knot). The reference comes to rest or reverses there, so a follower that may
    overshoot must be able to stop by it.
    """
    k, n = values.shape
    turn = np.empty((max(k - 1, 0), n), dtype=np.intp)
    if k < 2:
        return turn
    direction = np.sign(np.diff(values, axis=0))
    turn[-1] = k - 1
    for j in range(k - 3, -1, -1):
        turn[j] = np.where(direction[j + 1] == direction[j], turn[j + 1], j + 1)
    return turn


@dataclass
class _Active:
    idx: np.ndarray
    times: np.ndarray
    values: np.ndarray
    slopes: np.ndarray | None  # None: linear
    linear_cols: np.ndarray
    mask: np.ndarray = field(default=None)  # columns still owned by this chunk
    rest_at_end: bool = True

    def __post_init__(self):
        if self.mask is None:
            self.mask = np.ones(len(self.idx), dtype=bool)
        self.turn = turning_knots(self.values)
        self.cols = np.arange(len(self.idx))

    def stop(self, t: float) -> np.ndarray:
        """Per column, the value where the reference next comes to rest or turns back.

        NaN where the next such point is the end of a chunk that does not rest there (streaming).
        """
        if t >= self.times[-1] or len(self.times) < 2:
            return self.values[-1]
        k = max(int(np.searchsorted(self.times, t, side="right")) - 1, 0)
        turn = self.turn[k]
        out = self.values[turn, self.cols]
        if not self.rest_at_end:
            out = np.where(turn == len(self.times) - 1, np.nan, out)
        return out

    def sample(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Value and time derivative at t."""
        out = interp_linear(self.times, self.values, t)
        rate = slope_linear(self.times, self.values, t)
        if self.slopes is not None:
            cubic = ~self.linear_cols
            if cubic.any():
                v, m = self.values[:, cubic], self.slopes[:, cubic]
                out[cubic] = interp_hermite(self.times, v, m, t)
                rate[cubic] = slope_hermite(self.times, v, m, t)
        return out, rate


class Reference:
    """The controller's 21-D reference, driven by installed chunks; holds values between them."""

    def __init__(self, initial, interpolation: str = LINEAR):
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
        self.value = np.array(initial, dtype=np.float64)
        self.velocity = np.zeros_like(self.value)  # d(value)/dt of the chunks at the last sample
        self.stop = self.value.copy()  # where each joint's reference next stops or turns back
        self.interpolation = interpolation
        self._active: list[_Active] = []

    @property
    def busy(self) -> bool:
        """True while a chunk still has knots ahead (the reference is moving or will move)."""
        return bool(self._active)

    @property
    def end(self) -> float:
        """Time of the last knot of the installed chunks (-inf when none)."""
        return max((float(a.times[-1]) for a in self._active), default=-np.inf)

    def clear(self) -> None:
        """Drop every chunk; the reference holds its current value."""
        self._active.clear()
        self.velocity[:] = 0.0

    def install(self, chunk: Chunk, now: float, velocity=None) -> None:
        """Make `chunk` drive its joints from `now` on (older chunks give those joints up).

        The installed chunks are first brought up to `now`. If the new chunk's first knot lies
        after `now`, an anchor knot (now, current value) is put in front so the reference moves
        smoothly from where it is. `velocity` (21-D, optional) is
        the current commanded velocity, used as the anchor slope for cubic interpolation.
        """
        self.sample(now)  # the reference as it is at `now`: the anchor and the hand-over point
        taken = np.zeros(len(self.value), dtype=bool)
        taken[chunk.idx] = True
        for active in self._active:
            active.mask &= ~taken[active.idx]
        self._active = [a for a in self._active if a.mask.any()]

        times, values = chunk.times, chunk.values
        given = chunk.slopes
        anchor = times[0] > now
        if anchor:
            times = np.concatenate(([now], times))
            values = np.vstack((self.value[chunk.idx], values))
            if given is not None:
                given = np.vstack((np.full(len(chunk.idx), np.nan), given))
        slopes = None
        if self.interpolation == CUBIC:
            first = None
            if anchor and velocity is not None:
                first = np.asarray(velocity, dtype=np.float64)[chunk.idx]
            slopes = pchip_slopes(times, values, first=first, last=0.0)
            if given is not None:
                slopes = np.where(np.isfinite(given), given, slopes)
        self._active.append(_Active(chunk.idx, times, values, slopes, chunk.linear_cols.copy(),
                                    rest_at_end=chunk.rest_at_end))

    def sample(self, now: float) -> np.ndarray:
        """Reference at `now` (a view of the internal 21-D vector; copy it to keep it).

        `self.velocity` is updated too: the interpolant's derivative (zero for held joints), the
        feed-forward velocity of the joint limiter; and `self.stop`: the value where each joint's
        reference next comes to rest or turns back (its own value for held joints; NaN when that is
        the end of a streaming sample, see Chunk.rest_at_end).
        """
        keep = []
        self.velocity[:] = 0.0
        for active in self._active:
            v, rate = active.sample(now)
            cols = active.mask
            idx = active.idx[cols]
            self.value[idx] = v[cols]
            self.velocity[idx] = rate[cols]
        self.stop[:] = self.value
        for active in self._active:
            cols = active.mask
            self.stop[active.idx[cols]] = active.stop(now)[cols]
            if now < active.times[-1]:
                keep.append(active)
        self._active = keep
        return self.value
