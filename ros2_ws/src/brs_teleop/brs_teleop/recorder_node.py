"""Episode recorder node: synchronised frames of the robot's streams -> brs-episode HDF5 files.

Node `episode_recorder` (console script `episode_recorder`). Subscribes /joint_states, /odom,
the controller's /whole_body_controller/commanded (the executed action), each recorded camera's
color + depth image_raw and camera_info (SensorDataQoS) and /joy (Joy-Con start/stop/discard
buttons, rising edges). Frames are taken every 1/rate_hz seconds of node time (sim time with
use_sim_time) from the episode start: the frame at t holds the latest message of every stream
stamped at or before t (a short history per stream, so a late callback or a burst of sim time
loses nothing); it is dropped (and counted) when a stream has none or it is more than max_age
older than t. Frames go through a bounded queue to a writer thread, so slow disk never blocks a
callback; a full queue drops (and counts) the frame.

Services (std_srvs/Trigger): ~/start, ~/stop (save as complete), ~/discard.
Parameters: output_dir, rate_hz, max_age, cameras, task, seed, source, calibration_file,
queue_size, joycon_config, action_topic, depth_encoding, compression_level, max_duration,
min_free_mb (see docs/teleop.md, "Recording episodes"). task/seed/source are read at each start,
so `ros2 param set` between episodes works; max_duration and min_free_mb are read live.
Limits: an episode longer than max_duration (node time), or one running while output_dir has less
than min_free_mb free, is stopped and saved as complete (WARN status, one log line); a start is
refused while free space is under min_free_mb.
A write error (a full disk) turns the status ERROR and stops writing; ~/stop then saves the whole
frames written so far as a complete episode, or answers success=false with the reason and leaves
them readable in the `.partial` file when even that fails. The next start clears the ERROR.
Status on /diagnostics at 1 Hz ("episode_recorder: recorder"). SIGINT/SIGTERM saves the current
episode as complete; a kill -9 leaves it as `<episode>.h5.partial` (see episode.py).
"""

from __future__ import annotations

import json
import queue
import shutil
import threading
from collections import Counter
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import yaml
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from nav_msgs.msg import Odometry
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.task import Future as RclpyFuture
from sensor_msgs.msg import CameraInfo, Image, Joy, JointState
from std_srvs.srv import Trigger

from brs_common import params, qos, topics
from brs_common import robot_spec as spec
from brs_common.convert import color_to_rgb, depth_to_metres, joint_state_arrays, odom_pose, stamp_to_sec
from brs_common.diagnostics import DiagnosticsReporter
from brs_common.node_main import ConfigError
from brs_common.stamped_history import StampedHistory

from . import episode as ep
from . import joycon
from . import teleop_mapping as tm

BASE = spec.group_slice("base")
EPISODE_EVENTS = (tm.START_EPISODE, tm.STOP_EPISODE, tm.DISCARD_EPISODE)
SHUTDOWN_TIMEOUT = 60.0  # s to save the current episode at Ctrl-C (drain the queue, fsync)
MAX_DURATION_LIMIT = 86400.0  # s: the largest max_duration (a day)
MIN_FREE_MB_LIMIT = 10_000_000  # MB: the largest min_free_mb (10 TB)


# ---- pure conversions --------------------------------------------------------------------------

def odom_pose_velocity(msg: Odometry) -> tuple[np.ndarray, np.ndarray]:
    """((x, y, yaw) in odom, (vx, vy, wz) in the base frame) of an Odometry."""
    tw = msg.twist.twist
    return odom_pose(msg), np.array([tw.linear.x, tw.linear.y, tw.angular.z])


def action_from_commanded(msg: JointState) -> np.ndarray:
    """21-D executed action of the controller's ~/commanded: positions, base entries velocities."""
    pos, vel, _ = joint_state_arrays(msg, spec.ACTION_JOINTS)
    pos[BASE] = vel[BASE]
    return pos


def frame_from_messages(t: float, msgs: dict, cameras: tuple[str, ...]) -> ep.Frame:
    """An episode frame from the latest message of every stream (keys as in `stream_keys`)."""
    pos, vel, eff = joint_state_arrays(msgs["joint_states"], spec.STATE_JOINTS)
    pose, twist = odom_pose_velocity(msgs["odom"])
    images = {c: (color_to_rgb(msgs[f"{c}/color"]), depth_to_metres(msgs[f"{c}/depth"])) for c in cameras}
    return ep.Frame(t, pos, vel, eff, pose, twist, action_from_commanded(msgs["action"]), images)


def stream_keys(cameras) -> tuple[str, ...]:
    return ("joint_states", "odom", "action") + tuple(f"{c}/{s}" for c in cameras for s in ("color", "depth"))


def load_calibration(path: str) -> str:
    """JSON of a calibration YAML/JSON file, or of every *.yaml in a folder (keyed by file stem)."""
    if not path:
        return "{}"
    p = Path(path).expanduser()
    if p.is_dir():
        data = {f.stem: yaml.safe_load(f.read_text()) for f in sorted(p.glob("*.yaml"))}
    elif p.is_file():
        data = yaml.safe_load(p.read_text())  # JSON is YAML
    else:
        raise ConfigError(f"calibration_file {path!r} does not exist")
    return json.dumps(data)


def free_mb(folder: Path) -> float:
    """Free space of the file system holding `folder`, MB (10^6 bytes) that this user may write
    (of its nearest existing parent while it does not exist: the writer creates it)."""
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free / 1e6


def joy_state(msg: Joy, config: joycon.JoyConConfig) -> joycon.JoyConState:
    """JoyConState of a sensor_msgs/Joy published by joycon.to_joy_msg with the same config."""
    axes = dict(zip(joycon.JOY_AXES, (float(a) for a in msg.axes)))
    buttons = {name: bool(b) for name, b in zip(config.button_names, msg.buttons)}
    return joycon.JoyConState(**axes, buttons=buttons)


def start_hint(source: str) -> str:
    """How the operator starts an episode, for the ready line: the trigger of the `source` that
    drives it (keyboard_teleop's R, JoyLo's Joy-Con +), or the CLI."""
    if source == "keyboard":
        return "R in keyboard_teleop (F saves, Backspace discards) or `brs record start`"
    if source in ("teleop", "joylo"):
        return "the Joy-Con + button or `brs record start`"
    return "`brs record start`"


# ---- the writer thread -------------------------------------------------------------------------

class EpisodeWriterThread:
    """Owns the EpisodeWriter. Commands and frames are processed in submission order; frames are
    bounded by `queue_size` (submit_frame returns False when full)."""

    def __init__(self, output_dir: Path, cameras: tuple[str, ...], queue_size: int, logger,
                 depth_encoding: str, compression_level: int):
        self.output_dir, self.cameras, self.queue_size, self.log = output_dir, cameras, queue_size, logger
        self.depth_encoding, self.compression_level = depth_encoding, compression_level
        self._queue: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self.queued_frames = 0
        self.writer: ep.EpisodeWriter | None = None
        self.invalid = Counter()  # per episode: reason -> frames refused by the writer
        self.invalid_total = 0  # their sum, for other threads
        self.failure = ""  # set when the disk refused a write; the episode stays .partial
        self._thread = threading.Thread(target=self._run, name="episode_writer", daemon=True)
        self._thread.start()

    def submit_frame(self, t: float, msgs: dict) -> bool:
        with self._lock:
            if self.queued_frames >= self.queue_size:
                return False
            self.queued_frames += 1
        self._queue.put(("frame", (t, msgs), None))
        return True

    def command(self, kind: str, arg=None) -> Future:
        future: Future = Future()
        self._queue.put((kind, arg, future))
        return future

    @property
    def frames(self) -> int:
        w = self.writer
        return w.n_frames if w else 0

    @property
    def duration(self) -> float:
        w = self.writer
        return w.duration if w else 0.0

    def _run(self):
        while True:
            kind, arg, future = self._queue.get()
            if kind == "frame":
                with self._lock:
                    self.queued_frames -= 1
                self._write(*arg)
                continue
            if kind == "exit":
                future.set_result(None)
                return
            try:
                future.set_result(getattr(self, f"_do_{kind}")(arg))
            except Exception as exc:  # reported to the caller (service response / log)
                future.set_exception(exc)

    def _write(self, t: float, msgs: dict):
        if self.writer is None or self.failure:
            return
        try:
            self.writer.add_frame(frame_from_messages(t, msgs, self.cameras))
        except (ValueError, KeyError) as exc:  # bad input: this frame is dropped, counted
            reason = str(exc).split(":")[0]
            self.invalid[reason] += 1
            self.invalid_total += 1
            if self.invalid[reason] == 1:
                self.log.warning(f"frame at t={t:.3f} dropped: {exc}")
        except Exception as exc:  # disk full, I/O error: the file keeps its whole frames
            self.failure = f"writing {self.writer.path.name} failed at frame {self.writer.n_frames}: {exc}"
            self.log.error(f"{self.failure}; no more frames are written: `brs record stop` saves the "
                           f"{self.writer.n_frames} frames written so far")

    def _do_start(self, metadata: ep.EpisodeMetadata) -> Path:
        if self.writer is not None:
            raise RuntimeError(f"already recording {self.writer.path.name}")
        self.invalid.clear()
        self.invalid_total = 0
        self.failure = ""
        self.writer = ep.EpisodeWriter(self.output_dir, metadata, depth_encoding=self.depth_encoding,
                                       compression_level=self.compression_level)
        return self.writer.path

    def _do_stop(self, arg: tuple[int, int]) -> dict:
        """Save the episode as complete. After a write error, its whole frames (close() cuts a
        frame the disk refused halfway); "write_error" says why it ends early. When the file
        cannot be completed, "error" says why and "partial" is where its frames stay readable."""
        dropped, success = arg
        w = self._take()
        result = {"frames": w.n_frames, "duration": w.duration,
                  "dropped": dropped + self.invalid_total, "path": None}
        if self.failure:
            result["write_error"] = self.failure
        if w.n_frames == 0:
            w.discard()
            if self.failure:
                result["error"] = f"{self.failure}: no frames were written, nothing saved"
            return result
        try:
            result["path"] = w.close(dropped_frames=result["dropped"], success=success)
        except Exception as exc:  # the disk is still full: the whole frames stay in the .partial
            w.abandon()
            self.failure = self.failure or f"completing {w.path.name} failed"
            result["error"] = f"{self.failure}; completing the episode failed too ({exc})"
            result["partial"] = w.path
        return result

    def _do_discard(self, _=None) -> dict:
        w = self._take()
        w.discard()
        return {"frames": w.n_frames, "path": w.path}

    def _take(self) -> ep.EpisodeWriter:
        if self.writer is None:
            raise RuntimeError("not recording")
        w, self.writer = self.writer, None
        return w


# ---- the node ----------------------------------------------------------------------------------

class EpisodeRecorder(Node):
    def __init__(self, **node_kwargs):
        super().__init__(topics.RECORDER_NODE, **node_kwargs)
        p = params.declare(self, [
            ("output_dir", "outputs/episodes", "directory of the episode files"),
            ("rate_hz", spec.CAMERA_RATE_HZ, "frame rate of an episode, Hz (node clock); > 0"),
            ("max_age", 0.3, "s: a frame is dropped when a stream's latest message at the frame time is older; > 0"),
            ("cameras", list(spec.CAMERAS), f"cameras to record, of {', '.join(spec.CAMERAS)}; [''] for none"),
            ("task", "", "task label stored with each episode (read at each start; required to start)"),
            ("seed", 0, "seed stored with each episode (read at each start)"),
            ("source", "teleop", "who drove the episode, stored with it (read at each start)"),
            ("calibration_file", "", "calibration YAML/JSON file (or folder of *.yaml) stored in each "
                                     "episode; '': none"),
            ("queue_size", 30, "frames waiting for the writer thread before frames are dropped; >= 1"),
            ("joycon_config", "", "Joy-Con button map (YAML); '': the default"),
            # where the action comes from: the controller's executed command, or e.g. an expert's
            # clean target while noise is injected into what it executes (/expert/clean_command)
            ("action_topic", topics.CONTROLLER_STATE, "JointState topic recorded as the action"),
            ("depth_encoding", "mm16", f"depth on disk: {', '.join(ep.DEPTH_ENCODINGS)} (mm16: uint16 "
                                       "millimetres, 0 = none)"),
            ("compression_level", 4, "gzip level of the images, 0-9", (0, 9)),
            # a forgotten recording must not fill the disk (read live: `ros2 param set` extends one)
            ("max_duration", 900.0, "s of node time after which an episode is stopped and saved as "
                                    "complete; 0: no limit (read live)", (0.0, MAX_DURATION_LIMIT)),
            ("min_free_mb", 500, "MB free in output_dir below which a start is refused and a running "
                                 "episode is stopped and saved; 0: no check (read live)", (0, MIN_FREE_MB_LIMIT)),
        ])
        if not p["rate_hz"] > 0:
            raise ConfigError(f"rate_hz must be > 0, got {p['rate_hz']}")
        if not p["max_age"] > 0:
            raise ConfigError(f"max_age must be > 0 s, got {p['max_age']}")
        if p["depth_encoding"] not in ep.DEPTH_ENCODINGS:
            raise ConfigError(f"depth_encoding {p['depth_encoding']!r}: use one of {', '.join(ep.DEPTH_ENCODINGS)}")
        if not 0 <= p["compression_level"] <= 9:
            raise ConfigError(f"compression_level must be 0-9 (gzip), got {p['compression_level']}")
        if p["queue_size"] < 1:
            raise ConfigError(f"queue_size must be >= 1 frame, got {p['queue_size']}")
        if not 0.0 <= p["max_duration"] <= MAX_DURATION_LIMIT:
            raise ConfigError(f"max_duration must be 0 (no limit) to {MAX_DURATION_LIMIT:g} s, got {p['max_duration']}")
        if not 0 <= p["min_free_mb"] <= MIN_FREE_MB_LIMIT:
            raise ConfigError(f"min_free_mb must be 0 (no check) to {MIN_FREE_MB_LIMIT}, got {p['min_free_mb']}")
        cameras = tuple(c for c in p["cameras"] if c)  # [""]: record no cameras
        unknown = [c for c in cameras if c not in spec.CAMERAS]
        if unknown or len(set(cameras)) != len(cameras):
            raise ConfigError(f"cameras {list(cameras)}: unknown or repeated {unknown or 'names'}; "
                              f"choose from {list(spec.CAMERAS)}")
        self.cameras = cameras
        self.rate_hz, self.max_age = float(p["rate_hz"]), float(p["max_age"])
        self.output_dir = Path(p["output_dir"]).expanduser().resolve()
        try:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"output_dir {self.output_dir}: {exc}") from None
        self.calibration = load_calibration(p["calibration_file"])
        try:
            self.joy_config = joycon.load_config(p["joycon_config"] or None)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"joycon_config {p['joycon_config']!r}: {exc}") from None
        self.joy_events = tuple((b, e) for b, e in tm.MappingConfig().event_buttons if e in EPISODE_EVENTS)
        self._prev_joy: joycon.JoyConState | None = None

        # the sampler looks back up to max_age behind a slot that is up to two periods old
        self.horizon = self.max_age + 3.0 / self.rate_hz + 0.5
        self.history = {key: StampedHistory(horizon=self.horizon) for key in stream_keys(cameras)}
        self.camera_info: dict[str, CameraInfo] = {}
        self._lock = threading.Lock()
        self.recording = False
        self.episode = ""
        self.dropped = Counter()  # per episode, sampler side: stale (or missing), queue_full
        self._slot0: float | None = None  # node time of the episode's first frame
        self._next_slot = 0
        self.saved = 0
        self.last_saved = ""
        # (level, message) of how the last episode ended when the operator must see it (a limit
        # stopped it: WARN; a write error cut it short: ERROR), shown until the next start
        self.notice: tuple[int, str] | None = None
        self.writer = EpisodeWriterThread(self.output_dir, cameras, int(p["queue_size"]), self.get_logger(),
                                          str(p["depth_encoding"]), int(p["compression_level"]))

        self.diag = DiagnosticsReporter(self, hardware_id="episode_recorder", default_component="recorder")
        for key, topic, msg_type, q in (
                ("joint_states", topics.JOINT_STATES, JointState, qos.STATE),
                ("odom", topics.ODOM, Odometry, qos.STATE),
                ("action", str(p["action_topic"]), JointState, qos.STATE),
                *((f"{c}/{s}", topics.camera_topic(c, s), Image, qos.SENSOR)
                  for c in cameras for s in ("color", "depth"))):
            self.create_subscription(msg_type, topic, lambda m, k=key: self._on_message(k, m), q)
        for c in cameras:
            self.create_subscription(CameraInfo, topics.camera_topic(c, "color_info"),
                                     lambda m, c=c: self.camera_info.__setitem__(c, m), qos.SENSOR)
        self.create_subscription(Joy, topics.JOY, self._on_joy, qos.SENSOR)
        # the sim's task outcome (component "task" on /diagnostics) is stored with each episode
        self.task_success = ep.SUCCESS_UNKNOWN
        self.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, self._on_diagnostics, qos.DIAGNOSTICS)
        for name, action in (("~/start", self.start), ("~/stop", self.stop), ("~/discard", self.discard)):
            self.create_service(Trigger, name, self._service(action))
        self.create_timer(1.0 / self.rate_hz, self._sample)  # node clock: sim time in sim
        self.create_timer(0.5, self._update_status, clock=Clock(clock_type=ClockType.STEADY_TIME))
        self._update_status()
        self.get_logger().info(
            f"episode recorder ready: {self.rate_hz:g} Hz, cameras {list(cameras)}, "
            f"writing to {self.output_dir}; start with {start_hint(str(self.get_parameter('source').value))}")

    # --- inputs (executor threads) ---------------------------------------------------------------
    def _on_message(self, key: str, msg):
        stamp = stamp_to_sec(msg.header.stamp)
        if stamp == 0.0:  # unstamped publisher: use the arrival time
            stamp = self.get_clock().now().nanoseconds * 1e-9
        self.history[key].add(stamp, msg)

    def _on_diagnostics(self, msg: DiagnosticArray):
        for status in msg.status:
            if status.name == topics.SIM_TASK_STATUS:
                values = {kv.key: kv.value for kv in status.values}
                self.task_success = int(values.get("success") == "True")

    def _on_joy(self, msg: Joy):
        state = joy_state(msg, self.joy_config)
        prev, self._prev_joy = self._prev_joy, state
        if prev is None:  # the first message is the baseline: a held button is no press
            return
        config = tm.MappingConfig(event_buttons=self.joy_events)
        _, events = tm.joycon_command(state, prev, config=config)
        for event in events:
            action = {tm.START_EPISODE: self.start, tm.STOP_EPISODE: self.stop,
                      tm.DISCARD_EPISODE: self.discard}[event]
            action().add_done_callback(lambda f, e=event: self._warn_refused(e, *f.result()))

    def _warn_refused(self, event: str, ok: bool, message: str):
        if not ok:
            self.get_logger().warning(f"Joy-Con {event}: {message}")

    def _sample(self):
        """Take the frames of every slot t = t0 + k / rate_hz that is one period in the past.

        A frame at t holds each stream's latest message stamped at or before t, so frame times
        are exact, and a late timer or a burst of sim time loses nothing (the history covers it).
        """
        if not self.recording:
            return
        now = self.get_clock().now().nanoseconds * 1e-9
        if self._slot0 is None:
            self._slot0, self._next_slot = now, 0
        lost = int((now - self._slot0) * self.rate_hz - self.horizon * self.rate_hz) - self._next_slot
        if lost > 0:  # the clock jumped (or the node stalled) past what the history holds
            self._next_slot += lost
            with self._lock:
                self.dropped["stale"] += lost
            self.diag.reject("stale_stream", f"{lost} frames lost to a clock jump or a stall")
        while (t := self._slot0 + self._next_slot / self.rate_hz) + 1.0 / self.rate_hz <= now:
            self._next_slot += 1
            self._take_frame(t)
        reason = self._limit_reached(now)
        if reason:
            self.stop(reason=reason)

    def _limit_reached(self, now: float) -> str:
        """Why the running episode must stop now (max_duration, min_free_mb), or ""."""
        max_duration = float(self.get_parameter("max_duration").value)
        if max_duration > 0 and now - self._slot0 >= max_duration:
            return f"stopped {self.episode}: max_duration {max_duration:g} s reached"
        min_free = int(self.get_parameter("min_free_mb").value)
        if min_free > 0 and (free := free_mb(self.output_dir)) < min_free:
            return f"stopped {self.episode}: only {free:.0f} MB free in {self.output_dir} (min_free_mb {min_free})"
        return ""

    def _take_frame(self, t: float):
        msgs, problem = {}, ""
        for key in stream_keys(self.cameras):
            entry = self.history[key].at_or_before(t)
            if entry is None:
                problem = f"no {key} message at or before t={t:.2f}"
            elif t - entry[0] > self.max_age:
                problem = f"{key} is {t - entry[0]:.2f} s old (max_age {self.max_age:g})"
            else:
                msgs[key] = entry[1]
                continue
            break
        with self._lock:
            if not self.recording or self.writer.failure:  # after a write error nothing more is written
                return
            if problem:
                self.dropped["stale"] += 1
                self.diag.reject("stale_stream", problem)
            elif not self.writer.submit_frame(t, msgs):
                self.dropped["queue_full"] += 1
                self.diag.reject("queue_full", f"writer queue full ({self.writer.queue_size} frames)")

    # --- episode control -------------------------------------------------------------------------
    # start/stop/discard return a Future of (ok, message) that the writer thread completes; the
    # services await it as coroutines, so waiting for the disk never blocks the executor.
    def _service(self, action):
        async def serve(request, response):
            woken = RclpyFuture()
            action().add_done_callback(
                lambda f: self.executor.create_task(woken.set_result, f.result()))
            response.success, response.message = await woken
            return response
        return serve

    def _outcome(self, future: Future, describe, warn: bool = False) -> Future:
        """(ok, message) of a writer command, logged (at WARN if `warn` and it succeeded) and shown
        on /diagnostics at once. The outcome is always set: a service must never go unanswered."""
        outcome: Future = Future()

        def done(fut: Future):
            try:
                ok, message = describe(fut.result())
            except Exception as exc:  # the writer refused: disk error, ...
                ok, message = False, str(exc)
            try:
                # rclpy refuses a call site that logs at two severities: one call per level
                if ok and warn:
                    self.get_logger().warning(message)
                elif ok:
                    self.get_logger().info(message)
                else:
                    self.get_logger().error(message)
                self._update_status()
                self.diag.publish()
            finally:
                outcome.set_result((ok, message))

        future.add_done_callback(done)
        return outcome

    @staticmethod
    def _refused(message: str) -> Future:
        future: Future = Future()
        future.set_result((False, message))
        return future

    def start(self) -> Future:
        """Begin a new episode (needs camera_info of every recorded camera)."""
        with self._lock:
            if self.recording:
                return self._refused(f"already recording {self.episode}")
            missing = [c for c in self.cameras if c not in self.camera_info]
            if missing:
                return self._refused(f"no camera_info yet from {missing}: are the cameras running? "
                                     "(or record fewer with cameras:=[...], none with cameras:=[])")
            get = lambda name: self.get_parameter(name).value  # noqa: E731
            if not str(get("task")).strip():  # datasets (LeRobot) are indexed by the task label
                return self._refused("no task label: say what the episode shows, e.g. `brs record start "
                                     "--task 'put the box on the table'` (or task:=... at bringup)")
            min_free = int(get("min_free_mb"))
            if min_free > 0 and (free := free_mb(self.output_dir)) < min_free:
                return self._refused(f"only {free:.0f} MB free in {self.output_dir} (min_free_mb {min_free}): "
                                     "make room there, record elsewhere (output_dir:=...) or lower min_free_mb")
            meta = ep.EpisodeMetadata(
                cameras={c: ep.CameraIntrinsics.from_camera_info(self.camera_info[c]) for c in self.cameras},
                rate_hz=self.rate_hz, task=str(get("task")), seed=int(get("seed")),
                source=str(get("source")), calibration=self.calibration)
            self.recording, self.episode = True, "(starting)"
            self.notice = None
            self.task_success = ep.SUCCESS_UNKNOWN
            self.dropped.clear()
            self._slot0 = None
            future = self.writer.command("start", meta)
        future.add_done_callback(self._on_started)
        return self._outcome(future, lambda path: (True, f"recording {path}"))

    def _on_started(self, future: Future):
        with self._lock:
            if future.exception() is not None:
                self.recording, self.episode = False, ""
            else:
                self.episode = future.result().name.removesuffix(ep.SUFFIX + ep.PARTIAL_SUFFIX)

    def _end(self, kind: str, describe, warn: bool = False) -> Future:
        with self._lock:
            if not self.recording:
                return self._refused("not recording")
            self.recording = False
            dropped = sum(self.dropped.values())
            future = self.writer.command(kind, (dropped, self.task_success) if kind == "stop" else dropped)
        return self._outcome(future, describe, warn)

    def stop(self, reason: str = "") -> Future:
        """Finish the episode and save it as complete. `reason`: why the recorder stops it itself
        (a limit); it leads the one WARN log line and stays the WARN status until the next start."""
        def describe(r):
            ok, message = self._stop_message(r)
            message = f"{reason}: {message}" if reason else message
            if "write_error" in r or "error" in r:
                self.notice = (DiagnosticStatus.ERROR, message)
            elif reason:
                self.notice = (DiagnosticStatus.WARN, message)
            return ok, message
        return self._end("stop", describe, warn=bool(reason))

    def _stop_message(self, r: dict) -> tuple[bool, str]:
        if r.get("error"):
            if r.get("partial"):
                return False, (f"{r['error']}; its {r['frames']} whole frames stay readable in {r['partial']} "
                               f"(brs record show)")
            return False, r["error"]
        if r["path"] is None:
            return False, "the episode had no frames: nothing saved (are all streams publishing?)"
        self.saved += 1
        self.last_saved = str(r["path"])
        cut = f"cut short: {r['write_error']}; " if r.get("write_error") else ""
        # the path comes last: tools take the message's last word
        return True, (f"{cut}{r['frames']} frames, {r['duration']:.1f} s, {r['dropped']} dropped; "
                      f"saved {r['path']}")

    def discard(self) -> Future:
        """Finish the episode and delete its file."""
        return self._end("discard", lambda r: (True, f"discarded {r['path'].name} ({r['frames']} frames)"))

    # --- status and shutdown ---------------------------------------------------------------------
    def status_values(self) -> dict:
        w = self.writer
        invalid = w.invalid_total if self.recording else 0
        dropped = sum(self.dropped.values()) + invalid
        return {
            "recording": str(self.recording).lower(), "episode": self.episode if self.recording else "",
            "frames": w.frames, "duration_s": f"{w.duration:.2f}", "dropped_frames": dropped,
            "dropped_stale": self.dropped["stale"], "dropped_queue_full": self.dropped["queue_full"],
            "dropped_invalid": invalid, "queued": w.queued_frames, "saved_episodes": self.saved,
            "last_saved": self.last_saved, "output_dir": str(self.output_dir),
            "rate_hz": f"{self.rate_hz:g}", "cameras": ",".join(self.cameras),
            # cameras whose camera_info has not come yet: a start is refused until this is empty
            "cameras_waiting": ",".join(c for c in self.cameras if c not in self.camera_info),
            "free_mb": f"{free_mb(self.output_dir):.0f}",
            "max_duration_s": f"{self.get_parameter('max_duration').value:g}",
            "min_free_mb": self.get_parameter("min_free_mb").value,
        }

    def _update_status(self):
        v = self.status_values()
        if self.recording and self.writer.failure:
            level, message = DiagnosticStatus.ERROR, (f"{self.writer.failure}; `brs record stop` saves the "
                                                      f"{v['frames']} frames written so far")
        elif self.notice is not None and not self.recording:
            level, message = self.notice
        elif self.recording:
            level = DiagnosticStatus.WARN if v["dropped_frames"] else DiagnosticStatus.OK
            message = (f"recording {v['episode']}: {v['frames']} frames, {v['duration_s']} s, "
                       f"{v['dropped_frames']} dropped")
        else:
            level, message = DiagnosticStatus.OK, f"idle; {self.saved} episodes saved to {self.output_dir}"
        self.diag.set_status("recorder", level, message, v)

    def shutdown(self):
        """Save the current episode as complete and stop the writer (Ctrl-C, SIGTERM)."""
        if self.recording:
            print(self.stop().result(timeout=SHUTDOWN_TIMEOUT)[1], flush=True)
        self.writer.command("exit").result(timeout=SHUTDOWN_TIMEOUT)


def main(args=None) -> int:
    from brs_common.node_main import run_node

    return run_node(EpisodeRecorder, args, on_stop=lambda node: node.shutdown())


if __name__ == "__main__":
    raise SystemExit(main())
