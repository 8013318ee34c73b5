"""`RosSimEnv`: a Gymnasium environment over the ROS sim graph (MuJoCo sim node + whole-body
controller), lock-stepped with the sim's pause/step services.

The env brings up its own graph (sim_node with cameras off, start_paused, and the whole-body
controller in mode `rl`, both as OS processes on a private ROS domain, parameters from
brs_bringup/graph.py), or attaches to a running one (`attach=True`: the graph of ROS_DOMAIN_ID /
`domain_id`).

One env step (an agent step of `task.control_periods` control periods):
  1. the action becomes a whole-body command (trajectory_msgs/JointTrajectory, one point at the
     agent period) on /whole_body/rl/command; the env waits until the controller has it (reliable
     QoS, all subscribers acked);
  2. for each control period: /sim/step (one physics period while paused), then wait for the
     controller's ~/commanded stamped with that sim time, i.e. the controller has ticked on the
     new clock and sent its joint targets, which the sim applies on the next step;
  3. the observation is built from the /joint_states and /odom messages stamped with the final
     sim time (waits are on those stamps, never on wall time).
So every control period sees exactly one controller tick, whatever the CPU load: the same seed
and actions give the same observations.

reset(seed): the sim's `seed` parameter is set and /sim/reset called (robot at home, objects
reseeded; sim time keeps running); the controller is re-initialised on the reset pose through
its ~/hold service (every command dropped, the measured pose held at rest, checked on
~/commanded), so no state of the previous episode survives; the task target comes from a numpy
Generator seeded with `seed`.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from brs_common import domains, qos, topics
from brs_common.background import BackgroundNode
from brs_common.convert import odom_pose, state_positions, time_text_ns

from .ros_tasks import make_task


def stamp_ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


class GraphError(RuntimeError):
    """The sim graph did not come up or stopped answering."""


class SimGraph:
    """sim_node + whole_body_controller processes (brs_bringup/graph.py description, mode rl) on a
    ROS domain, for lock-stepped RL: paused at start, as fast as possible, cameras off."""

    def __init__(self, domain_id: int, log_dir: Path | str | None = None, with_agent: bool = False, **overrides):
        from brs_bringup.graph import CONTROLLER, RL_AGENT, SIM, describe
        from brs_bringup.runner import spawn_node

        params = {"start_paused": True, "speed_factor": 0.0, "cameras_enabled": False, **overrides}
        names = (SIM.name, CONTROLLER.name) + ((RL_AGENT.name,) if with_agent else ())
        nodes = [n for n in describe(use_sim=True, mode="rl", **params) if n.name in names]
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="ros_env_"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "ROS_DOMAIN_ID": str(domain_id)}
        env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        self.procs: dict[str, subprocess.Popen] = {}
        for node in nodes:
            log = open(self.log_dir / f"{node.name}.log", "wb")
            self.procs[node.name] = spawn_node(node, env, log)  # dies with us
            log.close()
        atexit.register(self.close)

    def check(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                log = (self.log_dir / f"{name}.log").read_text(errors="replace")[-2000:]
                raise GraphError(f"{name} exited with code {proc.returncode}:\n{log}")

    def close(self) -> None:
        from brs_common.process import stop_process

        for proc in self.procs.values():
            stop_process(proc, timeout=5.0)
        atexit.unregister(self.close)


class RosSimEnv(gym.Env):
    """Gymnasium env of a ROS task (rl_agents/ros_tasks.py) in the lock-stepped sim graph."""

    metadata = {"render_modes": []}

    def __init__(self, task: str = "reach", seed: int = 0, *, attach: bool = False, domain_id: int | None = None,
                 log_dir: Path | str | None = None, timeout: float = 30.0, startup_timeout: float = 120.0):
        self.task = make_task(task)
        self.timeout = float(timeout)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (self.task.obs_dim,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (self.task.action_dim,), np.float32)
        self._seed = seed
        self._rng = np.random.default_rng(seed)
        self._claimed = None  # a private domain this env holds (brs_common.domains), released by close()
        if domain_id is None:
            if attach:
                domain_id = int(os.environ.get("ROS_DOMAIN_ID", "0"))
            else:
                domain_id = self._claimed = domains.claim(domains.JOBS)
        self.domain_id = domain_id
        self.graph = None if attach else SimGraph(domain_id, log_dir)
        self._cond = threading.Condition()
        self._js: dict[int, np.ndarray] = {}  # stamp ns -> STATE_JOINTS positions
        self._odom: dict[int, np.ndarray] = {}  # stamp ns -> (x, y, yaw)
        self._cmd_stamp = -1
        self._cmd_msg = None
        self._counts = {"js": 0, "odom": 0, "cmd": 0}
        self._last_js = None
        self._last_odom = None
        try:
            self.ros = BackgroundNode("ros_sim_env", domain_id)
            node = self.ros.node
            node.create_subscription(JointState, topics.JOINT_STATES, self._on_js, qos.STATE)
            node.create_subscription(Odometry, topics.ODOM, self._on_odom, qos.STATE)
            node.create_subscription(JointState, topics.CONTROLLER_STATE, self._on_cmd, qos.STATE)
            self.pub = node.create_publisher(JointTrajectory, topics.whole_body_command("rl"), qos.COMMAND)
            self.step_client = node.create_client(Trigger, topics.SIM_STEP)
            self.pause_client = node.create_client(SetBool, topics.SIM_PAUSE)
            self.reset_client = node.create_client(Trigger, topics.SIM_RESET)
            self.param_client = node.create_client(SetParameters, f"/{topics.SIM_NODE}/set_parameters")
            self.hold_client = node.create_client(Trigger, topics.CONTROLLER_HOLD)
            self.received_client = node.create_client(Trigger, topics.CONTROLLER_RECEIVED)
            self._wait(lambda: all(c.service_is_ready() for c in (
                self.step_client, self.pause_client, self.reset_client, self.param_client, self.hold_client,
                self.received_client))
                and self.pub.get_subscription_count() > 0,
                startup_timeout, "the sim graph's services and the controller's subscriptions")
            if not self._call(self.pause_client, SetBool.Request(data=True)).success:
                raise GraphError("/sim/pause refused")
            self._sent = self._received()  # the rl commands this env has had taken in
            # the controller starts commanding after its first /joint_states on a running clock
            deadline = time.monotonic() + startup_timeout
            while self._cmd_stamp < 0:
                self._call(self.step_client, Trigger.Request())
                with self._cond:
                    self._cond.wait_for(lambda: self._cmd_stamp >= 0, 0.05)
                if time.monotonic() > deadline:
                    raise GraphError("the controller never ticked")
        except BaseException:
            self.close()
            raise
        atexit.register(self.close)  # rclpy aborts the interpreter if a context is left running
        self.episode_steps = 0
        self.sim_steps = 0
        self.target = None
        self.arm_cmd = None

    # ------------------------------------------------------------------ ROS plumbing
    def _on_js(self, msg):
        try:
            q = state_positions(msg)
        except ValueError:
            return
        with self._cond:
            self._js[stamp_ns(msg.header.stamp)] = q
            self._last_js = q
            self._counts["js"] += 1
            self._trim(self._js)
            self._cond.notify_all()

    def _on_odom(self, msg):
        with self._cond:
            self._odom[stamp_ns(msg.header.stamp)] = odom_pose(msg)
            self._last_odom = self._odom[stamp_ns(msg.header.stamp)]
            self._counts["odom"] += 1
            self._trim(self._odom)
            self._cond.notify_all()

    def _on_cmd(self, msg):
        with self._cond:
            self._cmd_stamp = stamp_ns(msg.header.stamp)
            self._cmd_msg = msg
            self._counts["cmd"] += 1
            self._cond.notify_all()

    @staticmethod
    def _trim(d: dict, keep: int = 64):
        while len(d) > keep:
            d.pop(next(iter(d)))

    def _wait(self, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    if self.graph is not None:
                        self.graph.check()
                    raise GraphError(f"timed out after {timeout:.1f} s waiting for {what}")
                self._cond.wait(min(left, 0.5))

    def _call(self, client, request):
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _: done.set())
        if not done.wait(self.timeout):
            if self.graph is not None:
                self.graph.check()
            raise GraphError(f"no response from {client.srv_name} within {self.timeout:.0f} s")
        return future.result()

    def _step_period(self) -> int:
        """One control period of physics; returns the new sim time (ns) after the controller ticked on it."""
        res = self._call(self.step_client, Trigger.Request())
        if not res.success:
            raise GraphError(f"/sim/step failed: {res.message}")
        t = time_text_ns(res.message.removeprefix("t="))  # the stamp the controller will tick at, exactly
        self.sim_steps += 1
        self._wait(lambda: self._cmd_stamp >= t, self.timeout, f"the controller's tick at t={t * 1e-9:.3f}")
        return t

    def _received(self) -> int:
        """Commands the controller has taken in on the rl source so far (its ~/received service)."""
        import json

        return int(json.loads(self._call(self.received_client, Trigger.Request()).message)["rl"])

    def _controller_barrier(self):
        """Wait until the controller has taken in every command published so far. A service round
        trip alone is not enough: the topic sample and the request travel separately, and under
        load the request can overtake the command. rclpy's wait_for_all_acked only says the
        DDS reader has it, and waits for heartbeats (~3 s)."""
        self._sent += 1
        deadline = time.monotonic() + self.timeout
        while (received := self._received()) < self._sent:
            if time.monotonic() > deadline:
                raise GraphError(f"the controller took in {received} of {self._sent} commands "
                                 f"within {self.timeout:.0f} s")
            time.sleep(0.001)

    def _state_at(self, t: int):
        self._wait(lambda: t in self._js and t in self._odom, self.timeout, f"/joint_states and /odom at {t * 1e-9:.3f}")
        with self._cond:
            return self._js[t], self._odom[t]

    def _set_sim_seed(self, seed: int):
        value = ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=int(seed))
        res = self._call(self.param_client, SetParameters.Request(parameters=[ParameterMsg(name="seed", value=value)]))
        if not res.results or not res.results[0].successful:
            raise GraphError(f"could not set the sim seed: {res.results}")

    def _reset_controller(self, q_reset: np.ndarray):
        """Ask the controller to hold until it holds exactly the reset pose (it may not have seen the
        reset's /joint_states yet)."""
        for _ in range(20):
            with self._cond:
                n = self._counts["cmd"]
            res = self._call(self.hold_client, Trigger.Request())
            if not res.success:
                raise GraphError(f"controller ~/hold refused: {res.message}")
            self._wait(lambda: self._counts["cmd"] > n, self.timeout, "the controller's hold")
            with self._cond:
                held = np.asarray(self._cmd_msg.position)
            if np.array_equal(held[self.task_position_index], q_reset):
                return
        raise GraphError("the controller never held the reset pose")

    @property
    def task_position_index(self):
        from .ros_tasks import POSITION

        return np.flatnonzero(POSITION)

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None, options=None):
        super().reset(seed=seed)
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        episode_seed = int(self._rng.integers(2**31 - 1))
        self._set_sim_seed(episode_seed)
        with self._cond:
            n_js, n_odom = self._counts["js"], self._counts["odom"]
        if not self._call(self.reset_client, Trigger.Request()).success:
            raise GraphError("/sim/reset failed")
        self._wait(lambda: self._counts["js"] > n_js and self._counts["odom"] > n_odom, self.timeout,
                   "the state after /sim/reset")
        with self._cond:
            q, pose = self._last_js.copy(), self._last_odom.copy()
        self._reset_controller(q)
        self.target = self.task.sample_target(self._rng, pose)
        self.arm_cmd = self.task.initial_command(q)
        self.episode_steps = 0
        self.q, self.pose = q, pose
        obs = self.task.observation(q, pose, self.target, self.arm_cmd)
        return obs, {"target": self.target.copy(), "distance": self.task.distance(q, pose, self.target)}

    def step(self, action):
        if self.target is None:
            raise RuntimeError("call reset() first")
        self.arm_cmd = self.task.apply_action(self.arm_cmd, action)
        self.pub.publish(self.task.command_msg(self.arm_cmd))
        self._controller_barrier()
        t = None
        for _ in range(self.task.control_periods):
            t = self._step_period()
        q, pose = self._state_at(t)
        self.episode_steps += 1
        previous = self.task.distance(self.q, self.pose, self.target)
        d = self.task.distance(q, pose, self.target)
        success = self.task.success(d)
        obs = self.task.observation(q, pose, self.target, self.arm_cmd)
        self.q, self.pose, self.sim_time = q, pose, t * 1e-9
        truncated = self.episode_steps >= self.task.max_steps  # never terminated: reach, then hold
        return obs, self.task.reward(d, previous), False, truncated, {"distance": d, "success": success,
                                                                      "sim_time": self.sim_time}

    def close(self):
        ros = getattr(self, "ros", None)
        if ros is not None:
            ros.close()
            self.ros = None
        if getattr(self, "graph", None) is not None:
            self.graph.close()
            self.graph = None
        if getattr(self, "_claimed", None) is not None:
            domains.release(self._claimed)
            self._claimed = None
        atexit.unregister(self.close)
