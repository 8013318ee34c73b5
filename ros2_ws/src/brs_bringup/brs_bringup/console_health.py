"""Every /diagnostics status's latest level and message, for the bringup console.

GraphClient.node_health keeps only each node's worst component, which is what the status table
shows; the console also needs the others, so that a component's recovery is printed while another
component of the same node is still WARN (JoyLo's leader coming back while its Joy-Con is
missing, walk17 finding 11). Subscribes on an existing node (the console's GraphClient.node).
"""

from __future__ import annotations

import threading

from diagnostic_msgs.msg import DiagnosticArray

from brs_common import qos, topics
from brs_common.diagnostics import level_value


class ComponentHealth:
    """Callable: {"node: component": (level, message)} of the latest status of each name."""

    def __init__(self, node):
        self._lock = threading.Lock()
        self._latest: dict[str, tuple[int, str]] = {}
        self.subscription = node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, self._on_diagnostics,
                                                     qos.DIAGNOSTICS)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        with self._lock:
            for status in msg.status:
                self._latest[status.name] = (level_value(status.level), status.message)

    def __call__(self) -> dict[str, tuple[int, str]]:
        with self._lock:
            return dict(self._latest)
