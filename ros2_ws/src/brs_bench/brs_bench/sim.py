"""Sim real-time factor benchmarks (registered in brs_bench).

sim_rtf_cameras: the sim node's full tick (physics, /clock, /joint_states, /odom, 3 RGB-D cameras
at 10 Hz with image messages) as fast as possible. Baseline: the same loop rendering with stock
mujoco.Renderer (one pass for colour, one for depth).
sim_rtf_no_cameras: the same node with cameras off. Baseline: bare physics (SimCore.step, no ROS),
so the ratio is the share of physics speed the node keeps after publishing.
"""

from __future__ import annotations

TITLE = "sim real-time factor with and without cameras"  # make bench's heading of this module

import statistics
import time

import mujoco
import rclpy
from rclpy.context import Context
from rclpy.parameter import Parameter

from brs_common import domains
from brs_common import robot_spec as spec

from brs_sim.sim_core import SimCore

SIM_SECONDS = 4.0


class TwoPassRenderer:
    """Baseline camera rendering: mujoco.Renderer, one render for colour and one for depth."""

    def __init__(self, model):
        self.model = model
        cam = next(iter(spec.CAMERAS.values()))
        self.renderer = mujoco.Renderer(model, cam.height, cam.width)

    def render(self, data, camera):
        frame = spec.CAMERAS[camera].frame
        self.renderer.disable_depth_rendering()
        self.renderer.update_scene(data, frame)
        rgb = self.renderer.render()
        self.renderer.enable_depth_rendering()
        self.renderer.update_scene(data, frame)
        return rgb, self.renderer.render()

    def close(self):
        self.renderer.close()


def _node_rtf(cameras: bool, baseline_renderer: bool = False) -> float:
    from brs_sim.sim_node import SimNode

    context = Context()
    domain = domains.claim(domains.JOBS)
    rclpy.init(context=context, domain_id=domain)
    node = SimNode(context=context, parameter_overrides=[
        Parameter("speed_factor", value=0.0), Parameter("cameras_enabled", value=cameras)])
    try:
        if baseline_renderer:
            node.renderer.close()
            node.renderer = TwoPassRenderer(node.sim.model)
        for _ in range(20):  # warm-up
            node.tick()
        ticks = int(SIM_SECONDS / node.sim.control_period)
        t0 = time.perf_counter()
        for _ in range(ticks):
            node.tick()
        return ticks * node.sim.control_period / (time.perf_counter() - t0)
    finally:
        node.close()
        node.destroy_node()
        rclpy.shutdown(context=context)
        domains.release(domain)


def _physics_rtf() -> float:
    sim = SimCore()
    ticks = int(SIM_SECONDS / sim.control_period)
    t0 = time.perf_counter()
    for _ in range(ticks):
        sim.step()
    return ticks * sim.control_period / (time.perf_counter() - t0)


def run(repeats: int = 3):
    from brs_bench.result import Result

    def median(fn, *args):
        return statistics.median(fn(*args) for _ in range(repeats))

    cams = median(_node_rtf, True)
    cams_base = median(_node_rtf, True, True)
    no_cams = median(_node_rtf, False)
    physics = median(_physics_rtf)
    note = f"{SIM_SECONDS:.0f} sim-s per repeat, median of {repeats}, 1 process"
    return [
        Result("sim_rtf_cameras", cams, "x real time", cams_base, "stock mujoco.Renderer, 2 passes",
               ">= 2", note=f"3 RGB-D cameras 320x240 at 10 Hz; {note}"),
        Result("sim_rtf_no_cameras", no_cams, "x real time", physics, "bare physics, no ROS",
               ">= 20", note=note),
    ]
