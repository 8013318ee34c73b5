"""JoyLo input log: record the Joy-Con + leader-arm stream, replay it without hardware.

JSON lines. The first line is a header, every further line one loop tick:

    {"format": "brs_joylo_log/1", "rate_hz": 100.0, "arm_joints": [...12 names...]}
    {"t": 0.01, "events": [{"type": "JOYAXISMOTION", "joy": 0, "axis": 1, "value": -0.7}],
     "leader": [12 floats] | null, "command": [21 floats]}

`events`: the SDL joystick events of that tick as dicts (joycon.event_dict); `leader`: the 12
calibrated leader-arm targets (left arm, right arm), NaN where an arm was unreadable (null: both);
a tick without a "leader" key takes the leader from the live arms on replay (a scripted
Joy-Con sequence); `command`: the 21-D target published that tick (for checks; replay
recomputes it). `t`: seconds since the first tick.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMAT = "brs_joylo_log/1"
LIVE = "live"  # Tick.leader when the log leaves the leader arms to the live bus


class JoyloLogError(ValueError):
    """A log that cannot be replayed (the message names the file and line)."""


@dataclass(frozen=True)
class Tick:
    t: float
    events: list[dict]
    leader: np.ndarray | str  # 12 values (NaN: unreadable, hold) or LIVE
    command: np.ndarray | None = None


class LogWriter:
    """Appends ticks to a JSON-lines log; flushed every `flush_every` ticks and on close."""

    def __init__(self, path: str | Path, rate_hz: float, arm_joints, flush_every: int = 50):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "w")
        self._f.write(json.dumps({"format": FORMAT, "rate_hz": float(rate_hz),
                                  "arm_joints": list(arm_joints)}) + "\n")
        self._t0: float | None = None
        self._n = 0
        self.flush_every = flush_every

    def write(self, now: float, events, leader, command) -> None:
        if self._t0 is None:
            self._t0 = now
        rec = {"t": round(now - self._t0, 6), "events": list(events)}
        if isinstance(leader, str):
            pass  # LIVE cannot be recorded: the live values are
        else:
            rec["leader"] = [float(x) for x in leader]  # NaN is written as NaN (Python's json)
        if command is not None:
            rec["command"] = [float(x) for x in command]
        self._f.write(json.dumps(rec) + "\n")
        self._n += 1
        if self._n % self.flush_every == 0:
            self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()


def _array(where: str, value, n: int, name: str, allow_nan: bool = False) -> np.ndarray:
    if not isinstance(value, list) or len(value) != n or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool)
            and (math.isfinite(x) or (allow_nan and math.isnan(x))) for x in value):
        raise JoyloLogError(f"{where}: {name} must be a list of {n} finite numbers"
                            + (" (NaN: unreadable)" if allow_nan else ""))
    return np.asarray(value, dtype=float)


def read_log(path: str | Path, arm_joints=None) -> tuple[dict, list[Tick]]:
    """(header, ticks) of a log, fully validated before anything is replayed."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise JoyloLogError(f"{path}: cannot read the replay file: {exc}") from exc
    if not lines:
        raise JoyloLogError(f"{path}: empty replay file")
    try:
        header = json.loads(lines[0])
    except json.JSONDecodeError as exc:
        raise JoyloLogError(f"{path}:1: not JSON: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise JoyloLogError(f"{path}:1: header must have format {FORMAT!r}")
    if arm_joints is not None and list(header.get("arm_joints", [])) != list(arm_joints):
        raise JoyloLogError(f"{path}:1: arm_joints {header.get('arm_joints')} differ from {list(arm_joints)}")
    ticks = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise JoyloLogError(f"{where}: not JSON: {exc}") from None
        if not isinstance(rec, dict) or not isinstance(rec.get("events", []), list):
            raise JoyloLogError(f"{where}: a tick is {{t, events, leader?, command?}}")
        events = rec.get("events", [])
        for e in events:
            if not isinstance(e, dict) or not isinstance(e.get("type"), str):
                raise JoyloLogError(f"{where}: events must be dicts with a 'type'")
        if "leader" not in rec:
            leader = LIVE
        elif rec["leader"] is None:
            leader = np.full(12, np.nan)
        else:
            leader = _array(where, rec["leader"], 12, "leader", allow_nan=True)
        command = _array(where, rec["command"], 21, "command") if rec.get("command") is not None else None
        ticks.append(Tick(float(rec.get("t", 0.0)), events, leader, command))
    return header, ticks
