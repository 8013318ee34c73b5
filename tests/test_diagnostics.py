"""brs_common.diagnostics over real rclpy pub/sub."""

from __future__ import annotations

import threading
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.executors import SingleThreadedExecutor
from rosutil import wait_for

from brs_common import qos, topics
from brs_common.diagnostics import DiagnosticsReporter, level_value


class ReporterNode:
    """A node with a DiagnosticsReporter spun in its own thread, in the harness's context."""

    def __init__(self, ros, name="diag_under_test", **kwargs):
        self.node = rclpy.create_node(name, context=ros.context)
        self.diag = DiagnosticsReporter(self.node, hardware_id="test_hw", **kwargs)
        self.executor = SingleThreadedExecutor(context=ros.context)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self):
        while not self._stop.is_set() and self.node.context.ok():
            self.executor.spin_once(timeout_sec=0.02)

    def close(self):
        self._stop.set()
        self.thread.join(timeout=5)
        self.executor.shutdown()
        self.node.destroy_node()


def statuses(ros, name):
    """Every status called `name` received so far, oldest first, with its arrival time."""
    with ros.lock:
        msgs = list(zip(ros.messages[topics.DIAGNOSTICS], ros.stamps[topics.DIAGNOSTICS]))
    return [(s, t) for m, t in msgs for s in m.status if s.name == name]


def values(status) -> dict:
    return {kv.key: kv.value for kv in status.values}


def test_rejection_published_with_counter_and_warn(ros):
    ros.record(topics.DIAGNOSTICS, DiagnosticArray, qos.DIAGNOSTICS)
    rep = ReporterNode(ros)
    try:
        name = "diag_under_test: input"
        # Periodic 1 Hz report: present and OK before anything went wrong.
        first, _ = wait_for(lambda: statuses(ros, name), 5.0, message="periodic OK status")[0]
        assert level_value(first.level) == 0 and first.hardware_id == "test_hw"
        assert values(first)["rejected_total"] == "0"

        n_before = len(statuses(ros, name))
        t_reject = time.monotonic()
        rep.diag.reject("non_finite", "left_arm: NaN in command")
        warn = wait_for(lambda: [(s, t) for s, t in statuses(ros, name)[n_before:]
                                 if s.level == DiagnosticStatus.WARN], 5.0, message="WARN status")
        status, arrived = warn[0]
        assert arrived - t_reject < 0.5, "a new rejection must be published promptly, not at 1 Hz"
        v = values(status)
        assert v["rejected.non_finite"] == "1" and v["rejected_total"] == "1"
        assert v["rejected_since_last_report"] == "1"
        assert "left_arm: NaN" in v["last_rejection"] and "NaN" in status.message

        # A burst is counted exactly; later reports return to OK but keep the cumulative counters.
        for _ in range(5):
            rep.diag.reject("wrong_length", "torso: got 3 values")
        assert rep.diag.counts() == {"non_finite": 1, "wrong_length": 5}
        ok = wait_for(lambda: [s for s, _ in statuses(ros, name)
                               if values(s).get("rejected.wrong_length") == "5"
                               and s.level == DiagnosticStatus.OK], 5.0,
                      message="OK status after the burst")
        assert values(ok[-1])["rejected_total"] == "6"
        # every WARN status of the burst was at least min_interval apart (rate limit)
        warn_times = [t for s, t in statuses(ros, name) if s.level == DiagnosticStatus.WARN]
        gaps = [b - a for a, b in zip(warn_times, warn_times[1:])]
        assert all(g > 0.05 for g in gaps), gaps
    finally:
        rep.close()


def test_set_status_error_component(ros):
    ros.record(topics.DIAGNOSTICS, DiagnosticArray, qos.DIAGNOSTICS)
    rep = ReporterNode(ros, name="driver")
    try:
        rep.diag.set_status("bus", DiagnosticStatus.ERROR, "port /dev/ttyUSB0 gone",
                            {"timeouts": 7})
        rep.diag.reject("timeout", "id 3", component="bus")  # stays ERROR, not downgraded to WARN
        err = wait_for(lambda: statuses(ros, "driver: bus"), 5.0, message="bus status")
        status = err[-1][0]
        assert status.level == DiagnosticStatus.ERROR
        assert status.message == "port /dev/ttyUSB0 gone"
        assert values(status)["timeouts"] == "7" and values(status)["rejected.timeout"] == "1"
        rep.diag.set_status("bus", 0, "reconnected")
        wait_for(lambda: any(s.level == DiagnosticStatus.OK and s.message == "reconnected"
                             for s, _ in statuses(ros, "driver: bus")), 5.0,
                 message="recovered bus status")
    finally:
        rep.close()


def test_a_level_change_is_published_promptly_not_at_the_next_report(ros):
    """period 30 s: only the level change itself can make the status go out within a second."""
    ros.record(topics.DIAGNOSTICS, DiagnosticArray, qos.DIAGNOSTICS)
    rep = ReporterNode(ros, name="arm", period=30.0, min_interval=0.1)
    try:
        rep.diag.set_status("leader", DiagnosticStatus.OK, "read")
        wait_for(lambda: statuses(ros, "arm: leader"), 5.0, message="the first report")
        n = len(statuses(ros, "arm: leader"))
        rep.diag.set_status("leader", DiagnosticStatus.OK, "read again")  # same level: waits
        time.sleep(1.0)
        assert len(statuses(ros, "arm: leader")) == n
        t0 = time.monotonic()
        rep.diag.set_status("leader", DiagnosticStatus.ERROR, "left arm unreadable")
        error = wait_for(lambda: [(s, t) for s, t in statuses(ros, "arm: leader")
                                  if level_value(s.level) == 2], 5.0, message="the ERROR")
        assert error[0][1] - t0 < 1.0, f"published {error[0][1] - t0:.2f} s after the change"
    finally:
        rep.close()
