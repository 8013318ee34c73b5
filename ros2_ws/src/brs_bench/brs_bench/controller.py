"""Whole-body controller benchmarks (`run(repeats)` -> list of brs_bench.result.Result).

Every node runs as its own OS process over real DDS (localhost, a private domain), on wall time.

cmd_to_bus_latency_p99_ms / cmd_to_bus_latency_p50_ms: time from publishing a teleop
JointTrajectory to receiving the first /left_arm_controller/commands Float64MultiArray that
reflects it, through the controller process. Commands are sent at a random phase of the 100 Hz
control tick (the controller samples commands on its tick, so up to one period of waiting is
part of the design). Baseline: the same round trip through an echo process that republishes a
Float64MultiArray the moment it arrives (the same two DDS hops, no controller).

controller_cpu_percent: CPU use of the controller process (psutil, % of one core) over 5 s while
it runs its 100 Hz loop on a stream of teleop commands (100 Hz) and /joint_states (100 Hz).
Baseline: an rclpy node process with an empty 100 Hz timer.

Run alone: `python -m brs_bench.controller [repeats]`.
"""

from __future__ import annotations

TITLE = "whole-body controller: command-to-bus latency and CPU"  # make bench's heading of this module

import os
import random
import statistics
import subprocess
import sys
import threading
import time

import numpy as np

from brs_common import domains
from brs_common.background import BackgroundNode

from brs_common.process import stop_process

SAMPLES_PER_REPEAT = 100
CPU_SECONDS = 5.0
DOMAIN_ID = domains.claim(domains.JOBS)  # held while this process runs: no other graph on it
PING, PONG = "/bench/ping", "/bench/pong"


# ----------------------------------------------------------------------------- helper processes

def _echo_main() -> int:
    """Republish every Float64MultiArray from PING on PONG at once."""
    import rclpy
    from std_msgs.msg import Float64MultiArray

    from brs_common import qos
    from brs_common.dds import configure_dds

    configure_dds()
    rclpy.init()
    node = rclpy.create_node("bench_echo")
    pub = node.create_publisher(Float64MultiArray, PONG, qos.COMMAND)
    node.create_subscription(Float64MultiArray, PING, pub.publish, qos.COMMAND)
    _spin_until_signal(node)
    return 0


def _idle_timer_main() -> int:
    """An rclpy node with an empty 100 Hz timer: the CPU baseline."""
    import rclpy

    from brs_common import robot_spec as spec
    from brs_common.dds import configure_dds

    configure_dds()
    rclpy.init()
    node = rclpy.create_node("bench_idle_timer")
    node.create_timer(1.0 / spec.CONTROL_RATE_HZ, lambda: None)
    _spin_until_signal(node)
    return 0


def _spin_until_signal(node) -> None:
    import rclpy
    from rclpy.executors import ExternalShutdownException

    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def _spawn(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "ROS_DOMAIN_ID": str(DOMAIN_ID), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    return subprocess.Popen([sys.executable, *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    stop_process(proc)


# ----------------------------------------------------------------------------- the measuring side

class _Bench(BackgroundNode):
    """In-process rclpy node: publishes /joint_states and commands, records arrival times."""

    def __init__(self):
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray
        from trajectory_msgs.msg import JointTrajectory

        from brs_common import qos, topics
        from brs_common import robot_spec as spec
        from brs_common.convert import make_joint_state

        super().__init__("bench_controller", DOMAIN_ID)
        state = [j for j in spec.JOINTS if not j.velocity_controlled]
        self.home = np.array([j.home for j in state])
        self.j1 = spec.STATE_JOINTS.index("left_arm_joint1")
        js_msg = make_joint_state(spec.STATE_JOINTS, self.home)
        js_pub = self.node.create_publisher(JointState, topics.JOINT_STATES, qos.STATE)
        self.node.create_timer(1.0 / spec.JOINT_STATE_RATE_HZ, lambda: js_pub.publish(js_msg))
        self.cmd_pub = self.node.create_publisher(JointTrajectory, topics.whole_body_command("teleop"), qos.COMMAND)
        self.ping_pub = self.node.create_publisher(Float64MultiArray, PING, qos.COMMAND)
        self.lock = threading.Lock()
        self.arm_values: list[tuple[float, float]] = []  # (arrival, left_arm_joint1)
        self.pongs: dict[float, float] = {}  # value -> arrival
        self._pings = 0
        self.node.create_subscription(Float64MultiArray, topics.controller_command("left_arm"),
                                      self._on_arm, qos.COMMAND)
        self.node.create_subscription(Float64MultiArray, PONG, self._on_pong, qos.COMMAND)

    def _on_arm(self, msg):
        t = time.perf_counter()
        with self.lock:
            self.arm_values.append((t, msg.data[0]))

    def _on_pong(self, msg):
        t = time.perf_counter()
        with self.lock:
            self.pongs[msg.data[0]] = t

    def wait(self, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"bench: timed out waiting for {what}")
            time.sleep(0.0005)

    def controller_latency(self, samples: int) -> list[float]:
        from brs_common.convert import make_trajectory

        self.wait(lambda: len(self.arm_values) > 20, 30, "controller output")
        out = []
        rng = random.Random(0)
        for k in range(samples):
            with self.lock:
                rest = self.arm_values[-1][1]
            target = rest + (0.002 if k % 2 == 0 else -0.002)
            msg = make_trajectory(["left_arm_joint1"], [[target]], [0.0])
            time.sleep(rng.uniform(0.0, 0.01))  # a random phase of the control tick
            with self.lock:
                start = len(self.arm_values)
            t_pub = time.perf_counter()
            self.cmd_pub.publish(msg)

            def moved():
                with self.lock:
                    return next((t for t, v in self.arm_values[start:] if t >= t_pub and v != rest), None)

            self.wait(moved, 5, "reaction")
            out.append(moved() - t_pub)

            def settled():
                with self.lock:
                    tail = self.arm_values[-2:]
                return len(tail) == 2 and all(v == target for _, v in tail)

            self.wait(settled, 5, "settling")
        return out

    def echo_latency(self, samples: int) -> list[float]:
        from brs_common.convert import make_float64_array

        self.wait(lambda: self.ping_pub.get_subscription_count() > 0, 30, "echo process")
        # warm-up until the echo's publisher is matched too
        self.ping_pub.publish(make_float64_array([-1.0]))
        self.wait(lambda: -1.0 in self.pongs, 30, "first echo")
        out = []
        rng = random.Random(self._pings)
        for _ in range(samples):
            time.sleep(rng.uniform(0.0, 0.01))
            self._pings += 1
            value = float(self._pings)  # unique across repeats
            t_pub = time.perf_counter()
            self.ping_pub.publish(make_float64_array([value]))
            self.wait(lambda: value in self.pongs, 5, "echo")
            out.append(self.pongs[value] - t_pub)
        return out

    def stream_commands(self, seconds: float):
        """Teleop commands at 100 Hz (small steps around home) for `seconds`."""
        from brs_common.convert import make_trajectory

        period = 0.01
        t_next = time.perf_counter()
        end = t_next + seconds
        k = 0
        while t_next < end:
            target = self.home[self.j1] + 0.01 * np.sin(k * 0.05)
            self.cmd_pub.publish(make_trajectory(["left_arm_joint1"], [[target]], [0.0]))
            k += 1
            t_next += period
            delay = t_next - time.perf_counter()
            if delay > 0:
                time.sleep(delay)

    def close(self):
        super().close()


def _cpu_percent(proc: subprocess.Popen, seconds: float, load=None) -> float:
    import psutil

    p = psutil.Process(proc.pid)
    p.cpu_percent(None)
    if load is not None:
        load(seconds)
    else:
        time.sleep(seconds)
    return p.cpu_percent(None)


def run(repeats: int = 3):
    from brs_bench.result import Result

    from brs_common.dds import configure_dds

    configure_dds()
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    bench = _Bench()
    ctrl_lat, echo_lat, ctrl_cpu, idle_cpu = [], [], [], []
    try:
        ctrl = _spawn(["-m", "brs_control.whole_body_controller"])
        try:
            bench.wait(lambda: len(bench.arm_values) > 50, 60, "controller up")
            for _ in range(repeats):
                ctrl_lat += bench.controller_latency(SAMPLES_PER_REPEAT)
                ctrl_cpu.append(_cpu_percent(ctrl, CPU_SECONDS, bench.stream_commands))
        finally:
            _stop(ctrl)
        echo = _spawn(["-m", "brs_bench.controller", "echo"])
        try:
            for _ in range(repeats):
                echo_lat += bench.echo_latency(SAMPLES_PER_REPEAT)
        finally:
            _stop(echo)
        idle = _spawn(["-m", "brs_bench.controller", "idle_timer"])
        try:
            time.sleep(2.0)  # let it start up before measuring its steady state
            for _ in range(repeats):
                idle_cpu.append(_cpu_percent(idle, CPU_SECONDS))
        finally:
            _stop(idle)
    finally:
        bench.close()

    ms = lambda xs, q: float(np.percentile(np.asarray(xs) * 1e3, q))  # noqa: E731
    n = len(ctrl_lat)
    note = (f"{n} commands at random tick phase, controller process on wall time, real DDS; "
            f"ratio = controller vs plain 2-hop echo")
    cpu_note = (f"psutil, % of one core, {CPU_SECONDS:.0f} s x {repeats}, 100 Hz loop + 100 Hz teleop "
                f"commands + 100 Hz /joint_states; median of repeats")
    return [
        Result("cmd_to_bus_latency_p99_ms", ms(ctrl_lat, 99), "ms", ms(echo_lat, 99),
               "DDS echo round trip, no controller", "<= 20", higher_is_better=False, note=note),
        Result("cmd_to_bus_latency_p50_ms", ms(ctrl_lat, 50), "ms", ms(echo_lat, 50),
               "DDS echo round trip, no controller", "<= 10", higher_is_better=False, note=note),
        Result("controller_cpu_percent", statistics.median(ctrl_cpu), "%", statistics.median(idle_cpu),
               "rclpy node with an empty 100 Hz timer", "<= 30", higher_is_better=False, note=cpu_note),
    ]


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "echo":
        raise SystemExit(_echo_main())
    if len(sys.argv) > 1 and sys.argv[1] == "idle_timer":
        raise SystemExit(_idle_timer_main())
    for result in run(int(sys.argv[1]) if len(sys.argv) > 1 else 1):
        print(f"{result.name}: {result.value:.3g} {result.unit} (baseline {result.baseline:.3g}, "
              f"{result.ratio:.2f}x, target {result.target}) - {result.note}")
