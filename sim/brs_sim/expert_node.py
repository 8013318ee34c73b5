"""Expert node: a scripted expert drives the robot through the graph the way an operator does.

It reads /joint_states, /odom and the sim's privileged object poses (topics.SIM_OBJECTS) and
publishes whole-body targets on /whole_body/teleop/command at `rate_hz`, like JoyLo. It never
touches the simulation. States: idle (publishes nothing: the controller holds), homing (drives
every joint to the spec home pose, base at rest; then holds it), running (the task's expert).

Services: ~/start (Trigger: start the expert from the current observation), ~/home (Trigger),
~/stop (Trigger: back to idle). Parameters: task, rate_hz, expert_class ("module:Class" of
another Expert subclass, e.g. your own), action_noise, noise_seed, max_wait, wait_seed. Status on
/diagnostics, component "expert": state, phase, done, episode time (sim seconds since start).

Noise injection (DART-style data collection): with `action_noise` > 0 the command the robot
executes while running is the expert's target plus a smooth random offset (Ornstein-Uhlenbeck,
time constant NOISE_TAU, stationary std `action_noise` rad on torso and arm joints and m/s or
rad/s on the base; grippers clean), so the robot drifts off the expert's path and the expert,
closed-loop on the measured state, brings it back. The clean target goes out on ~/clean_command
(sensor_msgs/JointState in the controller's ~/commanded layout: ACTION_JOINTS, base entries as
velocities), which the episode recorder stores as the action (`action_topic`): the demos then
hold recovery states labelled with what the expert wanted there.

Varied waits: with `max_wait` > 0 the expert holds still for uniform(0, max_wait) s before each of
its `wait_before` phases (PhasedExpert.vary_waits), one random stream over the node's episodes, so
that in the demos a phase follows the robot's state (the block lifted, the torso up) and not the
clock since the start.
"""

from __future__ import annotations

import importlib
import math

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import MarkerArray

from brs_common import params, qos, topics
from brs_common import robot_spec as spec
from brs_common.convert import (make_joint_state, markers_to_object_poses, odom_pose, state_positions,
                                whole_body_command_msg)
from brs_common.diagnostics import DiagnosticsReporter

from .experts import EXPERTS, make_expert
from .experts.common import EXPERT_RATE_HZ, POSITION, Observation

IDLE, HOMING, HOME, RUNNING, DONE = "idle", "homing", "home", "running", "done"
HOME_TOLERANCE = 0.02  # rad / m: every position joint this close to home counts as home
NOISE_TAU = 0.5  # s, correlation time of the injected noise (white noise at 10 Hz the servos filter out)
NOISY = np.array([not n.endswith("_gripper_joint") for n in spec.ACTION_JOINTS])


class ActionNoise:
    """Ornstein-Uhlenbeck offsets (21,) with stationary std `scale` on the NOISY entries."""

    def __init__(self, scale: float, dt: float, seed: int, tau: float = NOISE_TAU):
        self.scale, self.a = scale, math.exp(-dt / tau)
        self.rng = np.random.default_rng(seed)
        self.x = np.zeros(spec.ACTION_DIM)

    def reset(self) -> None:
        self.x = self.scale * self.rng.standard_normal(spec.ACTION_DIM) * NOISY

    def __call__(self) -> np.ndarray:
        kick = self.scale * math.sqrt(1 - self.a * self.a) * self.rng.standard_normal(spec.ACTION_DIM)
        self.x = self.a * self.x + kick * NOISY
        return self.x


class ExpertNode(Node):
    def __init__(self, **kwargs):
        super().__init__("expert", **kwargs)
        p = params.declare(self, [
            ("task", "", f"sim task whose registered expert drives: {', '.join(EXPERTS)}"),
            ("rate_hz", EXPERT_RATE_HZ, "command rate, Hz (node clock); > 0"),
            ("expert_class", "", "'module:Class' of an Expert subclass to use instead of the task's"),
            ("action_noise", 0.0, "std of the smooth noise added to the executed command, rad or m/s "
                                  "(grippers clean); 0: none", (0.0, 0.3)),
            ("noise_seed", 0, "seed of the action noise"),
            ("max_wait", 0.0, "varied waits: the expert holds still for uniform(0, max_wait) s before "
                              "each of its wait_before phases, s; 0: none", (0.0, 10.0)),
            ("wait_seed", 0, "seed of the varied waits"),
        ])
        self.task = str(p["task"])
        self.rate_hz = float(p["rate_hz"])
        self.expert_class = str(p["expert_class"])
        self.action_noise = float(p["action_noise"])
        noise_seed = int(p["noise_seed"])
        if not self.expert_class and self.task not in EXPERTS:
            raise ValueError(f"task must be one of {', '.join(EXPERTS)}; got {self.task!r}")
        if not self.rate_hz > 0:
            raise ValueError(f"rate_hz must be > 0; got {self.rate_hz}")
        if not 0.0 <= self.action_noise <= 0.3:
            raise ValueError(f"action_noise must be in [0, 0.3] (std, rad or m/s); got {self.action_noise}")
        self.noise = ActionNoise(self.action_noise, 1.0 / self.rate_hz, noise_seed)
        self.max_wait = float(p["max_wait"])
        if not 0.0 <= self.max_wait <= 10.0:
            raise ValueError(f"max_wait must be in [0, 10] s; got {self.max_wait}")
        self.wait_rng = np.random.default_rng(int(p["wait_seed"]))  # one stream over the episodes
        self.expert = self._make_expert()
        self.state = IDLE
        self.joints: np.ndarray | None = None
        self.base_pose: np.ndarray | None = None
        self.objects: dict[str, np.ndarray] = {}
        self.start_time = 0.0
        self._reported = None
        self.pub = self.create_publisher(JointTrajectory, topics.whole_body_command("teleop"), qos.COMMAND)
        self.clean_pub = self.create_publisher(JointState, "~/clean_command", qos.STATE)
        self.create_subscription(JointState, topics.JOINT_STATES, self._on_joint_states, qos.STATE)
        self.create_subscription(Odometry, topics.ODOM, self._on_odom, qos.STATE)
        self.create_subscription(MarkerArray, topics.SIM_OBJECTS, self._on_objects, qos.STATE)
        self.create_service(Trigger, "~/start", self._on_start)
        self.create_service(Trigger, "~/home", self._on_home)
        self.create_service(Trigger, "~/stop", self._on_stop)
        self.diag = DiagnosticsReporter(self, hardware_id=f"expert/{self.task}", default_component="expert")
        self.create_timer(1.0 / self.rate_hz, self._tick)
        self.get_logger().info(f"expert for {self.task!r} ready at {self.rate_hz:g} Hz")

    def _make_expert(self):
        if not self.expert_class:
            expert = make_expert(self.task)
        else:
            module, _, name = self.expert_class.partition(":")
            try:
                expert = getattr(importlib.import_module(module), name)()
            except (ImportError, AttributeError) as exc:
                raise ValueError(f"expert_class {self.expert_class!r} cannot be loaded: {exc}") from None
        if self.max_wait > 0:
            if not getattr(expert, "wait_before", ()):
                raise ValueError(f"max_wait {self.max_wait:g}: {type(expert).__name__} has no phases to wait before")
            expert.vary_waits(self.max_wait, self.wait_rng)
        return expert

    # --- inputs ---------------------------------------------------------------------------------
    def _on_joint_states(self, msg: JointState):
        try:
            self.joints = state_positions(msg)
        except ValueError as exc:  # malformed, NaN, or without our joints
            self.diag.reject("bad_joint_states", str(exc))

    def _on_odom(self, msg: Odometry):
        self.base_pose = odom_pose(msg)

    def _on_objects(self, msg: MarkerArray):
        self.objects = markers_to_object_poses(msg)

    def observation(self) -> Observation | None:
        if self.joints is None or self.base_pose is None or not self.objects:
            return None
        now = self.get_clock().now().nanoseconds * 1e-9
        return Observation(now - self.start_time, self.joints.copy(), self.base_pose.copy(), dict(self.objects))

    # --- services -------------------------------------------------------------------------------
    def _on_start(self, request, response):
        obs = self.observation()
        if obs is None:
            response.success, response.message = False, "no /joint_states, /odom or object poses yet"
            return response
        self.start_time = self.get_clock().now().nanoseconds * 1e-9
        obs.time = 0.0
        self.expert = self._make_expert()
        self.expert.reset(obs)
        self.noise.reset()
        self.state = RUNNING
        response.success, response.message = True, f"{self.task} expert started"
        self._report()
        return response

    def _on_home(self, request, response):
        self.state = HOMING
        response.success, response.message = True, "homing"
        return response

    def _on_stop(self, request, response):
        self.state = IDLE
        response.success, response.message = True, "idle"
        return response

    # --- loop -----------------------------------------------------------------------------------
    def _tick(self):
        obs = self.observation()
        if obs is None or self.state in (IDLE, DONE):
            self._report()
            return
        if self.state in (HOMING, HOME):
            target = np.where(POSITION, spec.HOME, 0.0)
            if np.all(np.abs(obs.positions() - target)[POSITION] < HOME_TOLERANCE):
                self.state = HOME
        else:
            target = np.asarray(self.expert.act(obs), dtype=float)
            if self.expert.done:
                self.state = DONE
                target = np.where(POSITION, target, 0.0)  # last command: base at rest
        executed = target
        if self.state == RUNNING and self.action_noise > 0:
            executed = np.clip(target + self.noise(), spec.ACTION_LOWER, spec.ACTION_UPPER)
        self.pub.publish(whole_body_command_msg(executed, 1.0 / self.rate_hz))
        self.clean_pub.publish(make_joint_state(spec.ACTION_JOINTS, np.where(POSITION, target, 0.0),
                                                vel=np.where(POSITION, 0.0, target),
                                                stamp=self.get_clock().now().nanoseconds * 1e-9))
        self._report()

    def _report(self):
        level = DiagnosticStatus.OK
        phase = self.expert.phase if self.state in (RUNNING, DONE) else "-"
        elapsed = self.get_clock().now().nanoseconds * 1e-9 - self.start_time if self.state == RUNNING else 0.0
        self.diag.set_status("expert", level, f"{self.state}: {phase}",
                             {"task": self.task, "state": self.state, "phase": phase,
                              "done": self.state == DONE, "episode_time": f"{elapsed:.2f}"})
        if (self.state, phase) != self._reported:  # changes go out at once, the rest at 1 Hz
            self._reported = (self.state, phase)
            self.diag.publish()


def main(args=None) -> int:
    from brs_common.node_main import run_node

    return run_node(ExpertNode, args, config_errors=(ValueError,))
