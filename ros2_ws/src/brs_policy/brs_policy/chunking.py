"""Timing of WB-VIMA action chunks in the graph (policy_node, docs/wbvima.md "Deploying and
evaluating"): the period between a chunk's actions, and a chunk re-timed from the present."""

from __future__ import annotations

import numpy as np

from brs_common import robot_spec as spec

DEFAULT_ACTION_PERIOD = 1.0 / 10.0  # the episode recorder's default rate (config/recorder.yaml)


def action_period_of(extra: dict, override: float) -> float:
    """Seconds between a chunk's actions: the parameter when > 0, else what the checkpoint stores
    (`action_period` s or `rate_hz` / `record_rate_hz` Hz in its extra dict), else 0.1 s."""
    if override > 0:
        return float(override)
    for key in ("action_period",):
        if key in extra:
            return float(extra[key])
    for key in ("rate_hz", "record_rate_hz"):
        if key in extra and float(extra[key]) > 0:
            return 1.0 / float(extra[key])
    return DEFAULT_ACTION_PERIOD


def chunk_from_now(chunk: np.ndarray, period: float, age: float):
    """(points, times from now) of a chunk observed `age` s ago: action k is due at
    k * period - age; the actions already past are replaced by one point at time 0, the chunk
    interpolated linearly at now. (None, None) when the whole chunk lies in the past."""
    t = period * np.arange(len(chunk)) - age
    future = t > 1e-9
    if not future.any():
        return None, None
    if future.all():  # no latency (or an unstamped observation)
        return chunk, t
    i = int(np.flatnonzero(~future)[-1])  # the last action at or before now; i + 1 is ahead
    s = -t[i] / period
    now_value = chunk[i] + s * (chunk[i + 1] - chunk[i])
    return np.vstack([now_value[None], chunk[future]]), np.concatenate([[0.0], t[future]])


def timed_chunk(chunk, period: float, age: float):
    """A predicted chunk made ready for the controller: checked ((Ta, ACTION_DIM), finite; else
    ValueError), within the spec's limits (positions in [LOWER, UPPER], base velocities within
    MAX_VELOCITY; the controller clamps too, but never counts a policy's action as a violation),
    and re-timed from now (`chunk_from_now`)."""
    chunk = np.asarray(chunk, dtype=np.float64)
    if chunk.ndim != 2 or chunk.shape[1] != spec.ACTION_DIM or not np.all(np.isfinite(chunk)):
        raise ValueError(f"shape {chunk.shape} or non-finite values")
    return chunk_from_now(np.clip(chunk, spec.ACTION_LOWER, spec.ACTION_UPPER), period, age)
