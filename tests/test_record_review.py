"""`brs record show|video|plot`: reviewing one episode file without a running graph."""

from __future__ import annotations

import json

import imageio.v2 as imageio
import numpy as np
import pytest

from brs.cli import main
from brs_common import robot_spec as spec
from brs_teleop import episode as ep

W, H, N, RATE = 64, 48, 30, 10.0
LAG = 0.05  # rad: the left arm's joint1 trails its target by this much


@pytest.fixture(scope="module")
def episode(tmp_path_factory):
    """The base drives straight ahead at 0.2 m/s; every joint tracks its target exactly except
    left_arm_joint1, LAG behind; camera frames are a solid colour per frame."""
    folder = tmp_path_factory.mktemp("eps")
    K = (40.0, 0.0, (W - 1) / 2, 0.0, 40.0, (H - 1) / 2, 0.0, 0.0, 1.0)
    meta = ep.EpisodeMetadata(cameras={c: ep.CameraIntrinsics(K=K, width=W, height=H) for c in spec.CAMERAS},
                              rate_hz=RATE, task="put the box on the table", seed=3, source="keyboard")
    writer = ep.EpisodeWriter(folder / ep.episode_name(0), meta)
    state_of = {n: i for i, n in enumerate(spec.STATE_JOINTS)}
    for k in range(N):
        action = np.zeros(spec.ACTION_DIM)
        action[spec.group_slice("base")] = (0.2, 0.0, 0.0)
        action[spec.group_slice("left_arm")] = 0.01 * k
        q = np.zeros(len(spec.STATE_JOINTS))
        for name, value in zip(spec.ACTION_JOINTS, action):
            if name in state_of:
                q[state_of[name]] = value
        q[state_of["left_arm_joint1"]] -= LAG
        colour = np.full((H, W, 3), 8 * k, np.uint8)
        writer.add_frame(ep.Frame(time=50.0 + k / RATE, joint_position=q, joint_velocity=np.zeros_like(q),
                                  joint_effort=np.zeros_like(q), base_pose=(0.02 * k, 0.0, 0.0),
                                  base_velocity=(0.2, 0.0, 0.0), action=action,
                                  images={c: (colour, np.ones((H, W), np.float32)) for c in spec.CAMERAS}))
    return writer.close()


def test_show_summarises_what_happened(episode, capsys):
    assert main(["record", "show", str(episode), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["task"], info["source"], info["frames"], info["status"]) == \
        ("put the box on the table", "keyboard", N, "complete")
    assert info["duration_s"] == pytest.approx((N - 1) / RATE)
    assert info["base_distance_m"] == pytest.approx(0.02 * (N - 1), abs=1e-6)
    assert info["max_tracking_error_left_arm"] == pytest.approx(LAG, abs=1e-6)
    assert info["max_tracking_error_base"] == pytest.approx(0.0, abs=1e-6)
    assert info["max_tracking_error_right_arm"] == pytest.approx(0.0, abs=1e-6)
    assert info["cameras"].count(f"{W}x{H}") == len(spec.CAMERAS)
    assert main(["record", "show", str(episode)]) == 0
    assert "put the box on the table" in capsys.readouterr().out


def test_video_has_every_frame_and_all_cameras(episode, tmp_path, capsys):
    out = tmp_path / "review" / "ep.mp4"
    assert main(["record", "video", str(episode), "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    with imageio.get_reader(str(out), "ffmpeg") as reader:
        frames = [frame for frame in reader.iter_data()]
    assert len(frames) == N and frames[0].shape == (H, W * len(spec.CAMERAS), 3)
    # the solid colour of frame k is 8k (lossy codec: within a few levels)
    assert [int(round(f.mean())) for f in frames[:4]] == pytest.approx([0, 8, 16, 24], abs=3)


def test_plot_writes_a_png_next_to_the_episode(episode, capsys):
    assert main(["record", "plot", str(episode)]) == 0
    png = episode.with_name(episode.name.split(".")[0] + ".png")
    assert capsys.readouterr().out.strip() == str(png)
    image = imageio.imread(png)
    assert image.shape[0] > 500 and image.shape[1] > 500 and image.std() > 10  # drawn, not blank
    png.unlink()


def test_bad_input_is_one_line_and_exit_2(episode, tmp_path, capsys):
    cases = [(["record", "show", str(tmp_path / "nope.h5")], "no such episode file"),
             (["record", "plot", str(episode), "-o", str(tmp_path / "x.jpg")], "must end in .png"),
             (["record", "video", str(tmp_path / "nope.h5")], "no such episode file")]
    not_hdf5 = tmp_path / "junk.h5"
    not_hdf5.write_text("not an episode")
    cases.append((["record", "show", str(not_hdf5)], "not a readable HDF5 file"))
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.h5"]  # nothing written
