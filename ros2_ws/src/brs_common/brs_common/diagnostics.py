"""Fault counting and /diagnostics reporting shared by the sim node, controller and drivers.

    diag = DiagnosticsReporter(node, hardware_id="mujoco_sim")
    diag.reject("non_finite", "left_arm: NaN in command")        # counted, WARN, published now
    diag.set_status("base", DiagnosticStatus.WARN, "cmd_vel timeout", {"timeouts": 3})

One DiagnosticStatus per component, named "<node name>: <component>". A component's level is
the worst of the level given to `set_status` and WARN when it had rejections since the previous
publish. Publishing runs on a steady-clock timer (so it keeps going while sim time is paused):
every `period` seconds, and at most every `min_interval` seconds right after a new rejection.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.clock import Clock, ClockType

from . import qos, topics

OK, WARN, ERROR, STALE = 0, 1, 2, 3


def level_value(level) -> int:
    """int level from an int or the bytes constants of DiagnosticStatus (b'\\x01')."""
    return level[0] if isinstance(level, (bytes, bytearray)) else int(level)


class _Component:
    def __init__(self):
        self.level = OK
        self.message = "OK"
        self.values: dict[str, str] = {}
        self.rejections: Counter = Counter()
        self.new_rejections = 0
        self.last_detail = ""


class DiagnosticsReporter:
    """Counts rejected inputs and publishes component statuses on /diagnostics."""

    def __init__(self, node, hardware_id: str, default_component: str = "input",
                 period: float = 1.0, min_interval: float = 0.1):
        self.node = node
        self.hardware_id = hardware_id
        self.default_component = default_component
        self.period = period
        self.min_interval = min_interval
        self._lock = threading.Lock()
        self._components: dict[str, _Component] = {default_component: _Component()}
        self._last_publish = -float("inf")
        self._pending = False
        self.pub = node.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, qos.DIAGNOSTICS)
        self.timer = node.create_timer(min(min_interval, period), self._tick,
                                       clock=Clock(clock_type=ClockType.STEADY_TIME))

    def _component(self, name: str | None) -> _Component:
        return self._components.setdefault(name or self.default_component, _Component())

    def reject(self, reason_key: str, detail: str = "", component: str | None = None):
        """Count one rejected input under `reason_key`; publish soon (rate-limited)."""
        with self._lock:
            comp = self._component(component)
            comp.rejections[reason_key] += 1
            comp.new_rejections += 1
            comp.last_detail = f"{reason_key}: {detail}" if detail else reason_key
            self._pending = True
            due = time.monotonic() - self._last_publish >= self.min_interval
        if due:
            self.publish()

    def set_status(self, name: str, level, message: str, values: dict | None = None):
        """Set a component's own level (OK/WARN/ERROR/STALE), message and extra key/values; a
        changed level is published within `min_interval`, the rest with the periodic report."""
        with self._lock:
            comp = self._component(name)
            level = level_value(level)
            if level != comp.level:  # a level change goes out with the next tick (<= min_interval)
                self._pending = True
            comp.level, comp.message = level, message
            comp.values = {str(k): str(v) for k, v in (values or {}).items()}

    def counts(self, component: str | None = None) -> dict[str, int]:
        """Cumulative rejection counts of a component."""
        with self._lock:
            return dict(self._component(component).rejections)

    def _tick(self):
        with self._lock:
            now = time.monotonic()
            due = (self._pending and now - self._last_publish >= self.min_interval) or \
                now - self._last_publish >= self.period
        if due:
            self.publish()

    def publish(self):
        """Publish all component statuses now; resets the 'since last publish' counters."""
        msg = DiagnosticArray()
        msg.header.stamp = self.node.get_clock().now().to_msg()
        prefix = self.node.get_name()
        with self._lock:
            for name, comp in self._components.items():
                msg.status.append(self._status(f"{prefix}: {name}", comp))
                comp.new_rejections = 0
            self._pending = False
            self._last_publish = time.monotonic()
        self.pub.publish(msg)

    def _status(self, name: str, comp: _Component) -> DiagnosticStatus:
        level, message = comp.level, comp.message
        if comp.new_rejections and level < WARN:
            level = WARN
            message = f"{comp.new_rejections} rejected since last report; last {comp.last_detail}"
        values = [KeyValue(key=f"rejected.{k}", value=str(v)) for k, v in sorted(comp.rejections.items())]
        values.append(KeyValue(key="rejected_total", value=str(sum(comp.rejections.values()))))
        values.append(KeyValue(key="rejected_since_last_report", value=str(comp.new_rejections)))
        if comp.last_detail:
            values.append(KeyValue(key="last_rejection", value=comp.last_detail))
        values += [KeyValue(key=k, value=v) for k, v in comp.values.items()]
        return DiagnosticStatus(level=bytes([level]), name=name, message=message,
                                hardware_id=self.hardware_id, values=values)
