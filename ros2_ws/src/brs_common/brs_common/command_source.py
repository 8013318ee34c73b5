"""The runtime of a node that commands the robot through one whole-body command source
(`/whole_body/<SOURCE>/command`): the WB-VIMA policy, MR.Q agent and PLDM base planner nodes.

A `CommandSource` subclass declares its parameters, loads its checkpoint (`load_checkpoint`),
calls `_open` and keeps only what differs: its inputs (node-clock receipt times in
`input_times`), `_hold_command`, `_stalled`, `_step`, `_start`, `_status`. Shared states:

  idle     publishes nothing (the controller's watchdog holds the robot)
  running  `_step` at every `_tick` (rate_hz, node clock) while every input is fresh
  stale    an input is older than `stale_timeout`: the one hold command was sent, no steps until
           every input is fresh again (then running)

Every change of state is reported on /diagnostics at once. `~/start` (std_srvs/Trigger) resets
the policy and the run (`_start`) and runs; `~/stop` goes idle. A node with its own loop (the base
planner) uses only the parts that fit.
"""

from __future__ import annotations

import pickle
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, TypeVar

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.node import Node
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from . import qos, topics
from .diagnostics import DiagnosticsReporter
from .node_main import ConfigError

IDLE, RUNNING, STALE = "idle", "running", "stale"
T = TypeVar("T")

# How a checkpoint that does not load is reported: (exception type(s), message), tried in order.
# A message may use {path}, {device}, {type} (the exception's class name) and {reason} (its text).
MISSING = (FileNotFoundError, "checkpoint {path}: no such file")
PICKLED = (pickle.UnpicklingError,
           "checkpoint {path} is not a weights-only torch checkpoint (refused: no pickle from files)")
ON_DEVICE = ((RuntimeError, ValueError, TypeError),  # e.g. device "cuda" without CUDA
             "checkpoint {path} on device {device!r}: {reason}")


class Policy(Protocol):
    """What a command source acts with."""

    def reset(self) -> None:
        """Forget the previous run (~/start)."""

    def act(self, obs):
        """The action (or chunk of actions) for one observation."""


def load_checkpoint(path: str, load: Callable[[], T], *, what: str, example: str, device: str = "cpu",
                    threads: int = 1, errors: Sequence[tuple] = (MISSING, PICKLED, ON_DEVICE)) -> T:
    """`load()` with torch's CPU threads set (<= 0: torch's default); a checkpoint that does not load
    is a ConfigError (run_node: exit code 2) with the reason.

    An empty `path` asks for `what`, e.g. `example`. A ConfigError raised by `load` (the format's
    own check) passes unchanged, the exceptions in `errors` become one, any other propagates.
    """
    if not path:
        raise ConfigError(f"parameter `checkpoint` is empty: give {what}, e.g. checkpoint:={example}")
    import torch  # only here: brs_common does not need torch

    if threads > 0:
        torch.set_num_threads(threads)
    try:
        return load()
    except ConfigError:
        raise
    except Exception as exc:
        for types, message in errors:
            if isinstance(exc, types):
                raise ConfigError(message.format(path=path, device=device, type=type(exc).__name__,
                                                 reason=str(exc))) from None
        raise


def latency_stats(name: str, ms: Iterable[float], stats: Sequence[str] = ("last", "p50", "max")) -> dict:
    """Diagnostics values `<name>_<stat>` of latencies in ms, one decimal; "nan" before the first."""
    ms = list(ms)  # a copy: a worker thread may append
    of = {"last": lambda: ms[-1], "p50": lambda: np.median(ms), "max": lambda: max(ms)}
    return {f"{name}_{stat}": f"{of[stat]():.1f}" if ms else "nan" for stat in stats}


class CommandSource(Node):
    """A node commanding the robot through the whole-body command source SOURCE (module doc)."""

    SOURCE = ""  # topics.COMMAND_SOURCES
    COMPONENT = ""  # diagnostics status "<node name>: <COMPONENT>"
    WARN_STATES = (STALE,)
    BACK = "inputs are back: acting again"  # logged when stale inputs are fresh again
    policy: Policy

    def __init__(self, name: str, **kwargs):
        super().__init__(name, **kwargs)
        self.state = IDLE
        self.input_times: dict[str, float | None] = {}  # input -> node clock at its last receipt
        self.stale_events = self.holds = 0
        self.act_ms: deque[float] = deque(maxlen=100)  # duration of policy.act

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _timing(self, rate_hz: float, stale_timeout: float):
        """Set the timer rate and the stale timeout; both must be > 0."""
        if not rate_hz > 0 or not stale_timeout > 0:
            raise ConfigError(f"rate_hz ({rate_hz}) and stale_timeout ({stale_timeout}) must be > 0")
        self.rate_hz, self.stale_timeout = rate_hz, stale_timeout

    def _open(self, hardware_id: str, ticking: bool = True):
        """Diagnostics and the command publisher; `ticking`: ~/start, ~/stop and the `_tick` timer."""
        self.diag = DiagnosticsReporter(self, hardware_id=hardware_id)
        self.pub = self.create_publisher(JointTrajectory, topics.whole_body_command(self.SOURCE), qos.COMMAND)
        if ticking:
            self.create_service(Trigger, "~/start", self._on_start)
            self._state_service("~/stop", IDLE, "idle")
            self.create_timer(1.0 / self.rate_hz, self._tick)

    def _state_service(self, name: str, state: str, message: str):
        """A std_srvs/Trigger service `name` that enters `state` and answers `message`."""
        def on_call(request, response):
            self._set_state(state)
            response.success, response.message = True, message
            return response

        self.create_service(Trigger, name, on_call)

    # ------------------------------------------------------------------ state
    def _set_state(self, state: str):
        if state != self.state:
            self.state = state
            self._report(force=True)

    def _on_start(self, request, response):
        self.policy.reset()
        message = self._start()
        self._set_state(RUNNING)
        response.success, response.message = True, message
        return response

    def _fresh(self, now: float) -> bool:
        return all(t is not None and now - t <= self.stale_timeout for t in self.input_times.values())

    # ------------------------------------------------------------------ loop
    def _tick(self):
        now = self._now()
        if self.state in (RUNNING, STALE):
            fresh = self._fresh(now)
            if self.state == RUNNING and not fresh:
                hold = self._hold_command()
                if hold is not None:  # None: nothing was commanded in this run, nothing to hold
                    self.stale_events += 1
                    self.holds += 1
                    self.pub.publish(hold)
                    self.get_logger().warning(self._stalled(now))
                    self._set_state(STALE)
            elif self.state == STALE and fresh:
                self.get_logger().info(self.BACK)
                self._set_state(RUNNING)
            if self.state == RUNNING and fresh:
                self._step(now)
        self._report()

    def _act(self, obs):
        """policy.act(obs), its duration kept in `act_ms`."""
        t0 = time.perf_counter()
        action = self.policy.act(obs)
        self.act_ms.append((time.perf_counter() - t0) * 1e3)
        return action

    def _report(self, force: bool = False):
        """Set the status (`_status`); `force`: publish /diagnostics now."""
        message, values = self._status()
        level = DiagnosticStatus.WARN if self.state in self.WARN_STATES else DiagnosticStatus.OK
        self.diag.set_status(self.COMPONENT, level, message, {"state": self.state, **values})
        if force:
            self.diag.publish()

    # ------------------------------------------------------------------ hooks
    def _start(self) -> str:
        """~/start: forget the previous run; the response message."""
        return "running"

    def _hold_command(self) -> JointTrajectory | None:
        """The one command sent when the inputs go stale while running; None: nothing to hold."""
        raise NotImplementedError

    def _stalled(self, now: float) -> str:
        """The inputs went stale (after the hold): forget what a stall invalidates; the warning."""
        raise NotImplementedError

    def _step(self, now: float):
        """One timer tick while running on fresh inputs."""
        raise NotImplementedError

    def _status(self) -> tuple[str, dict]:
        """The diagnostics message and values (the state comes first by itself)."""
        raise NotImplementedError
