"""An rclpy node in a context of its own, spun by a daemon thread: for tools, benchmarks and tests
that talk to a running graph while their main thread does something else."""

from __future__ import annotations

import threading
import time

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor

from .dds import configure_dds


def wait_for(predicate, timeout: float, interval: float = 0.01, message="condition"):
    """Poll `predicate` until it returns a truthy value (returned); TimeoutError after `timeout` s.
    `message` may be a callable, called at the timeout, to report the state seen then."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for "
                               f"{message() if callable(message) else message}")
        time.sleep(interval)


class BackgroundNode:
    """`self.node` lives in its own context (optionally on `domain_id`) and is spun until close()."""

    def __init__(self, name: str, domain_id: int | None = None):
        configure_dds()
        self.context = Context()
        rclpy.init(args=[], context=self.context, domain_id=domain_id)  # not sys.argv: a tool's key:=value are no ROS remaps
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, name=f"{name}_spin", daemon=True)
        self._thread.start()

    def _spin(self):
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # the context shut down while spinning
                if self.context.ok():
                    raise

    def close(self):
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(timeout=5)
