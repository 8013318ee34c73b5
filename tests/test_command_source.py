"""brs_common.command_source, the runtime of the policy, RL agent and base planner nodes, on a real
rclpy node with a fake policy: a change of state forces a report, ~/start and ~/stop over DDS,
stale inputs -> exactly one hold command, checkpoint errors -> ConfigError with the reason."""

from __future__ import annotations

import pickle
import threading

import numpy as np
import pytest
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from std_srvs.srv import Trigger

from brs_common import robot_spec as spec
from brs_common.command_source import (IDLE, MISSING, RUNNING, STALE, CommandSource, latency_stats,
                                       load_checkpoint)
from brs_common.convert import whole_body_command_msg
from brs_common.node_main import ConfigError


class FakePolicy:
    def __init__(self):
        self.resets = 0

    def reset(self):
        self.resets += 1

    def act(self, obs):
        return 2 * obs


class FakeSource(CommandSource):
    SOURCE, COMPONENT = "rl", "fake"

    def __init__(self, **kwargs):
        super().__init__("fake_source", **kwargs)
        self._timing(10.0, 0.3)
        self.policy = FakePolicy()
        self.input_times = {"a": None, "b": None}
        self.actions = []
        self.stalls = 0
        self._open(hardware_id="fake")

    def _start(self):
        return "fake running"

    def _hold_command(self):
        return None if self.input_times["a"] is None else whole_body_command_msg(np.zeros(spec.ACTION_DIM), 0.1)

    def _stalled(self, now):
        self.stalls += 1
        return "inputs stale: holding"

    def _step(self, now):
        self.actions.append(self._act(now))

    def _status(self):
        return f"{self.state}: {len(self.actions)} actions", {"actions": len(self.actions)}


@pytest.fixture
def context(ros_domain):
    ctx = Context()
    rclpy.init(args=[], context=ctx, domain_id=ros_domain)
    yield ctx
    rclpy.try_shutdown(context=ctx)


@pytest.fixture
def source(context):
    """A FakeSource on a settable clock; what it publishes is recorded, not sent."""
    node = FakeSource(context=context)
    clock = [100.0]
    node._now = lambda: clock[0]
    node.clock, node.commands, node.reports = clock, [], []
    node.pub.publish = node.commands.append
    node.diag.pub.publish = node.reports.append
    yield node
    node.destroy_node()


def status(msg):
    """(level, message, values) of the fake component in a DiagnosticArray."""
    st = next(s for s in msg.status if s.name == "fake_source: fake")
    return st.level[0], st.message, {kv.key: kv.value for kv in st.values}


def test_a_change_of_state_forces_one_report(source):
    source._set_state(RUNNING)
    assert len(source.reports) == 1
    level, message, values = status(source.reports[-1])
    assert (level, message, values["state"], values["actions"]) == (0, "running: 0 actions", "running", "0")
    source._set_state(RUNNING)  # no change: nothing forced
    source._report()  # the periodic report is left to the reporter's timer
    assert len(source.reports) == 1
    source._set_state(STALE)
    assert len(source.reports) == 2 and status(source.reports[-1])[0] == 1  # WARN
    source._set_state(IDLE)
    assert len(source.reports) == 3 and status(source.reports[-1])[:2] == (0, "idle: 0 actions")


def test_stale_inputs_send_one_hold_then_acting_resumes(source):
    source._set_state(RUNNING)
    source._tick()  # no input yet this run: nothing commanded, nothing to hold, nothing to act on
    assert source.commands == [] and source.actions == [] and source.state == RUNNING
    source.input_times["a"] = source.clock[0]
    source._tick()  # one input still missing: not fresh, but there is something to hold
    assert len(source.commands) == 1 and source.state == STALE
    source.input_times["b"] = source.clock[0]
    source._tick()  # fresh again: running and acting in the same tick
    assert source.state == RUNNING and source.actions == [pytest.approx(200.0)]

    source.clock[0] += 0.2  # within stale_timeout (0.3 s)
    source._tick()
    assert source.actions == pytest.approx([200.0, 200.4]) and len(source.commands) == 1
    source.clock[0] += 0.2  # 0.4 s since the inputs: one hold, then silence
    for _ in range(5):
        source._tick()
    assert len(source.commands) == 2 and source.state == STALE and len(source.actions) == 2
    assert (source.stale_events, source.holds, source.stalls) == (2, 2, 2)
    names = list(source.commands[-1].joint_names)
    assert names == list(spec.ACTION_JOINTS) and len(source.commands[-1].points) == 1
    level, _, values = status(source.reports[-1])
    assert level == 1 and values["state"] == "stale"

    source.input_times = {"a": source.clock[0], "b": source.clock[0]}
    source._tick()
    assert source.state == RUNNING and len(source.actions) == 3 and len(source.commands) == 2
    assert len(source.act_ms) == 3 and min(source.act_ms) >= 0


def test_idle_neither_holds_nor_acts(source):
    source.input_times = {"a": source.clock[0], "b": source.clock[0]}
    source.clock[0] += 10.0
    source._tick()
    assert source.state == IDLE and source.commands == [] and source.actions == []


def test_start_and_stop_services(source, ros):
    executor = SingleThreadedExecutor(context=source.context)
    executor.add_node(source)
    spinning = threading.Event()
    spinning.set()

    def spin():
        while spinning.is_set():
            executor.spin_once(timeout_sec=0.05)

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        response = ros.call(Trigger, "/fake_source/start", Trigger.Request())
        assert (response.success, response.message) == (True, "fake running")
        assert source.state == RUNNING and source.policy.resets == 1
        assert status(source.reports[-1])[2]["state"] == "running"  # forced at once
        response = ros.call(Trigger, "/fake_source/stop", Trigger.Request())
        assert (response.success, response.message) == (True, "idle")
        assert source.state == IDLE and status(source.reports[-1])[2]["state"] == "idle"
        ros.call(Trigger, "/fake_source/start", Trigger.Request())
        assert source.policy.resets == 2
    finally:
        spinning.clear()
        thread.join(2)
        executor.shutdown()


def test_checkpoint_errors_become_config_errors(tmp_path):
    import torch

    threads = torch.get_num_threads()
    kw = {"what": "a fake policy", "example": "fake.pt", "device": "cuda:7", "threads": 1}

    def raises(exc):
        def load():
            raise exc
        return load

    try:
        with pytest.raises(ConfigError, match=r"parameter `checkpoint` is empty: give a fake policy, "
                                              r"e.g. checkpoint:=fake.pt"):
            load_checkpoint("", raises(AssertionError("never called")), **kw)
        assert load_checkpoint("x.pt", lambda: "loaded", **kw) == "loaded"
        assert torch.get_num_threads() == 1

        garbage = tmp_path / "garbage.pt"
        garbage.write_bytes(b"not a checkpoint")
        with pytest.raises(ConfigError, match="garbage.pt is not a weights-only torch checkpoint"):
            load_checkpoint(str(garbage), lambda: torch.load(garbage, weights_only=True), **kw)
        with pytest.raises(ConfigError, match="checkpoint missing.pt: no such file"):
            load_checkpoint("missing.pt", lambda: torch.load("missing.pt", weights_only=True), **kw)
        with pytest.raises(ConfigError, match=r"checkpoint x.pt on device 'cuda:7': no CUDA"):
            load_checkpoint("x.pt", raises(RuntimeError("no CUDA")), **kw)
        with pytest.raises(ConfigError, match="bad shape"):
            load_checkpoint("x.pt", raises(ValueError("bad shape")), **kw)
        with pytest.raises(ConfigError, match="^the format's own reason$"):  # passes unchanged
            load_checkpoint("x.pt", raises(ConfigError("the format's own reason")), **kw)
        with pytest.raises(KeyError):  # not a checkpoint error: propagates
            load_checkpoint("x.pt", raises(KeyError("meta")), **kw)

        errors = (MISSING, (Exception, "checkpoint {path} is unusable: {type}: {reason:.5}"))
        with pytest.raises(ConfigError, match=r"^checkpoint x.pt is unusable: KeyError: 'meta$"):
            load_checkpoint("x.pt", raises(KeyError("meta-data")), errors=errors, **kw)
        with pytest.raises(ConfigError, match="is unusable: UnpicklingError"):
            load_checkpoint("x.pt", raises(pickle.UnpicklingError("refused")), errors=errors, **kw)
    finally:
        torch.set_num_threads(threads)


def test_latency_stats():
    assert latency_stats("inference_ms", []) == {"inference_ms_last": "nan", "inference_ms_p50": "nan",
                                                 "inference_ms_max": "nan"}
    assert latency_stats("plan_ms", [3.0, 10.04, 1.0], ("last", "p50")) == {"plan_ms_last": "1.0",
                                                                           "plan_ms_p50": "3.0"}
    assert latency_stats("x", (1.0, 2.0, 4.0, 8.0))["x_max"] == "8.0"
