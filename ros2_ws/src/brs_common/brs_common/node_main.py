"""The `main()` of every BRS node: DDS defaults, clean SIGINT/SIGTERM shutdown, exit codes."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable

import rclpy
from rclpy.executors import Executor, SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions

from .dds import configure_dds


class ConfigError(ValueError):
    """A bad parameter, file or checkpoint: the node does not start; `run_node` prints the
    message as a configuration error and exits with code 2. Every node raises this one."""


def run_node(make_node: Callable, args=None, *, on_stop: Callable | None = None,
             done: Callable | None = None, make_executor: Callable | None = None,
             config_errors: tuple[type[BaseException], ...] = ()) -> int:
    """Create the node, spin it until SIGINT/SIGTERM (or `done(node)`), then `on_stop(node)`.

    SIGINT and SIGTERM only set a flag, so `on_stop` (stop the base, flush files, torque off)
    always runs with the middleware still up. A ConfigError (or a `config_errors` exception)
    raised while creating the node is printed as a configuration error and gives exit code 2.
    """
    configure_dds()
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: stop.append(signum))
    try:
        node = make_node()
    except (ConfigError, *config_errors) as exc:
        print(f"{getattr(make_node, '__name__', 'node')}: configuration error: {exc}",
              file=sys.stderr, flush=True)
        rclpy.try_shutdown()
        return 2
    executor: Executor = make_executor(node) if make_executor else SingleThreadedExecutor()
    executor.add_node(node)
    try:
        while not stop and rclpy.ok() and not (done and done(node)):
            executor.spin_once(timeout_sec=0.1)
    finally:
        try:
            if on_stop:
                on_stop(node)
        finally:
            executor.shutdown()
            node.destroy_node()
            rclpy.try_shutdown()
    return 0
