"""`brs view EPISODE --save FILE.rrd`: the recording read back with Rerun's own RRD reader."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from brs_common import robot_spec as spec
from brs_teleop import episode as ep
from rosutil import BIN

rerun_chunk = pytest.importorskip("rerun.chunk")

W, H, N = 64, 48, 12


@pytest.fixture(scope="module")
def episode(tmp_path_factory):
    """A wall 1.5 m in front of every camera; left_arm_joint1 ramps, its target 0.1 ahead."""
    folder = tmp_path_factory.mktemp("view")
    K = (40.0, 0.0, (W - 1) / 2, 0.0, 40.0, (H - 1) / 2, 0.0, 0.0, 1.0)
    meta = ep.EpisodeMetadata(cameras={c: ep.CameraIntrinsics(K=K, width=W, height=H) for c in spec.CAMERAS},
                              rate_hz=10.0, task="lift the box", seed=1, source="teleop")
    writer = ep.EpisodeWriter(folder / ep.episode_name(0), meta)
    n = len(spec.STATE_JOINTS)
    j1 = spec.STATE_JOINTS.index("left_arm_joint1")
    a1 = spec.ACTION_JOINTS.index("left_arm_joint1")
    for k in range(N):
        q = np.zeros(n)
        q[j1] = 0.05 * k
        action = np.zeros(spec.ACTION_DIM)
        action[a1] = 0.05 * k + 0.1
        colour = np.full((H, W, 3), (200, 40, 10), np.uint8)
        writer.add_frame(ep.Frame(time=3.0 + 0.1 * k, joint_position=q, joint_velocity=np.zeros(n),
                                  joint_effort=np.zeros(n), base_pose=(0.1 * k, 0.0, 0.0),
                                  base_velocity=(1.0, 0.0, 0.0), action=action,
                                  images={c: (colour, np.full((H, W), 1.5, np.float32)) for c in spec.CAMERAS}))
    return writer.close()


def _chunks(path):
    out = {}
    for chunk in rerun_chunk.RrdReader(path).stream():
        out.setdefault(chunk.entity_path, []).append(chunk.to_record_batch())
    return out


def test_view_saves_a_recording_rerun_reads_back(episode, tmp_path):
    rrd = tmp_path / "ep.rrd"
    run = subprocess.run([str(BIN / "brs"), "view", str(episode), "--save", str(rrd), "--cloud-points", "256"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    chunks = _chunks(rrd)
    for entity in ("/cameras/head/rgb", "/cameras/head/depth", "/cameras/head", "/cloud", "/episode",
                   "/joints/left_arm_joint1/measured", "/joints/left_arm_joint1/target",
                   "/base/velocity/vx/commanded"):
        assert entity in chunks, sorted(chunks)

    def column(entity, component):
        values = []
        for batch in chunks[entity]:
            values += [row for row in batch.column(component).to_pylist() if row is not None]
        return values

    measured = np.array(column("/joints/left_arm_joint1/measured", "Scalars:scalars")).ravel()
    target = np.array(column("/joints/left_arm_joint1/target", "Scalars:scalars")).ravel()
    np.testing.assert_allclose(measured, 0.05 * np.arange(N), atol=1e-6)
    np.testing.assert_allclose(target - measured, 0.1, atol=1e-6)
    assert len(column("/cameras/head/rgb", "Image:buffer")) == N  # one image per frame
    clouds = column("/cloud", "Points3D:positions")
    assert len(clouds) == N and all(len(c) == 256 for c in clouds)
    assert "lift the box" in str(column("/episode", "TextLog:text"))


def test_view_bad_input_is_one_line_exit_2(tmp_path):
    for args, message in (([str(tmp_path / "nope.h5")], "no such file"),
                          ([str(tmp_path / "nope.h5"), "--save", str(tmp_path / "x.txt")], "--save must end in .rrd")):
        run = subprocess.run([str(BIN / "brs"), "view", *args], capture_output=True, text=True, timeout=120)
        assert run.returncode == 2 and message in run.stderr and len(run.stderr.strip().splitlines()) == 1, run
