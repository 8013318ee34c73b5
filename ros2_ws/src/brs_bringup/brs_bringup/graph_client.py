"""A small rclpy client for tools that drive a running graph: service calls, parameters, and
the latest /diagnostics status of each component. Runs its own context and executor thread."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray

from brs_common import qos, topics
from brs_common.background import BackgroundNode
from brs_common.diagnostics import ERROR, WARN, level_value

# s between looks for a service to appear (rclpy's wait_for_service looks every 0.25 s: a CLI
# call like `brs record start` lost ~0.25 s per wait)
SERVICE_POLL = 0.01


def _wait_ready(ready, timeout: float) -> bool:
    """Poll `ready()` every SERVICE_POLL s until it is true (True) or `timeout` s passed (False)."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() >= deadline:
            return False
        time.sleep(SERVICE_POLL)
    return True


class GraphClient(BackgroundNode):
    def __init__(self, name: str = "brs_tool"):
        self._lock = threading.Lock()
        self._status: dict[str, tuple[str, dict[str, str]]] = {}
        self._levels: dict[str, int] = {}
        self._clients: dict[str, Any] = {}
        super().__init__(name)
        self.node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, self._on_diagnostics, qos.DIAGNOSTICS)

    def _on_diagnostics(self, msg: DiagnosticArray):
        with self._lock:
            for s in msg.status:
                self._status[s.name] = (s.message, {kv.key: kv.value for kv in s.values})
                self._levels[s.name] = level_value(s.level)

    def component_health(self) -> dict[str, tuple[int, str]]:
        """{"node: component": (level, message)} of every /diagnostics status (the bringup
        console's lines: a component's recovery shows while another of its node is still WARN)."""
        with self._lock:
            return {name: (level, self._status[name][0]) for name, level in self._levels.items()}

    def node_health(self) -> dict[str, tuple[int, str]]:
        """Per node (the part of a status name before ": "): its worst diagnostic level (0 OK,
        1 WARN, 2 ERROR, 3 STALE) and "component: message" of that status (the first, if several)."""
        with self._lock:
            items = [(name, self._levels[name], self._status[name][0]) for name in self._levels]
        out: dict[str, tuple[int, str]] = {}
        for name, level, message in sorted(items):
            node, _, component = name.partition(": ")
            if node not in out or level > out[node][0]:
                out[node] = (level, f"{component}: {message}" if component else message)
        return out

    def operator_summary(self) -> str:
        """One line for the operator: see `operator_summary`, from the latest statuses."""
        with self._lock:
            names = list(self._status)
        return operator_summary(self.status, self.level, names)

    def status(self, name: str) -> tuple[str, dict[str, str]] | None:
        """(message, values) of the latest /diagnostics status called `name` ("node: component")."""
        with self._lock:
            return self._status.get(name)

    def level(self, name: str) -> int | None:
        """Level (0 OK, 1 WARN, 2 ERROR, 3 STALE) of the latest status called `name`."""
        with self._lock:
            return self._levels.get(name)

    def wait_status(self, name: str, predicate, timeout: float, what: str = "") -> dict[str, str]:
        """Wait until status `name`'s values satisfy `predicate`; TimeoutError naming `what`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entry = self.status(name)
            if entry is not None and predicate(entry[1]):
                return entry[1]
            time.sleep(0.02)
        raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what or name} "
                           f"(last status: {self.status(name)})")

    def call(self, srv_type, service: str, request=None, timeout: float = 30.0, on_wait=None,
             discovery: float = 3.0):
        """Call a service (waiting for it to appear); RuntimeError on timeout. `on_wait(text)` is
        told once what is being waited for when the service is not there at once. When after
        `discovery` s no other ROS node is on the domain at all, fail then (no graph runs)."""
        client = self._clients.get(service)
        if client is None:
            client = self._clients[service] = self.node.create_client(srv_type, service)
        deadline, start = time.monotonic() + timeout, time.monotonic()
        while not _wait_ready(client.service_is_ready, min(0.5, max(0.0, deadline - time.monotonic()))):
            waited = time.monotonic() - start
            if time.monotonic() >= deadline:
                raise RuntimeError(f"service {service} is not available after {timeout:g} s "
                                   f"({self._graph_summary()})")
            if on_wait is not None and waited >= 0.5:
                on_wait(f"waiting up to {timeout:g} s for {service} ({self._graph_summary()})")
                on_wait = None
            if waited >= discovery and not self._other_nodes():
                raise RuntimeError(f"service {service}: no ROS 2 node runs on ROS_DOMAIN_ID="
                                   f"{os.environ.get('ROS_DOMAIN_ID', '0')} (start the graph: brs bringup ...)")
        future = client.call_async(request if request is not None else srv_type.Request())
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        if not done.wait(timeout):
            raise RuntimeError(f"service {service} did not answer within {timeout:.0f} s")
        return future.result()

    def _other_nodes(self) -> list[str]:
        me = self.node.get_name()
        return sorted(n for n in self.node.get_node_names() if n != me)

    def _graph_summary(self) -> str:
        nodes = self._other_nodes()
        if not nodes:
            return "no other ROS 2 node seen yet"
        # Discovery is gradual: this is what has been seen so far, not all that runs.
        return (f"{len(nodes)} node(s) discovered so far: " + ", ".join(nodes[:8])
                + (" ..." if len(nodes) > 8 else ""))

    def set_parameters(self, node_name: str, values: dict[str, Any], timeout: float = 10.0) -> None:
        from rclpy.parameter import Parameter
        from rclpy.parameter_client import AsyncParameterClient

        client = AsyncParameterClient(self.node, node_name)
        if not _wait_ready(client.services_are_ready, timeout):
            raise RuntimeError(f"node {node_name} is not running (no parameter services)")
        future = client.set_parameters([Parameter(k, value=v) for k, v in values.items()])
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        if not done.wait(timeout):
            raise RuntimeError(f"setting parameters of {node_name} timed out")
        for result, key in zip(future.result().results, values):
            if not result.successful:
                raise RuntimeError(f"{node_name} refused {key}: {result.reason}")


def operator_summary(status, level=lambda name: None, names=()) -> str:
    """"command source: teleop (in control) | e-stop: off | recorder: recording episode_000003 |
    saved: 2 | bus reconnects: leader L2 R0" from `status(name) -> (message, values) | None`
    (GraphClient.status); a part whose node has not reported is left out ("" when none has). With
    `level(name)` (GraphClient.level), a recorder in ERROR shows its message instead ("recorder:
    ERROR writing ... failed: ..."), and so does an idle one in WARN (why the recorder stopped the
    last episode itself). The WARN of dropped frames while recording is not shown: its message
    changes with every report. The reconnects part (see `bus_reconnects`; `names`: every status
    name, for the drivers' counters) is there once a bus has reconnected."""
    parts = []
    controller = status(f"{topics.WHOLE_BODY_CONTROLLER_NODE}: state")
    if controller is not None:
        v = controller[1]
        source = v.get("active_source", "?")
        in_control = v.get("controlling_source", "none") == source
        parts.append(f"command source: {source} ({'in control' if in_control else 'idle'})")
        parts.append("e-stop: LATCHED (brs estop reset)" if v.get("estop_latched") == "True" else "e-stop: off")
    recorder = status(f"{topics.RECORDER_NODE}: recorder")
    if recorder is not None:
        message, v = recorder
        recording = v.get("recording") == "true"
        severity = level(f"{topics.RECORDER_NODE}: recorder")
        if severity == ERROR or (severity == WARN and not recording):
            parts.append(f"recorder: {'ERROR' if severity == ERROR else 'WARN'} {message}")
        else:
            parts.append(f"recorder: recording {v.get('episode', '')}" if recording else "recorder: idle")
        parts.append(f"saved: {v.get('saved_episodes', 0)}")
    reconnects = bus_reconnects(status, names)
    if reconnects:
        parts.append(f"bus reconnects: {reconnects}")
    return " | ".join(parts)


LEADER_STATUS = "joylo: leader"  # JoyLo's leader arms (node "joylo" in brs_bringup.graph)


def bus_reconnects(status, names=()) -> str:
    """"leader L2 R0, wheel_driver 1": how often each bus reconnected since its node started, ""
    while none did. The leader arms per side (`left.bus.reconnects`, `right.bus.reconnects` of
    LEADER_STATUS); every other status in `names` with a `reconnects` or `*.reconnects` value
    (the wheel boards', a Dynamixel driver's `bus.reconnects`) summed per node."""
    out = []
    leader = status(LEADER_STATUS)
    if leader is not None:
        left, right = (_count(leader[1].get(f"{side}.bus.reconnects")) for side in ("left", "right"))
        if left or right:
            out.append(f"leader L{left} R{right}")
    per_node: dict[str, int] = {}
    for name in sorted(names):
        entry = status(name) if name != LEADER_STATUS else None
        if entry is None:
            continue
        n = sum(_count(v) for k, v in entry[1].items() if k == "reconnects" or k.endswith(".reconnects"))
        if n:
            node = name.partition(": ")[0]
            per_node[node] = per_node.get(node, 0) + n
    out += [f"{node} {n}" for node, n in per_node.items()]
    return ", ".join(out)


def _count(value) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0
