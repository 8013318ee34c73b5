"""Joint-state merger: the union of the drivers' joint states on /joint_states (real robot).

Each hardware driver publishes its own sensor_msgs/JointState (arm/torso bus drivers, the wheel
driver, the grippers); this node publishes their union on topics.JOINT_STATES at `rate_hz` from a
steady-clock timer, in robot_spec.STATE_JOINTS order followed by any extra joints (e.g. wheels)
in the order of `sources` and of each source's message.

Freshness policy (why): consumers of /joint_states (whole-body controller, FK for cameras and
end effectors, recorders) assume the DESIGN contract "all joints". So by default
(`require_all: true`) a message goes out only while every STATE_JOINT comes from a fresh source;
when one is missing or stale nothing is published and /diagnostics says ERROR with the missing
joints; the controller's own state watchdog then holds. Set `require_all: false` for bench
bring-up of a single driver: the node then publishes whatever joints are fresh.

A source is stale when its last valid message arrived more than `stale_timeout` seconds ago
(steady clock, so wall-time jumps do not matter); it is dropped from the merge and reported
STALE on /diagnostics (component = its topic), and logged (a source going stale, and "fresh again"):
at most one log line per source per LOG_PERIOD s, the changes in between counted in the next
one, so a machine too loaded to keep a source within the timeout does not flood the console.
Messages with mismatched array lengths or
non-finite positions are rejected and counted. When two sources name the same joint the first
source in `sources` wins and the duplicate is counted.

Velocity/effort: filled for the joints whose source provides them, NaN for the others, left
empty when no included source provides them. header.stamp: the oldest source stamp included
(the merged state is at least that old), or now when a source leaves its stamp at zero.

Parameters: sources (string[]), stale_timeout (float, 0.1 s), rate_hz (float, 100),
require_all (bool, true).
"""

from __future__ import annotations

import threading
import time

import numpy as np
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from sensor_msgs.msg import JointState

from brs_common import params, qos, topics
from brs_common import robot_spec as spec
from brs_common.node_main import run_node
from brs_common.diagnostics import ERROR, OK, STALE, WARN, DiagnosticsReporter
from brs_common.rate_limit import ChangeLimiter

DEFAULT_SOURCES = ["/wheel_driver/joint_states"]
LOG_PERIOD = 5.0  # s: at most one stale / fresh-again log line per source in this time


class _Source:
    __slots__ = ("topic", "names", "pos", "vel", "eff", "stamp_ns", "received", "count", "index")

    def __init__(self, topic: str, index: int):
        self.topic = topic
        self.index = index
        self.names: tuple[str, ...] = ()
        self.pos = self.vel = self.eff = None
        self.stamp_ns = 0
        self.received = None  # monotonic time of the last valid message
        self.count = 0


class JointStateMerger(Node):
    def __init__(self, **node_kwargs):
        super().__init__("joint_state_merger", **node_kwargs)
        p = params.declare(self, [
            ("sources", DEFAULT_SOURCES, "JointState topics to merge; on a joint named twice, the first wins"),
            ("stale_timeout", 0.1, "s (steady clock) after a source's last valid message before it is stale; > 0"),
            ("rate_hz", spec.JOINT_STATE_RATE_HZ, "/joint_states publish rate, Hz (steady clock); > 0"),
            ("require_all", True, "publish only while every robot joint is fresh (false: whatever is fresh, "
                                  "for bench bring-up)"),
        ], dynamic=("stale_timeout", "rate_hz"))  # `rate_hz:=100` (an int) is fine too
        sources = [t for t in (p["sources"] or []) if t]
        if not sources:
            raise ValueError("parameter 'sources' is empty: nothing to merge")
        if len(set(sources)) != len(sources):
            raise ValueError(f"parameter 'sources' lists a topic twice: {sources}")
        self.stale_timeout = float(p["stale_timeout"])
        self.require_all = bool(p["require_all"])
        rate = float(p["rate_hz"])
        if not (rate > 0 and self.stale_timeout > 0):
            raise ValueError("rate_hz and stale_timeout must be positive")

        self.lock = threading.Lock()
        self.sources = [_Source(t, i) for i, t in enumerate(sources)]
        self.diag = DiagnosticsReporter(self, hardware_id="joint_state_merger", default_component="merge")
        for src in self.sources:
            self.diag.set_status(src.topic, STALE, "no message yet")
            self.create_subscription(JointState, src.topic,
                                     lambda msg, s=src: self._on_joint_state(s, msg), qos.STATE)
        self.pub = self.create_publisher(JointState, topics.JOINT_STATES, qos.STATE)
        self.published = 0
        self.ticks = 0
        self._merge_level = None
        self._spec_index = {n: i for i, n in enumerate(spec.STATE_JOINTS)}
        self._last_layout = None
        self._source_state: dict[str, str] = {}
        self._log_lines = ChangeLimiter(LOG_PERIOD)  # per source: "stale" / "ok" log lines
        self._stale_text: dict[str, str] = {}
        self.timer = self.create_timer(1.0 / rate, self._tick, clock=Clock(clock_type=ClockType.STEADY_TIME))

    # --- input -------------------------------------------------------------------------------
    def _on_joint_state(self, src: _Source, msg: JointState):
        n = len(msg.name)
        pos = np.asarray(msg.position, dtype=np.float64)
        if n == 0 or pos.size != n or len(msg.velocity) not in (0, n) or len(msg.effort) not in (0, n):
            self.diag.reject("wrong_length", f"{src.topic}: {n} names, {pos.size} positions, "
                             f"{len(msg.velocity)} velocities, {len(msg.effort)} efforts")
            return
        if not np.all(np.isfinite(pos)):
            self.diag.reject("non_finite", f"{src.topic}: NaN or inf position")
            return
        if len(set(msg.name)) != n:
            self.diag.reject("duplicate_name", f"{src.topic}: a joint name appears twice")
            return
        vel = np.asarray(msg.velocity, dtype=np.float64) if len(msg.velocity) else None
        eff = np.asarray(msg.effort, dtype=np.float64) if len(msg.effort) else None
        with self.lock:
            src.names = tuple(msg.name)
            src.pos, src.vel, src.eff = pos, vel, eff
            src.stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            src.received = time.monotonic()
            src.count += 1

    # --- output ------------------------------------------------------------------------------
    def _tick(self):
        self.ticks += 1
        now = time.monotonic()
        with self.lock:
            fresh = [s for s in self.sources
                     if s.received is not None and now - s.received <= self.stale_timeout]
            snapshot = [(s, s.names, s.pos, s.vel, s.eff, s.stamp_ns) for s in fresh]
            states = {s.topic: (s.received, s.count) for s in self.sources}
        self._report_sources(now, states)

        # Which source provides each joint: first source in `sources` order wins.
        owner: dict[str, tuple[int, int]] = {}
        duplicates = []
        for k, (src, names, *_rest) in enumerate(snapshot):
            for j, name in enumerate(names):
                if name in owner:
                    duplicates.append((name, src.topic))
                else:
                    owner[name] = (k, j)
        if duplicates:
            name, topic = duplicates[0]
            self.diag.reject("duplicate_joint", f"{name} also published by {topic}; ignored there")

        missing = [n for n in spec.STATE_JOINTS if n not in owner]
        if missing and self.require_all:
            self._set_merge(ERROR, f"not publishing: {len(missing)} joints missing or stale: "
                            f"{', '.join(missing)}")
            return
        names = [n for n in spec.STATE_JOINTS if n in owner]
        names += [n for n in owner if n not in self._spec_index]
        if not names:
            return
        msg = self._build(names, owner, snapshot)
        self.pub.publish(msg)
        self.published += 1
        if missing:
            self._set_merge(WARN, f"partial: {len(missing)} joints missing: {', '.join(missing)}")
        else:
            self._set_merge(OK, f"publishing {len(names)} joints")

    def _set_merge(self, level: int, text: str):
        self.diag.set_status("merge", level, text, {"published": self.published})
        if level != self._merge_level:  # a change of state is reported at once, not at 1 Hz
            self._merge_level = level
            self.diag.publish()

    def _build(self, names, owner, snapshot) -> JointState:
        n = len(names)
        pos = np.empty(n)
        vel = np.full(n, np.nan)
        eff = np.full(n, np.nan)
        have_vel = have_eff = False
        stamps = []
        # Gather per source with fancy indexing (few sources, many joints each).
        by_source: dict[int, tuple[list[int], list[int]]] = {}
        for i, name in enumerate(names):
            k, j = owner[name]
            dst, srcidx = by_source.setdefault(k, ([], []))
            dst.append(i)
            srcidx.append(j)
        for k, (dst, srcidx) in by_source.items():
            _src, _names, p, v, e, stamp_ns = snapshot[k]
            pos[dst] = p[srcidx]
            if v is not None:
                vel[dst] = v[srcidx]
                have_vel = True
            if e is not None:
                eff[dst] = e[srcidx]
                have_eff = True
            stamps.append(stamp_ns)
        msg = JointState()
        if stamps and min(stamps) > 0:
            stamp_ns = min(stamps)
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
        else:
            msg.header.stamp = self.get_clock().now().to_msg()
        msg.name = names
        msg.position = pos.tolist()
        if have_vel:
            msg.velocity = vel.tolist()
        if have_eff:
            msg.effort = eff.tolist()
        return msg

    def _report_sources(self, now: float, states: dict):
        changed = False
        for topic, (received, count) in states.items():
            if received is None:
                state, level, text = "none", STALE, "no message yet"
            elif now - received > self.stale_timeout:
                state, level = "stale", STALE
                text = f"stale: last message {now - received:.2f}s ago (timeout {self.stale_timeout}s)"
            else:
                state, level, text = "ok", OK, "fresh"
            if state == "stale":
                self._stale_text[topic] = text
            if self._source_state.get(topic) != state:
                self._source_state[topic] = state
                changed = True
                # "none" (no message yet) counts as fresh: only going stale and back is news
                report = self._log_lines.offer(topic, "stale" if state == "stale" else "ok", now, initial="ok")
                if report is not None:
                    self._log_source(topic, state == "stale", report)
            self.diag.set_status(topic, level, text, {"messages": count})
        for topic, log_state, report in self._log_lines.due(now):  # where a flapping source ended up
            self._log_source(topic, log_state == "stale", report)
        if changed:
            self.diag.publish()

    def _log_source(self, topic: str, stale: bool, report) -> None:
        if stale:
            self.get_logger().warning(f"{topic}: {self._stale_text[topic]}{report.suffix()}")
        else:
            self.get_logger().info(f"{topic}: fresh again{report.suffix()}")



def main(args=None) -> int:
    return run_node(JointStateMerger, args)

if __name__ == "__main__":
    raise SystemExit(main())
