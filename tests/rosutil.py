"""Test helpers: an rclpy harness on an isolated domain, node processes, condition waits."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

from brs_bringup.runner import format_value
from brs_common.background import BackgroundNode, wait_for  # noqa: F401 (wait_for: for the tests)
from brs_common.process import stop_process

BIN = Path(sys.executable).parent
# For a node a test kills with SIGKILL: Fast DDS over UDP only. A SIGKILLed participant leaves its
# shared-memory port files locked in /dev/shm; a later participant on the same domain that gets
# the same port fails with "open_and_lock_file failed" and may never hear its peers.
NO_SHARED_MEMORY = {"FASTDDS_BUILTIN_TRANSPORTS": "UDPv4"}


class NodeProcess:
    """A console_script of this venv (or a `*.py` file, run by this venv's python) run as its own
    OS process (own process group)."""

    def __init__(self, executable: str, params: dict | None = None, name: str | None = None,
                 env: dict | None = None, log_path: Path | None = None):
        command = [sys.executable, executable] if executable.endswith(".py") else [str(BIN / executable)]
        args = [*command, "--ros-args"]
        if name:
            args += ["-r", f"__node:={name}"]
        for key, value in (params or {}).items():
            args += ["-p", f"{key}:={format_value(value)}"]  # as `brs bringup` passes them
        self.log_path = log_path
        out = open(log_path, "wb") if log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(args, env={**os.environ, **(env or {})}, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGINT like Ctrl-C; SIGKILL the group if it does not exit in time."""
        return stop_process(self.proc, timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""


class RosHarness(BackgroundNode):
    """In-process rclpy context spun in a background thread; records messages per topic."""

    def __init__(self, domain_id: int):
        self.lock = threading.Lock()
        self.messages: dict[str, list] = defaultdict(list)
        self.stamps: dict[str, list] = defaultdict(list)
        self.processes: list[NodeProcess] = []
        super().__init__("test_harness", domain_id)

    def record(self, topic: str, msg_type, qos, keep: int = 1000):
        """Subscribe and keep the last `keep` messages plus their monotonic arrival times."""
        def callback(msg):
            with self.lock:
                self.messages[topic].append(msg)
                self.stamps[topic].append(time.monotonic())
                if len(self.messages[topic]) > keep:
                    del self.messages[topic][0]
                    del self.stamps[topic][0]
        return self.node.create_subscription(msg_type, topic, callback, qos)

    def last(self, topic: str):
        with self.lock:
            return self.messages[topic][-1] if self.messages[topic] else None

    def count(self, topic: str) -> int:
        with self.lock:
            return len(self.messages[topic])

    def clear(self, topic: str):
        with self.lock:
            self.messages[topic].clear()
            self.stamps[topic].clear()

    def diagnostic_status(self, name: str):
        """Latest recorded /diagnostics status called `name` as (level, {key: value}), or None.
        Needs `record(topics.DIAGNOSTICS, ...)`."""
        from brs_common import topics

        with self.lock:
            msgs = list(self.messages[topics.DIAGNOSTICS])
        for msg in reversed(msgs):
            for st in msg.status:
                if st.name == name:
                    return st.level[0], {kv.key: kv.value for kv in st.values}
        return None

    def spawn(self, executable: str, params: dict | None = None, **kwargs) -> NodeProcess:
        proc = NodeProcess(executable, params, **kwargs)
        self.processes.append(proc)
        return proc

    def call(self, srv_type, name: str, request, timeout: float = 10.0):
        """Call a service and wait for its response."""
        client = self.node.create_client(srv_type, name)
        try:
            wait_for(lambda: client.service_is_ready(), timeout, message=f"service {name}")
            future = client.call_async(request)
            wait_for(future.done, timeout, message=f"response from {name}")
            return future.result()
        finally:
            self.node.destroy_client(client)

    def parameter_descriptors(self, node: str, timeout: float = 10.0) -> dict:
        """name -> ParameterDescriptor of every parameter of the running node `node` (full name),
        through its ~/list_parameters and ~/describe_parameters services."""
        from rcl_interfaces.srv import DescribeParameters, ListParameters

        names = list(self.call(ListParameters, f"{node}/list_parameters", ListParameters.Request(),
                               timeout).result.names)
        response = self.call(DescribeParameters, f"{node}/describe_parameters",
                             DescribeParameters.Request(names=names), timeout)
        return dict(zip(names, response.descriptors))

    def assert_parameters_described(self, node: str, timeout: float = 10.0) -> dict:
        """Every parameter of `node` but rclpy's own has a description (`ros2 param describe`)."""
        from brs_common.params import RCLPY_PARAMETERS

        described = self.parameter_descriptors(node, timeout)
        assert set(described) - set(RCLPY_PARAMETERS), f"{node}: no parameters of its own: {sorted(described)}"
        missing = sorted(n for n, d in described.items() if n not in RCLPY_PARAMETERS and not d.description.strip())
        assert not missing, f"{node}: parameters without a description: {missing}"
        return described

    def close(self):
        for proc in self.processes:
            proc.stop()
        super().close()
