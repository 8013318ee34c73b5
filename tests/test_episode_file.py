"""Episode files (brs_teleop.episode): round trip, validation errors, discard, listing, crash leftovers."""

from __future__ import annotations

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

from brs_common import robot_spec as spec
from brs_teleop import episode as ep

W, H = 320, 240
K = (200.0, 0.0, 159.5, 0.0, 200.0, 119.5, 0.0, 0.0, 1.0)


def metadata(**kw) -> ep.EpisodeMetadata:
    cams = {name: ep.CameraIntrinsics(K=K, width=W, height=H, D=(0.0,) * 5,
                                      frame_id=spec.CAMERAS[name].optical_frame)
            for name in spec.CAMERAS}
    return ep.EpisodeMetadata(cameras=cams, rate_hz=10.0, task="trash_to_spot", seed=7,
                              source="teleop", calibration={"left_arm": {"offsets": [0.1]}}, **kw)


def make_frame(i: int, rng) -> ep.Frame:
    images = {name: (rng.integers(0, 256, (H, W, 3), dtype=np.uint8),
                     rng.uniform(0.1, 5.0, (H, W)).astype(np.float32))
              for name in spec.CAMERAS}
    n = len(spec.STATE_JOINTS)
    return ep.Frame(time=100.0 + 0.1 * i, joint_position=rng.normal(size=n),
                    joint_velocity=rng.normal(size=n), joint_effort=rng.normal(size=n),
                    base_pose=rng.normal(size=3), base_velocity=rng.normal(size=3),
                    action=rng.normal(size=spec.ACTION_DIM), images=images)


def write(folder, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    frames = [make_frame(i, rng) for i in range(n)]
    writer = ep.EpisodeWriter(folder, metadata())
    for f in frames:
        writer.add_frame(f)
    writer.dropped_frames = 2
    return writer.close(success=1), frames


def test_round_trip(tmp_path):
    path, frames = write(tmp_path, 6)
    assert path == tmp_path / "episode_000000.h5" and path.is_file()
    assert not list(tmp_path.glob("*.partial"))
    meta = ep.validate_episode(path, spec_hash=spec.spec_hash())
    assert meta["n_frames"] == 6 and meta["dropped_frames"] == 2 and meta["success"] == 1
    assert meta["status"] == "complete" and meta["schema_version"] == 2
    assert meta["cameras"] == list(spec.CAMERAS)
    assert meta["action_joints"] == list(spec.ACTION_JOINTS)
    assert json.loads(meta["calibration"]) == {"left_arm": {"offsets": [0.1]}}
    with ep.read_episode(path) as e:
        assert e.complete and e.n_frames == 6 and e.duration == pytest.approx(0.5)
        np.testing.assert_array_equal(e.time, [f.time for f in frames])
        for name in ep.VECTOR_DATASETS:
            attr = name.rpartition("/")[2]
            want = np.array([getattr(f, attr) for f in frames], dtype=np.float32)
            np.testing.assert_array_equal(getattr(e, attr), want)
        for name, cam in e.cameras.items():
            assert cam.K.tolist() == np.reshape(K, (3, 3)).tolist()
            assert (cam.width, cam.height) == (W, H)
            assert cam.frame_id == spec.CAMERAS[name].optical_frame
            for i, f in enumerate(frames):
                np.testing.assert_array_equal(cam.color[i], f.images[name][0])
                np.testing.assert_array_equal(cam.depth[i], f.images[name][1])
        back = e.frame(-1)
        np.testing.assert_array_equal(back.images["head"][1], frames[-1].images["head"][1])
    # chunked per frame along time, compressed images
    with h5py.File(path) as f:
        assert f["cameras/head/color"].chunks == (1, H, W, 3)
        assert f["cameras/head/color"].compression is not None
        assert f["action"].maxshape[0] is None


def test_next_index_and_listing(tmp_path):
    first, _ = write(tmp_path, 2)
    second, _ = write(tmp_path, 2)
    writer = ep.EpisodeWriter(tmp_path, metadata())
    writer.add_frame(make_frame(0, np.random.default_rng(1)))
    complete, incomplete = ep.list_episodes(tmp_path)
    assert complete == [first, second]
    assert incomplete == [tmp_path / "episode_000002.h5.partial"] == [writer.path]
    rows = ep.summarize(complete + incomplete)
    assert [r["status"] for r in rows] == ["complete", "complete", "incomplete"]
    assert rows[2]["n_frames"] == 1 and rows[0]["task"] == "trash_to_spot"
    writer.discard()
    assert not writer.path.exists()
    assert ep.list_episodes(tmp_path) == ([first, second], [])


def test_discard_deletes(tmp_path):
    writer = ep.EpisodeWriter(tmp_path / "episode_000004", metadata())
    assert writer.path == tmp_path / "episode_000004.h5.partial" and writer.path.exists()
    writer.add_frame(make_frame(0, np.random.default_rng(0)))
    writer.discard()
    assert list(tmp_path.iterdir()) == []


def test_bad_frames_are_refused_and_lose_nothing(tmp_path):
    rng = np.random.default_rng(0)
    writer = ep.EpisodeWriter(tmp_path, metadata())
    writer.add_frame(make_frame(0, rng))
    bad = make_frame(1, rng)
    bad.action[3] = np.nan
    with pytest.raises(ValueError, match="action: NaN"):
        writer.add_frame(bad)
    short = make_frame(1, rng)
    short.images["head"] = (short.images["head"][0][:100], short.images["head"][1])
    with pytest.raises(ValueError, match="head color"):
        writer.add_frame(short)
    with pytest.raises(ValueError, match="not after"):
        writer.add_frame(make_frame(0, rng))
    writer.add_frame(make_frame(1, rng))
    assert ep.validate_episode(writer.close())["n_frames"] == 2


def test_unmeasured_velocity_and_effort_may_be_nan(tmp_path):
    """A driver without velocity/effort sensing (NaN, as JointState allows) loses no frames; a
    NaN position still is refused."""
    rng = np.random.default_rng(1)
    writer = ep.EpisodeWriter(tmp_path, metadata())
    frame = make_frame(0, rng)
    frame.joint_velocity[:] = np.nan
    frame.joint_effort[4] = np.nan
    writer.add_frame(frame)
    bad = make_frame(1, rng)
    bad.joint_position[0] = np.nan
    with pytest.raises(ValueError, match="joint_position: NaN"):
        writer.add_frame(bad)
    path = writer.close()
    assert ep.validate_episode(path)["n_frames"] == 1
    with ep.read_episode(path) as episode:
        assert np.isnan(episode.joint_velocity).all() and np.isnan(episode.joint_effort[0, 4])


def test_depth_in_millimetres_is_smaller_and_reads_back_in_metres(tmp_path):
    """mm16: uint16 millimetres on disk (0 = no depth), float32 metres (NaN = none) to readers,
    within 0.5 mm; on smooth depth it is several times smaller than float32 metres."""
    yy, xx = np.mgrid[0:H, 0:W]
    smooth = (1.0 + 0.002 * xx + 0.001 * yy).astype(np.float32)  # a tilted plane, like a floor
    rng = np.random.default_rng(3)
    frames = []
    for i in range(4):
        f = make_frame(i, rng)
        # rendered / measured depth is noisy in its low bits, which float32 keeps and mm16 drops
        noisy = (smooth + 0.01 * i + rng.normal(0, 1e-4, (H, W))).astype(np.float32)
        noisy[:10, :10] = np.nan  # no return
        noisy[10:20, :10] = 0.0  # no return, as 16UC1 drivers send it
        noisy[20, 0] = np.inf
        f.images = {n: (np.zeros((H, W, 3), np.uint8), noisy) for n in spec.CAMERAS}
        frames.append(f)
    sizes = {}
    for encoding in ("float32", "mm16"):
        writer = ep.EpisodeWriter(tmp_path / encoding, metadata(), depth_encoding=encoding, compression_level=4)
        for f in frames:
            writer.add_frame(f)
        path = writer.close()
        sizes[encoding] = path.stat().st_size
        ep.validate_episode(path, spec_hash=spec.spec_hash())
        with ep.read_episode(path) as e, h5py.File(path) as raw:
            assert raw["cameras/head/depth"].dtype == (np.uint16 if encoding == "mm16" else np.float32)
            assert raw["cameras/head/depth"].attrs["encoding"] == encoding
            depth = e.cameras["head"].depth
            assert depth.shape == (4, H, W) and depth.dtype == np.float32 and len(depth) == 4
            for i in (0, 3):
                want = frames[i].images["head"][1]
                got = depth[i]
                assert got.dtype == np.float32
                if encoding == "float32":
                    np.testing.assert_array_equal(got, want)
                    continue
                valid = np.isfinite(want) & (want > 0)
                assert np.isnan(got[~valid]).all()
                assert np.abs(got[valid] - want[valid]).max() <= 0.0005 + 1e-6
            np.testing.assert_array_equal(depth[1:3], np.stack([depth[1], depth[2]]))
    assert sizes["mm16"] < 0.6 * sizes["float32"], sizes


def test_a_bad_depth_encoding_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="depth_encoding 'png'"):
        ep.EpisodeWriter(tmp_path, metadata(), depth_encoding="png")
    assert not list(tmp_path.iterdir())


def test_version_1_files_still_read(tmp_path):
    """Files written before the depth encoding (schema v1: float32 depth, no encoding attr)."""
    path, frames = write(tmp_path, 3)
    with h5py.File(path, "r+") as f:
        f.attrs["schema_version"] = 1
        for name in spec.CAMERAS:
            del f[f"cameras/{name}/depth"].attrs["encoding"]
    ep.validate_episode(path, spec_hash=spec.spec_hash())
    with ep.read_episode(path) as e:
        np.testing.assert_array_equal(e.cameras["head"].depth[2], frames[2].images["head"][1])


def corrupt(path, edit):
    with h5py.File(path, "r+") as f:
        edit(f)


@pytest.mark.parametrize("edit, message", [
    (lambda f: f.attrs.__setitem__("schema_version", 3), "schema_version is 3; this reader supports 1, 2"),
    (lambda f: f.attrs.__setitem__("schema", "other"), "not a BRS episode"),
    (lambda f: f.attrs.__setitem__("status", "recording"), "did not finish cleanly"),
    (lambda f: f["action"].resize(3, axis=0), r"truncated: dataset /action has shape \(3, 21\)"),
    (lambda f: f["cameras/left_wrist/depth"].resize(4, axis=0), "truncated: dataset /cameras/left_wrist/depth"),
    (lambda f: f["action"].__setitem__((2, 5), np.nan), r"/action has 1 non-finite values, first at frame 2 \(torso_joint3\)"),
    (lambda f: f["observation/base_pose"].__setitem__((1, 2), np.inf), r"base_pose .* frame 1 \(yaw\)"),
    (lambda f: f["time"].__setitem__(3, 0.0), "not strictly increasing"),
    (lambda f: f.attrs.__setitem__("robot_spec_hash", "0123"), "different robot spec"),
    (lambda f: f.attrs.__delitem__("seed"), r"missing root attributes \['seed'\]"),
])
def test_validate_names_the_problem(tmp_path, edit, message):
    path, _ = write(tmp_path, 5)
    corrupt(path, edit)
    with pytest.raises(ep.EpisodeError, match=message) as info:
        ep.validate_episode(path, spec_hash=spec.spec_hash())
    assert str(path) in str(info.value)


def test_validate_refuses_partial_and_garbage(tmp_path):
    writer = ep.EpisodeWriter(tmp_path, metadata())
    writer.add_frame(make_frame(0, np.random.default_rng(0)))
    with pytest.raises(ep.EpisodeError, match="status is 'recording'"):
        ep.validate_episode(writer.path)
    writer.discard()
    junk = tmp_path / "episode_000009.h5"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(ep.EpisodeError, match="not a readable HDF5 file"):
        ep.validate_episode(junk)
    with pytest.raises(ep.EpisodeError, match="no such file"):
        ep.validate_episode(tmp_path / "missing.h5")


def test_existing_episode_is_never_overwritten(tmp_path):
    path, _ = write(tmp_path, 1)
    with pytest.raises(FileExistsError):
        ep.EpisodeWriter(path, metadata())


KILLED_WRITER = """
import os, signal, sys, numpy as np
sys.path.insert(0, {tests!r})
from test_episode_file import make_frame, metadata
from brs_teleop import episode as ep
rng = np.random.default_rng(0)
w = ep.EpisodeWriter({folder!r}, metadata())
for i in range(5):
    w.add_frame(make_frame(i, rng))
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_killed_writer_leaves_whole_frames_in_a_partial(tmp_path):
    """A process killed mid-episode: the .partial opens, says 'recording', holds whole frames."""
    from pathlib import Path

    code = KILLED_WRITER.format(tests=str(Path(__file__).parent), folder=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert proc.returncode == -9, proc.stderr.decode()
    complete, incomplete = ep.list_episodes(tmp_path)
    assert complete == [] and len(incomplete) == 1
    with pytest.raises(ep.EpisodeError, match="status is 'recording'"):
        ep.validate_episode(incomplete[0])
    rng = np.random.default_rng(0)
    frames = [make_frame(i, rng) for i in range(5)]
    with ep.read_episode(incomplete[0]) as e:
        assert not e.complete and e.n_frames == 5 and e.metadata["status"] == "recording"
        np.testing.assert_array_equal(e.action, np.array([f.action for f in frames], np.float32))
        np.testing.assert_array_equal(e.cameras["right_wrist"].color[4], frames[4].images["right_wrist"][0])


def test_close_after_a_failed_write_keeps_the_whole_frames(tmp_path, monkeypatch):
    """A full disk refuses a frame halfway (h5py raises from the image write after the vectors
    grew): close() still completes the episode with the frames before it, the part cut off."""
    import errno

    rng = np.random.default_rng(0)
    frames = [make_frame(i, rng) for i in range(4)]
    writer = ep.EpisodeWriter(tmp_path, metadata())
    for f in frames[:3]:
        writer.add_frame(f)

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(h5py.Dataset, "write_direct", disk_full)
    with pytest.raises(OSError, match="No space left"):
        writer.add_frame(frames[3])
    monkeypatch.undo()
    assert writer.n_frames == 3 and len(writer._vectors["action"]) == 4  # the frame's vectors reached it
    path = writer.close(dropped_frames=0)
    meta = ep.validate_episode(path, spec_hash=spec.spec_hash())
    assert meta["n_frames"] == 3 and meta["status"] == "complete"
    with ep.read_episode(path) as e:
        np.testing.assert_array_equal(e.action, np.array([f.action for f in frames[:3]], np.float32))
        np.testing.assert_array_equal(e.cameras["head"].color[2], frames[2].images["head"][0])


def test_abandon_after_a_failed_close_leaves_a_readable_partial(tmp_path, monkeypatch):
    """close() itself refused (the disk is still full): abandon() closes the file, which stays
    `.partial` with its whole frames readable."""
    rng = np.random.default_rng(0)
    writer = ep.EpisodeWriter(tmp_path, metadata())
    for i in range(2):
        writer.add_frame(make_frame(i, rng))
    monkeypatch.setattr(h5py.File, "close", lambda self: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        writer.close()
    monkeypatch.undo()
    writer.abandon()
    assert not writer._file  # closed (an h5py File is false then): no handle left open
    assert ep.list_episodes(tmp_path) == ([], [writer.path])
    with ep.read_episode(writer.path) as e:
        assert not e.complete and e.n_frames == 2


def test_brs_record_list_and_validate(tmp_path, capsys):
    from brs.cli import main

    good, _ = write(tmp_path, 3)
    writer = ep.EpisodeWriter(tmp_path, metadata())
    writer.add_frame(make_frame(0, np.random.default_rng(0)))
    assert main(["record", "list", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "1 complete, 1 incomplete" in out and "episode_000000.h5" in out
    assert "trash_to_spot" in out and "incomplete" in out
    assert main(["record", "validate", str(good)]) == 0
    assert f"ok      {good}: 3 frames" in capsys.readouterr().out
    assert main(["record", "validate", str(tmp_path)]) == 1
    assert "INVALID" in capsys.readouterr().out
    assert main(["record", "validate", str(tmp_path / "nope.h5")]) == 1
    assert "no such file" in capsys.readouterr().out
    writer.discard()


@pytest.mark.parametrize("task", ["", "   "])
def test_validate_flags_an_episode_without_a_task_label(tmp_path, capsys, task):
    """Datasets index episodes by their task: `brs record validate` calls an unlabelled episode
    invalid (exit 1, as for any invalid file) and says how to fix it."""
    from brs.cli import main

    good, _ = write(tmp_path, 2)
    with h5py.File(good, "r+") as f:
        f.attrs["task"] = task
    ep.validate_episode(good)  # the file itself is sound: readers and the exporters' --task take it
    assert main(["record", "validate", str(good)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"INVALID {good}: no task label (task {task!r}): ") and "ok " not in out
    assert "brs export lerobot|mcap ... --task TEXT" in out and "brs record start --task TEXT" in out
    assert main(["record", "validate", str(tmp_path)]) == 1
