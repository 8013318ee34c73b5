"""Sim node: MuJoCo stands in for the whole hardware layer and serves the same topic contract.

Subscribes: /<group>_controller/commands (Float64MultiArray), /base_controller/cmd_vel (TwistStamped).
Publishes: /joint_states, /odom, /clock, /cameras/<name>/{depth,color}/{image_raw,camera_info},
/diagnostics. Services: ~/reset (Trigger, seeded by the `seed` parameter), ~/pause (SetBool),
~/step (Trigger: one control period while paused).

Physics runs in the main thread, paced to `speed_factor` x real time (0 = as fast as possible);
ROS callbacks run in an executor thread and only hand over validated commands.
"""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import SetBool, Trigger
from visualization_msgs.msg import MarkerArray

from brs_common import params, qos, topics
from brs_common import robot_spec as spec
from brs_common.dds import configure_dds
from brs_common.convert import (make_camera_info, numpy_to_image, object_poses_to_markers,
                                ns_to_stamp, stamp_to_sec, time_text)
from brs_common.diagnostics import DiagnosticsReporter

from .sim_core import SimCore
from .tasks import TASKS, get_task


class SimNode(Node):
    def __init__(self, **node_kwargs):
        super().__init__(topics.SIM_NODE, **node_kwargs)
        param = params.declare(self, [
            ("scene", "scene", "model brs_sim/models/<scene>.xml (robot: the robot alone)"),
            ("seed", 0, "seed of the reset randomisation (object placement), read at every ~/reset"),
            ("object_jitter", 0.02, "seeded x/y jitter of the free objects at reset, +- m"),
            ("speed_factor", 1.0, "pacing: 1 = real time, 3 = three times faster, 0 = as fast as possible"),
            ("camera_rate_hz", spec.CAMERA_RATE_HZ, "RGB-D rate of every camera, Hz (sim time)"),
            ("cameras_enabled", True, "render the cameras (false: no OpenGL at all)"),
            ("joint_state_rate_hz", spec.JOINT_STATE_RATE_HZ, "/joint_states and /odom rate, Hz (sim time)"),
            ("cmd_vel_timeout", 0.5, "s (sim time) without cmd_vel before the base is stopped"),
            ("start_paused", False, "start paused (step with ~/step, resume with ~/pause)"),
            ("task", "", f"household task ({', '.join(TASKS)}): resets place its objects, its outcome "
                         "goes to /diagnostics; '': none"),
            ("time_limit_warn", False, "an exceeded task time limit is a WARN (true: the graph judges episodes "
                                       "by it, brs eval / collect) or an OK-level note (false: hand teleop); "
                                       "read at every report"),
        ])
        self.sim = SimCore(param["scene"], seed=param["seed"], object_jitter=param["object_jitter"])
        self.task = get_task(param["task"]) if param["task"] else None
        self.task_start = 0.0
        self.task_resets = 0  # /sim/reset calls served: tells one episode's status from the next
        if self.task:
            self.task.reset(self.sim, param["seed"])
        self.speed_factor = float(param["speed_factor"])
        self.cmd_vel_timeout = float(param["cmd_vel_timeout"])
        period = self.sim.control_period
        self.joint_state_every = max(1, round(1.0 / (param["joint_state_rate_hz"] * period)))
        self.camera_every = max(1, round(1.0 / (param["camera_rate_hz"] * period)))
        self.renderer = None
        if param["cameras_enabled"]:
            from .camera_renderer import RgbdRenderer  # GL only when cameras are wanted

            self.renderer = RgbdRenderer(self.sim.model)

        self.lock = threading.Lock()
        self.pending_targets: dict[str, np.ndarray] = {}
        self.pending_twist: tuple[np.ndarray, float] | None = None
        self.last_twist_time = -math.inf
        self.paused = bool(param["start_paused"])
        self.step_requests: list[threading.Event] = []
        self.reset_requests: list[threading.Event] = []
        self.ticks = 0

        self.diag = DiagnosticsReporter(self, hardware_id="mujoco_sim")
        for group in spec.POSITION_GROUPS:
            self.create_subscription(
                Float64MultiArray, topics.controller_command(group),
                lambda msg, g=group: self._on_group_command(g, msg), qos.COMMAND)
        self.create_subscription(TwistStamped, topics.CMD_VEL, self._on_cmd_vel, qos.COMMAND)
        self.pub_joints = self.create_publisher(JointState, topics.JOINT_STATES, qos.STATE)
        self.pub_odom = self.create_publisher(Odometry, topics.ODOM, qos.STATE)
        self.pub_clock = self.create_publisher(Clock, topics.CLOCK, qos.CLOCK)
        self.pub_objects = self.create_publisher(MarkerArray, topics.SIM_OBJECTS, qos.STATE)
        self.pub_cameras = {
            name: {s: self.create_publisher(Image if s in ("depth", "color") else CameraInfo,
                                            topics.camera_topic(name, s), qos.SENSOR)
                   for s in ("depth", "color", "depth_info", "color_info")}
            for name in spec.CAMERAS
        } if self.renderer else {}
        self._joint_state_msg = JointState(name=list(spec.STATE_JOINTS))
        self._odom_msg = Odometry(child_frame_id=spec.FRAMES["base"])
        self._odom_msg.header.frame_id = spec.FRAMES["odom"]
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.create_service(SetBool, "~/pause", self._on_pause)
        self.create_service(Trigger, "~/step", self._on_step)
        self.get_logger().info(
            f"sim ready: scene={param['scene']} dt={self.sim.model.opt.timestep} "
            f"speed_factor={self.speed_factor} cameras={'on' if self.renderer else 'off'}")

    # --- callbacks (executor thread) -----------------------------------------------------------
    def _on_group_command(self, group: str, msg: Float64MultiArray):
        values = np.asarray(msg.data, dtype=float)
        names = spec.GROUPS[group].joints
        if values.shape != (len(names),):
            self.diag.reject("wrong_length", f"{group}: got {values.size} values, expected {len(names)}")
            return
        if not np.all(np.isfinite(values)):
            self.diag.reject("non_finite", f"{group}: NaN or inf in command")
            return
        sl = spec.group_slice(group)
        clipped = np.clip(values, spec.LOWER[sl], spec.UPPER[sl])
        if not np.array_equal(clipped, values):
            self.diag.reject("clamped", f"{group}: target outside joint limits, clamped")
        with self.lock:
            self.pending_targets[group] = clipped

    def _on_cmd_vel(self, msg: TwistStamped):
        t = msg.twist
        v = np.array([t.linear.x, t.linear.y, t.angular.z])
        if not np.all(np.isfinite(v)):
            self.diag.reject("non_finite", "cmd_vel: NaN or inf")
            return
        stamp = stamp_to_sec(msg.header.stamp)
        if stamp > 0 and self.sim.time - stamp > self.cmd_vel_timeout:
            self.diag.reject("stale", f"cmd_vel stamped {self.sim.time - stamp:.2f}s ago")
            return
        limit = spec.MAX_VELOCITY[spec.group_slice("base")]
        clipped = np.clip(v, -limit, limit)
        if not np.array_equal(clipped, v):
            self.diag.reject("clamped", "cmd_vel above base velocity limits, clamped")
        with self.lock:
            self.pending_twist = (clipped, stamp)

    def _wait_for_loop(self, requests: list, timeout: float = 10.0) -> bool:
        done = threading.Event()
        with self.lock:
            requests.append(done)
        return done.wait(timeout)

    def _on_reset(self, request, response):
        response.success = self._wait_for_loop(self.reset_requests)
        response.message = f"reset with seed {self.get_parameter('seed').value}"
        return response

    def _on_pause(self, request, response):
        with self.lock:
            self.paused = bool(request.data)
        response.success = True
        response.message = "paused" if request.data else "running"
        return response

    def _on_step(self, request, response):
        if not self.paused:
            response.success = False
            response.message = "step needs the sim paused (call ~/pause first)"
            return response
        response.success = self._wait_for_loop(self.step_requests)
        response.message = f"t={time_text(ns_to_stamp(self.sim.time_ns))}"  # exactly the stamp of /clock
        return response

    # --- sim loop (main thread) ----------------------------------------------------------------
    def _apply_commands(self):
        with self.lock:
            targets, self.pending_targets = self.pending_targets, {}
            twist, self.pending_twist = self.pending_twist, None
        for group, values in targets.items():
            self.sim.set_position_targets(spec.GROUPS[group].joints, values)
        if twist is not None:
            self.sim.set_base_velocity(*twist[0])
            self.last_twist_time = self.sim.time
        elif self.sim.time - self.last_twist_time > self.cmd_vel_timeout and self.sim.base_cmd.any():
            self.sim.set_base_velocity(0.0, 0.0, 0.0)  # cmd_vel watchdog, like ros2_control
            self.diag.set_status("base", DiagnosticStatus.WARN, "cmd_vel timeout: base stopped", {})

    def tick(self):
        """One control period: commands in, physics, then publish what is due."""
        self._apply_commands()
        self.sim.step()
        self.ticks += 1
        stamp = ns_to_stamp(self.sim.time_ns)
        self.pub_clock.publish(Clock(clock=stamp))
        if self.ticks % self.joint_state_every == 0:
            self._publish_state(stamp)
        if self.renderer and self.ticks % self.camera_every == 0:
            self._publish_cameras(stamp)
        if self.task and self.ticks % round(spec.CONTROL_RATE_HZ) == 0:
            self._report_task()

    def _report_task(self):
        """Task outcome once per sim second on /diagnostics (component 'task'). An exceeded time
        limit is a WARN only where the graph judges episodes by it (`time_limit_warn`, set by the
        graph in the evaluating modes); during hand teleop or recording it is an OK-level note,
        not a lasting WARN on the operator's console. Episode drivers read the values (success,
        elapsed, resets), never the level."""
        elapsed = self.sim.time - self.task_start
        success = self.task.success(self.sim.model, self.sim.data)
        over = not success and elapsed > self.task.time_limit
        level = DiagnosticStatus.OK
        state = "success" if success else "running"
        if over:
            warn = bool(self.get_parameter("time_limit_warn").value)
            level = DiagnosticStatus.WARN if warn else DiagnosticStatus.OK
            state = f"time limit exceeded ({self.task.time_limit:g} s)" + (
                "" if warn else "; only brs eval / brs collect judge episodes by it")
        self.diag.set_status("task", level, f"{self.task.name}: {state}",
                             {"task": self.task.name, "success": success, "elapsed": f"{elapsed:.1f}",
                              "time_limit": self.task.time_limit, "time_limit_exceeded": over,
                              "resets": self.task_resets})

    def _publish_state(self, stamp):
        # Messages are built once and refilled: constructing an Odometry costs more than publishing it.
        pos, vel, effort = self.sim.joint_state()
        js = self._joint_state_msg
        js.header.stamp = stamp
        js.position, js.velocity, js.effort = pos.tolist(), vel.tolist(), effort.tolist()
        self.pub_joints.publish(js)
        x, y, yaw = self.sim.base_pose()
        vx, vy, wz = self.sim.base_twist()
        odom = self._odom_msg
        odom.header.stamp = stamp
        odom.pose.pose.position.x, odom.pose.pose.position.y = float(x), float(y)
        odom.pose.pose.orientation.z = math.sin(yaw / 2)
        odom.pose.pose.orientation.w = math.cos(yaw / 2)
        odom.twist.twist.linear.x, odom.twist.twist.linear.y = float(vx), float(vy)
        odom.twist.twist.angular.z = float(wz)
        self.pub_odom.publish(odom)
        if self.pub_objects.get_subscription_count():
            self.pub_objects.publish(
                object_poses_to_markers(self.sim.object_poses(), spec.FRAMES["odom"], stamp))

    def _publish_cameras(self, stamp):
        for name, cam in spec.CAMERAS.items():
            rgb, depth = self.renderer.render(self.sim.data, name)
            pubs = self.pub_cameras[name]
            pubs["color"].publish(numpy_to_image(rgb, "rgb8", cam.optical_frame, stamp))
            pubs["depth"].publish(numpy_to_image(depth, "32FC1", cam.optical_frame, stamp))
            info = make_camera_info(cam, cam.optical_frame, stamp)
            pubs["color_info"].publish(info)
            pubs["depth_info"].publish(info)

    def _serve_requests(self):
        with self.lock:
            resets, self.reset_requests = self.reset_requests, []
            steps = self.step_requests[:1]
            del self.step_requests[:1]
        if resets:
            seed = int(self.get_parameter("seed").value)
            if self.task:
                self.task.reset(self.sim, seed)
                self.task_start = self.sim.time
                self.task_resets += 1
                self._report_task()
                self.diag.publish()  # the new episode's status at once, not at the next sim second
            else:
                self.sim.reset(seed)
            with self.lock:
                self.pending_targets.clear()
                self.pending_twist = None
            self.last_twist_time = -math.inf
            self._publish_state(ns_to_stamp(self.sim.time_ns))
            for done in resets:
                done.set()
        return steps

    def run(self, context):
        """Sim loop until the context shuts down (Ctrl-C)."""
        wall0, sim0 = time.monotonic(), self.sim.time
        was_paused = self.paused
        while context.ok():
            steps = self._serve_requests()
            if self.paused:
                for done in steps:
                    self.tick()
                    done.set()
                was_paused = True
                if not steps:
                    time.sleep(0.002)
                continue
            if was_paused:
                wall0, sim0, was_paused = time.monotonic(), self.sim.time, False
            self.tick()
            if self.speed_factor > 0:
                ahead = (self.sim.time - sim0) / self.speed_factor - (time.monotonic() - wall0)
                if ahead > 0:
                    time.sleep(ahead)
                elif ahead < -0.5:  # cannot keep up: do not try to catch up in a burst
                    wall0, sim0 = time.monotonic(), self.sim.time

    def close(self):
        if self.renderer:
            self.renderer.close()


def main(args=None):
    configure_dds()
    rclpy.init(args=args)
    node = SimNode()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=_spin, args=(executor,), daemon=True)
    spinner.start()
    try:
        node.run(node.context)
    except KeyboardInterrupt:
        pass
    finally:
        node.close()
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
        spinner.join(timeout=2)
    return 0


def _spin(executor):
    try:
        executor.spin()
    except (ExternalShutdownException, KeyboardInterrupt):
        pass
