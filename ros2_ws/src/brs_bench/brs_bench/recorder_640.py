"""Episode recorder at 640x480 (registered in brs_bench): dropped frames and throughput with three
640x480 RGB-D cameras at 15 Hz, the rows next to brs_bench.recorder's 320x240 / 10 Hz ones.

The sim node renders the spec's 320x240 cameras only (robot_spec.CAMERAS; no size parameter), so
a camera player in this module stands in for the cameras: it renders real sim frames of the
bimanual_box scene at 640x480 with the sim's own RgbdRenderer (same cameras, same field of view:
not upsampled), 8 waist poses played in a loop, and publishes them as the sim does (colour rgb8,
depth 32FC1 metres, camera_info with the matching intrinsics) on the three cameras' topics at
15 Hz of sim time, stamped with /clock. The sim node runs with its cameras off (its /clock,
/joint_states, /odom) with the whole-body controller (the recorded action) and the real
episode_recorder node at rate_hz 15, parameters otherwise from the `mode:=record` graph.

recorder_640_dropped_frames_pct: frames the recorder dropped (stale stream, late timer, full
queue, invalid) over all 640x480 episodes; baseline: the same over the 320x240 episodes of the
same run (the player switched to the sim's own size, the recorder still at 15 Hz).
recorder_640_frames_per_s: frames written per second of sim time, median over the episodes; the
same baseline. Episodes alternate sizes (640 first, then 320 first, ...), ~10 sim-s each.
"""

from __future__ import annotations

TITLE = "episode recorder at 640x480: frames/s and dropped frames, 3 RGB-D cameras at 15 Hz"  # make bench's heading of this module

import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from .procs import check_alive, spawn, stop_graph, use_domain

RECORD_SECONDS = 10.0  # sim seconds of frame slots per episode
RATE_HZ = 15.0  # camera and recorder rate, Hz of sim time
SIZE = (640, 480)  # measured
BASELINE_SIZE = (320, 240)  # the sim's (robot_spec.CAMERAS)
POSES = 8  # distinct rendered frames per camera the player loops through
PLAYER_NODE = "bench_camera_player"
GRAPH_NODES = ("sim", "whole_body_controller", "episode_recorder")


# ---- the camera player (a process of its own: `python -m brs_bench.recorder_640 player`) --------

def sized_cameras(width: int, height: int) -> dict:
    """The spec cameras at another resolution (same field of view, near and far)."""
    from dataclasses import replace

    from brs_common import robot_spec as spec

    return {name: replace(cam, width=width, height=height) for name, cam in spec.CAMERAS.items()}


def render_poses(sizes, poses: int = POSES, task: str = "bimanual_box") -> dict:
    """{(w, h): [{camera: (rgb uint8 (h, w, 3), depth float32 metres (h, w))} per pose]}: sim frames of
    `task`'s start scene with the waist yawed to `poses` angles, every size rendered from the same states."""
    import math

    from brs_sim import camera_renderer
    from brs_sim.sim_core import SimCore
    from brs_sim.tasks import get_task

    sim = SimCore("scene")
    get_task(task).reset(sim, 0)
    renderers = {size: camera_renderer.RgbdRenderer(sim.model, tuple(sized_cameras(*size).values()))
                 for size in sizes}
    frames = {size: [] for size in sizes}
    spec_cameras = camera_renderer.CAMERAS
    try:
        for i in range(poses):
            sim.set_position_targets(["torso_joint4"], [0.3 * math.sin(2 * math.pi * i / poses)])
            for _ in range(30):  # 0.3 s of physics towards the target
                sim.step()
            for size, renderer in renderers.items():
                # RgbdRenderer.render sizes its viewport from the module's camera table
                camera_renderer.CAMERAS = sized_cameras(*size)
                try:
                    frames[size].append({name: renderer.render(sim.data, name) for name in spec_cameras})
                finally:
                    camera_renderer.CAMERAS = spec_cameras
    finally:
        for renderer in renderers.values():
            renderer.close()
    return frames


def _player_main(argv: list[str]) -> int:
    """Publish rendered frames on the cameras' topics at RATE_HZ of sim time; parameter `width`
    (640 or 320, read at every frame) picks the size."""
    from rclpy.node import Node
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import CameraInfo, Image

    from brs_common import qos, topics
    from brs_common.convert import make_camera_info, numpy_to_image, stamp_to_sec
    from brs_common.node_main import run_node

    rate = float(argv[0]) if argv else RATE_HZ
    frames = render_poses((SIZE, BASELINE_SIZE))
    messages = {}  # width -> [[(stream, msg), ...] per pose]; built once, only stamps change
    for (w, h), poses in frames.items():
        cams = sized_cameras(w, h)
        messages[w] = [[(name, s, m) for name, (rgb, depth) in pose.items()
                        for s, m in (("color", numpy_to_image(rgb, "rgb8", cams[name].optical_frame)),
                                     ("depth", numpy_to_image(depth, "32FC1", cams[name].optical_frame)),
                                     ("color_info", make_camera_info(cams[name])),
                                     ("depth_info", make_camera_info(cams[name])))]
                       for pose in poses]

    class Player(Node):
        def __init__(self):
            super().__init__(PLAYER_NODE)
            self.declare_parameter("width", SIZE[0])
            self.pubs = {(name, s): self.create_publisher(Image if s in ("color", "depth") else CameraInfo,
                                                          topics.camera_topic(name, s), qos.SENSOR)
                         for name in sized_cameras(*SIZE) for s in ("color", "depth", "color_info", "depth_info")}
            self.next_t, self.count = None, 0
            self.create_subscription(Clock, topics.CLOCK, self._on_clock, qos.CLOCK)

        def _on_clock(self, msg: Clock):
            t = stamp_to_sec(msg.clock)
            if self.next_t is not None and t < self.next_t:
                return
            if self.next_t is None or t - self.next_t > 1.0 / rate:  # first, or a stall: no burst
                self.next_t = t
            self.next_t += 1.0 / rate
            width = int(self.get_parameter("width").value)
            pose = messages.get(width, messages[SIZE[0]])
            for name, s, m in pose[self.count % len(pose)]:
                m.header.stamp = msg.clock
                self.pubs[name, s].publish(m)
            self.count += 1

    return run_node(Player)


# ---- the benchmark ------------------------------------------------------------------------------

def _record_once(client, seconds: float, width: int, recorder, check) -> dict:
    from std_srvs.srv import Trigger

    from brs_common import topics
    from brs_teleop import episode as ep

    status = f"{topics.RECORDER_NODE}: recorder"
    deadline = time.monotonic() + 120
    while not client.call(Trigger, topics.RECORDER_START, timeout=30).success:  # camera_info first
        check()
        if time.monotonic() > deadline:
            raise RuntimeError("the recorder never started (no camera_info?)")
        time.sleep(0.5)
    wall0, cpu0 = time.monotonic(), sum(recorder.cpu_times()[:2])
    slots = round(seconds * RATE_HZ)  # frames taken, written or not: a writer that lags does not stretch it

    def taken(v):
        return int(v.get("frames", 0)) + int(v.get("queued", 0)) + int(v.get("dropped_frames", 0)) >= slots
    values = client.wait_status(status, taken, seconds * 8 + 30, f"{seconds:g} s of recording")
    response = client.call(Trigger, topics.RECORDER_STOP, timeout=120)  # drains the writer's queue
    wall = time.monotonic() - wall0
    cpu = sum(recorder.cpu_times()[:2]) - cpu0  # s: receiving every stream, writing the frames
    if not response.success:
        raise RuntimeError(f"the recorder did not save: {response.message}")
    path = Path(response.message.rsplit(" ", 1)[-1])
    with ep.read_episode(path) as e:
        t0, t1, rate = float(e.time[0]), float(e.time[-1]), float(e.metadata["rate_hz"])
        n, dropped = e.n_frames, int(e.metadata["dropped_frames"])
        sizes = {(c.width, c.height) for c in e.cameras.values()}
    if sizes != {(width, width * 3 // 4)}:
        raise RuntimeError(f"episode {path.name} has cameras of {sizes}, expected width {width}")
    size_mb = path.stat().st_size / 1e6
    path.unlink()  # 640x480 episodes are large; the numbers are all that is kept
    span = t1 - t0 + 1.0 / rate
    return {"fps": n / span, "frames": n, "dropped": dropped, "wall_fps": n / wall, "cpu": 100 * cpu / wall,
            "cpu_per_frame": cpu / n,
            "mb_per_frame": size_mb / n, "stale": int(values.get("dropped_stale", 0)),
            "queue_full": int(values.get("dropped_queue_full", 0))}


def run(repeats: int = 3):
    import psutil
    from sensor_msgs.msg import CameraInfo

    from brs_bringup import graph
    from brs_bringup.graph_client import GraphClient
    from brs_bringup.runner import command_line
    from brs_bench.result import Result
    from brs_common import domains, qos, topics
    from brs_common.convert import stamp_to_sec

    domain = domains.claim(domains.JOBS)  # a private graph: no other one on this domain
    saved_domain = use_domain(domain)
    bin_dir = Path(sys.executable).parent
    procs, client = {}, None
    runs = {SIZE[0]: [], BASELINE_SIZE[0]: []}
    load = [os.getloadavg()[0]]
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench_recorder_640_") as tmp:
        try:
            nodes = [n for n in graph.describe(True, "record", output_dir=tmp, speed_factor=1.0, task="bimanual_box",
                                               **{"episode_recorder.rate_hz": RATE_HZ, "sim.cameras_enabled": False})
                     if n.name in GRAPH_NODES]
            procs = {n.name: spawn(command_line(n, str(bin_dir / n.executable)), Path(tmp) / f"{n.name}.log")
                     for n in nodes}
            procs["player"] = spawn([sys.executable, "-m", "brs_bench.recorder_640", "player", str(RATE_HZ)],
                                     Path(tmp) / "player.log")
            client = GraphClient("bench_recorder_640")
            infos: list[tuple[float, int]] = []  # (sim stamp, width) of head camera_info
            lock = threading.Lock()

            def on_info(msg):
                with lock:
                    infos.append((stamp_to_sec(msg.header.stamp), int(msg.width)))
            client.node.create_subscription(CameraInfo, topics.camera_topic("head", "color_info"), on_info, qos.SENSOR)
            recorder = psutil.Process(procs["episode_recorder"].pid)
            check = lambda: check_alive(procs, Path(tmp))  # noqa: E731

            def switch(width: int) -> None:
                """The player at `width`, its images of that size arriving for 1 sim-s."""
                client.set_parameters(f"/{PLAYER_NODE}", {"width": width}, timeout=60)
                deadline, n = time.monotonic() + 120, int(RATE_HZ) + 1
                while True:
                    with lock:
                        last = infos[-n:]
                    if (len(last) == n and all(w == width for _, w in last)
                            and last[-1][0] - last[0][0] >= 0.9):
                        return
                    check()
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"no {width}-wide camera_info from the player after 120 s")
                    time.sleep(0.1)

            for i in range(repeats):
                order = (SIZE[0], BASELINE_SIZE[0]) if i % 2 == 0 else (BASELINE_SIZE[0], SIZE[0])
                for width in order:
                    switch(width)
                    runs[width].append(_record_once(client, RECORD_SECONDS, width, recorder, check))
            with lock:
                stamps = [t for t, _ in infos]
            load.append(os.getloadavg()[0])
        finally:
            if client is not None:
                client.close()
            stop_graph(reversed(procs.values()), saved_domain)
            domains.release(domain)
    camera_hz = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0

    def pct(rs):
        frames, dropped = sum(r["frames"] for r in rs), sum(r["dropped"] for r in rs)
        return 100.0 * dropped / max(1, frames + dropped), dropped, frames + dropped

    def med(rs, key):
        return statistics.median(r[key] for r in rs)

    big, small = runs[SIZE[0]], runs[BASELINE_SIZE[0]]
    (value, dropped, total), (base, b_dropped, b_total) = pct(big), pct(small)
    size, base_size = "x".join(map(str, SIZE)), "x".join(map(str, BASELINE_SIZE))
    common = (f"{repeats} x {RECORD_SECONDS:g} sim-s episodes per size, sizes alternating, sim speed 1; 3 RGB-D "
              f"cameras played at {RATE_HZ:g} Hz sim time ({camera_hz:.1f} Hz seen) from sim renders at each size "
              f"by the bench's player (the sim node renders {base_size} only); recorder rate_hz {RATE_HZ:g}, "
              f"mm16 depth, gzip 4; load average {load[0]:.1f} -> {load[-1]:.1f} (1 min) on {os.cpu_count()} cores "
              f"(shared); {time.monotonic() - t_start:.0f} s")
    baseline_name = f"the same recorder, cameras at {base_size} (the sim's size)"
    return [
        Result("recorder_640_frames_per_s", med(big, "fps"), "frames/s", med(small, "fps"), baseline_name,
               f">= {0.95 * RATE_HZ:g}",
               note=f"{size}: wall rate {med(big, 'wall_fps'):.2f} frames/s, recorder process CPU "
                    f"{med(big, 'cpu'):.0f}% of a core ({base_size}: {med(small, 'cpu'):.0f}%), "
                    f"{1e3 * med(big, 'cpu_per_frame'):.0f} ms CPU per written frame, i.e. "
                    f"{100 * RATE_HZ * med(big, 'cpu_per_frame'):.0f}% of a core at {RATE_HZ:g} Hz "
                    f"({base_size}: {1e3 * med(small, 'cpu_per_frame'):.0f} ms, "
                    f"{100 * RATE_HZ * med(small, 'cpu_per_frame'):.0f}%), "
                    f"{med(big, 'mb_per_frame'):.2f} MB/frame ({base_size}: {med(small, 'mb_per_frame'):.3f}); "
                    + common),
        Result("recorder_640_dropped_frames_pct", value, "%", base, baseline_name, "<= 1", higher_is_better=False,
               note=f"{size}: {dropped} of {total} frames dropped ({sum(r['stale'] for r in big)} stale, "
                    f"{sum(r['queue_full'] for r in big)} queue full); {base_size}: {b_dropped} of {b_total}; "
                    + common),
    ]


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "player":
        raise SystemExit(_player_main(sys.argv[2:]))
    for result in run(int(sys.argv[1]) if len(sys.argv) > 1 else 1):
        print(f"{result.name}: {result.value:.3g} {result.unit} (baseline {result.baseline:.3g}, "
              f"{result.ratio:.2f}x, target {result.target}) - {result.note}")
