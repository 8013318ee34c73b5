"""SimCore physics and the one-pass RGB-D renderer, without ROS."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from brs_common import robot_spec as spec
from brs_sim.camera_renderer import RgbdRenderer
from brs_sim.sim_core import SimCore


def test_reset_is_seeded():
    a, b, c = SimCore(seed=3), SimCore(seed=3), SimCore(seed=4)
    assert np.array_equal(a.data.qpos, b.data.qpos)
    assert not np.array_equal(a.data.qpos, c.data.qpos)
    moved = np.abs(a.data.qpos - c.data.qpos)
    assert moved.max() <= 2 * a.object_jitter + 1e-12
    a.set_position_targets(["left_arm_joint1"], [0.5])
    for _ in range(50):
        a.step()
    t = a.time
    a.reset(4)
    assert np.array_equal(a.data.qpos, c.data.qpos)
    assert a.time == t > 0  # sim time is monotonic across resets (/clock never jumps back)


def test_sim_time_is_an_exact_count_of_control_periods():
    """A use_sim_time timer is due at exact multiples of its period: the stamps must be those
    multiples. MuJoCo's float time summed 2 ms at a time drifts off them (1 ns short at 605.74 s,
    where lock-stepped training hung); the sim counts periods instead, through resets too."""
    sim = SimCore()
    assert sim.period_ns == 10_000_000 and sim.time_ns == 0
    for _ in range(7):
        sim.step()
    sim.reset(seed=3)  # time keeps running
    sim.step()
    assert sim.time_ns == 8 * sim.period_ns and sim.data.time == sim.time == pytest.approx(0.08, abs=1e-15)
    sim.periods = 60_573  # where the float sum had drifted
    sim.step()
    assert sim.time_ns == 605_740_000_000 and round(sim.time * 1e9) == sim.time_ns
    # what MuJoCo's own sum gives over the same span: off the exact multiple somewhere
    t, off = 0.0, 0
    for n in range(1, 302_871):
        t += 0.002
        off += n % 5 == 0 and round(t * 1e9) != n * 2_000_000
    assert off > 0


def test_base_command_is_in_the_base_frame():
    sim = SimCore()
    sim.set_base_velocity(0.0, 0.0, 0.5)  # turn to ~90 degrees, then drive "forward"
    while sim.base_pose()[2] < np.pi / 2:
        sim.step()
    sim.set_base_velocity(0.3, 0.0, 0.0)
    for _ in range(50):
        sim.step()
    start = sim.base_pose()
    for _ in range(100):
        sim.step()
    x, y, _ = sim.base_pose() - start
    assert y == pytest.approx(0.3, abs=0.02) and abs(x) < 0.03  # forward is now world +y
    assert sim.base_twist()[0] == pytest.approx(0.3, abs=0.01)


@pytest.fixture(scope="module")
def rendered():
    sim = SimCore()
    ours = RgbdRenderer(sim.model)
    cam = spec.CAMERAS["head"]
    stock = mujoco.Renderer(sim.model, cam.height, cam.width)
    try:
        yield sim, ours, stock
    finally:
        ours.close()
        stock.close()


@pytest.mark.parametrize("camera", list(spec.CAMERAS))
def test_one_pass_rgbd_matches_stock_renderer(rendered, camera):
    sim, ours, stock = rendered
    rgb, depth = ours.render(sim.data, camera)
    stock.update_scene(sim.data, spec.CAMERAS[camera].frame)
    stock.disable_depth_rendering()
    ref_rgb = stock.render()
    stock.enable_depth_rendering()
    ref_depth = stock.render()
    assert rgb.shape == ref_rgb.shape and depth.shape == ref_depth.shape
    assert np.mean(np.abs(rgb.astype(int) - ref_rgb.astype(int))) < 1.0
    valid = np.isfinite(depth)
    assert valid.mean() > 0.5
    assert np.max(np.abs(depth[valid] - ref_depth[valid])) < 1e-3
    far = ref_depth > spec.CAMERAS[camera].far
    assert not valid[far].any()  # beyond the sensor range is NaN, never a number
