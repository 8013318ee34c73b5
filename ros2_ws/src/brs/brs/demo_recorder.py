"""Records the sim demo: head camera video and a commanded-vs-measured joint tracking plot.

Node `demo_recorder`, parameters:
  output_dir (str, 'outputs'), max_duration (float sim seconds after the first message, 0 = until
  SIGINT/SIGTERM), fps (float, 10 = camera rate), camera (str, 'head').
Writes <output_dir>/demo_head_camera.mp4 (H.264, yuv420p, even size, fragmented MP4 written frame
by frame so even a killed recorder leaves a playable file) and <output_dir>/demo_joint_tracking.png,
then prints both paths. Progress (frames written, samples) and rejected frames go to /diagnostics.
"""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray

from brs_common import params, qos, topics
from brs_common.node_main import run_node
from brs_common import robot_spec as spec
from brs_common.convert import image_to_numpy
from brs_common.diagnostics import DiagnosticsReporter

VIDEO_NAME = "demo_{camera}_camera.mp4"
PLOT_NAME = "demo_joint_tracking.png"


def to_rgb(msg: Image) -> np.ndarray:
    """HxWx3 uint8 RGB from a colour or mono8 Image; ValueError otherwise."""
    img = image_to_numpy(msg)
    enc = msg.encoding
    if enc in ("rgb8", "8UC3"):
        return img
    if enc == "bgr8":
        return img[..., ::-1]
    if enc == "rgba8":
        return img[..., :3]
    if enc == "bgra8":
        return img[..., 2::-1]
    if enc in ("mono8", "8UC1"):
        return np.repeat(img[..., None], 3, axis=2)
    raise ValueError(f"cannot record encoding {enc!r} as video")


class VideoWriter:
    """Incremental H.264 writer (imageio-ffmpeg), opened on the first frame, fixed even size."""

    def __init__(self, path: Path, fps: float):
        self.path, self.fps = path, fps
        self.size: tuple[int, int] | None = None  # (h, w) after cropping to even
        self.frames = 0
        self._gen = None

    def write(self, rgb: np.ndarray) -> None:
        import imageio_ffmpeg

        h, w = (rgb.shape[0] // 2) * 2, (rgb.shape[1] // 2) * 2
        if self._gen is None:
            if h == 0 or w == 0:
                raise ValueError(f"frame too small: {rgb.shape}")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._gen = imageio_ffmpeg.write_frames(
                str(self.path), (w, h), fps=self.fps, codec="libx264", pix_fmt_out="yuv420p",
                macro_block_size=2, ffmpeg_log_level="error",
                output_params=["-g", str(max(1, round(self.fps))),
                               "-movflags", "frag_keyframe+empty_moov+default_base_moof"])
            self._gen.send(None)
            self.size = (h, w)
        elif (h, w) != self.size:
            raise ValueError(f"frame size {w}x{h} differs from the video's {self.size[1]}x{self.size[0]}")
        self._gen.send(np.ascontiguousarray(rgb[:h, :w]))
        self.frames += 1

    def close(self) -> int:
        if self._gen is not None:
            self._gen.close()
            self._gen = None
        return self.frames


def plot_tracking(path: Path, joint_t, joint_q, cmd: dict) -> None:
    """Commanded (dashed) vs measured (solid) positions of a few joints per position group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = spec.POSITION_GROUPS
    t_all = [t[0] for t in [joint_t] + [c[0] for c in cmd.values()] if len(t)]
    t0 = min(t_all) if t_all else 0.0
    fig, axes = plt.subplots(len(groups), 1, figsize=(12, 2.4 * len(groups)), sharex=True)
    for ax, group in zip(axes, groups):
        names = spec.GROUPS[group].joints
        picks = sorted({0, len(names) // 2, len(names) - 1})
        ct, cq = cmd.get(group, (np.empty(0), np.empty((0, len(names)))))
        for k, i in enumerate(picks):
            color = f"C{k}"
            j = spec.STATE_JOINTS.index(names[i])
            if len(joint_t):
                ax.plot(joint_t - t0, joint_q[:, j], color=color, lw=1.5, label=f"{names[i]} measured")
            if len(ct):
                ax.plot(ct - t0, cq[:, i], color=color, lw=1.2, ls="--", label=f"{names[i]} commanded")
        ax.set_title(group)
        ax.set_ylabel("m" if "gripper" in group else "rad")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    axes[-1].set_xlabel("time [s]")
    fig.suptitle("Joint tracking: commanded (dashed) vs measured (solid)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


class DemoRecorder(Node):
    def __init__(self):
        super().__init__("demo_recorder")
        p = params.declare(self, [
            ("output_dir", "outputs", "directory of the video and the tracking plot"),
            ("max_duration", 0.0, "s (node clock) after the first message to record; 0: until SIGINT/SIGTERM"),
            ("fps", spec.CAMERA_RATE_HZ, "frame rate of the video, Hz"),
            ("camera", "head", f"camera to record, of {', '.join(spec.CAMERAS)}"),
        ])
        self.output_dir = Path(p["output_dir"])
        self.max_duration = float(p["max_duration"])
        fps = float(p["fps"])
        camera = str(p["camera"])
        self.video = VideoWriter(self.output_dir / VIDEO_NAME.format(camera=camera), fps)
        self.plot_path = self.output_dir / PLOT_NAME
        self.diag = DiagnosticsReporter(self, hardware_id="demo_recorder")
        self.joint_t: list[float] = []
        self.joint_q: list[np.ndarray] = []
        self.cmd_t = {g: [] for g in spec.POSITION_GROUPS}
        self.cmd_q = {g: [] for g in spec.POSITION_GROUPS}
        self.start: float | None = None
        self.done = False
        self.create_subscription(Image, topics.camera_topic(camera, "color"), self._on_image, qos.SENSOR)
        self.create_subscription(JointState, topics.JOINT_STATES, self._on_joint_states, qos.STATE)
        for g in spec.POSITION_GROUPS:
            self.create_subscription(Float64MultiArray, topics.controller_command(g),
                                     lambda msg, g=g: self._on_command(g, msg), qos.COMMAND)
        self.create_timer(0.1, self._check_duration)
        self._report()

    def _now(self) -> float:
        t = self.get_clock().now().nanoseconds * 1e-9
        if self.start is None:
            self.start = t
        return t

    def _report(self):
        self.diag.set_status("recording", DiagnosticStatus.OK, "recording", {
            "frames_written": self.video.frames,
            "joint_state_samples": len(self.joint_t),
            "command_samples": sum(len(v) for v in self.cmd_t.values())})

    def _on_image(self, msg: Image):
        self._now()
        try:
            self.video.write(to_rgb(msg))
        except ValueError as exc:
            self.diag.reject("bad_frame", str(exc))
        self._report()

    def _on_joint_states(self, msg: JointState):
        t = self._now()  # receipt time, the same clock as the commands (header stamps may differ)
        pos = dict(zip(msg.name, msg.position))
        self.joint_t.append(t)
        self.joint_q.append(np.array([pos.get(n, np.nan) for n in spec.STATE_JOINTS], dtype=float))

    def _on_command(self, group: str, msg: Float64MultiArray):
        t = self._now()
        values = np.asarray(msg.data, dtype=float)
        if values.shape != (len(spec.GROUPS[group].joints),):
            self.diag.reject("bad_command", f"{group}: {values.size} values")
            return
        self.cmd_t[group].append(t)
        self.cmd_q[group].append(values)

    def _check_duration(self):
        self._report()
        if self.max_duration > 0 and self.start is not None and \
                self._now() - self.start >= self.max_duration:
            self.done = True

    def finish(self) -> list[Path]:
        """Close the video, draw the plot, print and return the written paths."""
        written = []
        frames = self.video.close()
        if frames:
            written.append(self.video.path)
            print(f"demo_recorder: wrote {self.video.path} ({frames} frames)", flush=True)
        else:
            print("demo_recorder: no camera frames received, no video written", flush=True)
        n = len(spec.STATE_JOINTS)
        cmd = {g: (np.asarray(self.cmd_t[g]), np.asarray(self.cmd_q[g]).reshape(-1, len(spec.GROUPS[g].joints)))
               for g in spec.POSITION_GROUPS}
        plot_tracking(self.plot_path, np.asarray(self.joint_t),
                      np.asarray(self.joint_q).reshape(-1, n), cmd)
        written.append(self.plot_path)
        print(f"demo_recorder: wrote {self.plot_path}", flush=True)
        return written



def main(args=None) -> int:
    def finish(node):
        # Finalise despite repeated Ctrl-C; a later SIGTERM/SIGKILL still leaves a playable
        # (fragmented) mp4.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        node.finish()

    return run_node(DemoRecorder, args, on_stop=finish, done=lambda node: node.done)

if __name__ == "__main__":
    raise SystemExit(main())
