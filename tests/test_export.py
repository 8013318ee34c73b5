"""Dataset exporters: real episode files -> LeRobot v3.0 and rosbag2 MCAP, read back with
independent readers (pyarrow, imageio's ffmpeg, rosbags AnyReader)."""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
from pathlib import Path

import h5py
import imageio_ffmpeg
import numpy as np
import pyarrow.parquet as pq
import pytest

from brs_common import robot_spec as spec
from brs_common import topics
from brs_teleop import episode as ep_format
from brs_teleop.episode import CameraIntrinsics, EpisodeMetadata, EpisodeWriter, Frame
from brs_teleop.export_common import ExportError
from brs_teleop.episode import depth_to_mm
from brs_teleop.export_lerobot import export_lerobot
from brs_teleop.export_mcap import export_mcap

H, W = 48, 64
CAMERAS = ("head", "left_wrist")
LENGTHS = (12, 7, 10)
TASKS = ("put the cup in the sink", "", "put the cup in the sink")
RATE = 10.0


def _color(episode: int, k: int, camera: int) -> np.ndarray:
    """A horizontal gradient over a per-frame base colour (so frames are told apart by colour)."""
    base = np.array([30 + 12 * k, 210 - 9 * k - 40 * camera, 50 + 60 * episode], float)
    x = np.linspace(0.0, 40.0, W)[None, :, None]
    return np.clip(base + x + np.zeros((H, 1, 1)), 0, 255).astype(np.uint8)


def _depth(k: int) -> np.ndarray:
    y, x = np.mgrid[0:H, 0:W]
    d = (0.4 + 0.05 * k + 0.002 * x + 0.001 * y).astype(np.float32)
    d[0, :3] = (np.nan, 0.0, np.inf)  # invalid pixels as a camera publishes them
    return d


def _write_episode(folder: Path, index: int, n: int, task: str, *, close: bool = True):
    rng = np.random.default_rng(index)
    K = (40.0, 0.0, (W - 1) / 2, 0.0, 40.0, (H - 1) / 2, 0.0, 0.0, 1.0)
    meta = EpisodeMetadata(
        cameras={c: CameraIntrinsics(K=K, width=W, height=H, frame_id=spec.CAMERAS[c].optical_frame)
                 for c in CAMERAS},
        rate_hz=RATE, task=task, seed=index, source="teleop")
    writer = EpisodeWriter(folder / ep_format.episode_name(index), meta)
    for k in range(n):
        writer.add_frame(Frame(
            time=1000.0 + 60.0 * index + k / RATE + 0.003 * rng.standard_normal(),  # jittered
            joint_position=rng.uniform(-1, 1, len(spec.STATE_JOINTS)),
            joint_velocity=rng.uniform(-1, 1, len(spec.STATE_JOINTS)),
            joint_effort=rng.uniform(-5, 5, len(spec.STATE_JOINTS)),
            base_pose=rng.uniform(-2, 2, 3), base_velocity=rng.uniform(-0.3, 0.3, 3),
            action=rng.uniform(-1, 1, spec.ACTION_DIM),
            images={c: (_color(index, k, i), _depth(k)) for i, c in enumerate(CAMERAS)}))
    return writer.close() if close else writer


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("demos")
    for i, (n, task) in enumerate(zip(LENGTHS, TASKS)):
        _write_episode(folder, i, n, task)
    return folder


@pytest.fixture(scope="module")
def source(dataset):
    """Everything in the source episodes, read with the episode module."""
    eps = []
    for path in ep_format.list_episodes(dataset)[0]:
        with ep_format.read_episode(path) as ep:
            eps.append({"time": ep.time, "action": ep.action, "q": ep.joint_position,
                        "qd": ep.joint_velocity, "tau": ep.joint_effort, "pose": ep.base_pose,
                        "vel": ep.base_velocity, "task": ep.metadata["task"],
                        "color": {c: ep.cameras[c].color[:] for c in CAMERAS},
                        "depth": {c: ep.cameras[c].depth[:] for c in CAMERAS}})
    return eps


@pytest.fixture(scope="module")
def lerobot_dir(dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lerobot") / "ds"
    summary = export_lerobot(dataset, out, repo_id="test/brs", default_task="unnamed", progress=False)
    assert (summary.episodes, summary.frames, summary.fps) == (3, sum(LENGTHS), 10)
    return out


def _digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by relative path."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ---- LeRobot ---------------------------------------------------------------------------------------

def test_lerobot_info_and_tasks(lerobot_dir):
    info = json.loads((lerobot_dir / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0"
    totals = (info["fps"], info["total_episodes"], info["total_frames"], info["total_tasks"])
    assert totals == (10, 3, 29, 2)
    assert info["splits"] == {"train": "0:3"}
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    f = info["features"]
    assert f["action"] == {"dtype": "float32", "shape": [21], "names": list(spec.ACTION_JOINTS)}
    assert f["observation.state"]["names"] == [*spec.STATE_JOINTS, "base_vx", "base_vy", "base_wz"]
    for cam in CAMERAS:
        video = f[f"observation.images.{cam}"]
        assert video["dtype"] == "video" and video["shape"] == [H, W, 3]
        assert video["info"]["video.codec"] == "h264" and video["info"]["video.fps"] == 10
        assert f[f"observation.depth.{cam}"]["dtype"] == "uint16"
        path = info["video_path"].format(video_key=f"observation.images.{cam}", chunk_index=0, file_index=0)
        assert (lerobot_dir / path).is_file()
    tasks = pq.read_table(lerobot_dir / "meta/tasks.parquet").to_pydict()
    assert tasks == {"task_index": [0, 1], "task": ["put the cup in the sink", "unnamed"]}
    assert b"pandas" in pq.read_schema(lerobot_dir / "meta/tasks.parquet").metadata
    assert "test/brs" in (lerobot_dir / "README.md").read_text()


def test_lerobot_frames_match_the_source(lerobot_dir, source):
    table = pq.read_table(lerobot_dir / "data/chunk-000/file-000.parquet")
    assert table.num_rows == sum(LENGTHS)
    d = table.to_pydict()
    assert d["index"] == list(range(sum(LENGTHS)))
    assert d["episode_index"] == [e for e, n in enumerate(LENGTHS) for _ in range(n)]
    assert d["frame_index"] == [k for n in LENGTHS for k in range(n)]
    np.testing.assert_allclose(d["timestamp"], np.array(d["frame_index"]) / 10.0, atol=1e-6)
    assert d["task_index"] == [0] * 12 + [1] * 7 + [0] * 10
    action = np.array(d["action"], dtype=np.float32)
    state = np.array(d["observation.state"], dtype=np.float32)
    np.testing.assert_array_equal(action, np.concatenate([s["action"] for s in source]))
    np.testing.assert_array_equal(state, np.concatenate([np.hstack([s["q"], s["vel"]]) for s in source]))
    np.testing.assert_array_equal(np.array(d["observation.effort"], np.float32),
                                  np.concatenate([s["tau"] for s in source]))
    depth = np.array(table.column("observation.depth.head").to_pylist(), dtype=np.uint16)
    want = np.concatenate([depth_to_mm(s["depth"]["head"]) for s in source])
    np.testing.assert_array_equal(depth, want)
    assert list(depth[0, 0, :3]) == [0, 0, 0]  # nan, 0 and inf -> "no depth"
    assert depth[0, 5, 10] == round(1000 * (0.4 + 0.002 * 10 + 0.001 * 5))


def test_lerobot_episodes_and_stats(lerobot_dir, source):
    eps = pq.read_table(lerobot_dir / "meta/episodes/chunk-000/file-000.parquet").to_pydict()
    assert eps["episode_index"] == [0, 1, 2]
    assert eps["length"] == list(LENGTHS)
    assert eps["dataset_from_index"] == [0, 12, 19] and eps["dataset_to_index"] == [12, 19, 29]
    assert eps["tasks"] == [["put the cup in the sink"], ["unnamed"], ["put the cup in the sink"]]
    for cam in CAMERAS:
        key = f"videos/observation.images.{cam}"
        np.testing.assert_allclose(eps[f"{key}/from_timestamp"], [0.0, 1.2, 1.9])
        np.testing.assert_allclose(eps[f"{key}/to_timestamp"], [1.2, 1.9, 2.9])
    np.testing.assert_allclose(eps["stats/action/mean"][1], source[1]["action"].mean(axis=0), rtol=1e-5)
    stats = json.loads((lerobot_dir / "meta/stats.json").read_text())
    all_actions = np.concatenate([s["action"] for s in source]).astype(np.float64)
    np.testing.assert_allclose(stats["action"]["mean"], all_actions.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(stats["action"]["std"], all_actions.std(axis=0), rtol=1e-5)
    np.testing.assert_allclose(stats["action"]["max"], all_actions.max(axis=0), rtol=1e-6)
    np.testing.assert_allclose(stats["action"]["q50"], np.median(all_actions, axis=0), rtol=1e-6)
    assert stats["action"]["count"] == [29]
    assert np.array(stats["observation.images.head"]["mean"]).shape == (3, 1, 1)
    head = np.concatenate([s["color"]["head"] for s in source]).reshape(-1, 3) / 255.0
    image_mean = np.ravel(stats["observation.images.head"]["mean"])
    np.testing.assert_allclose(image_mean, head.mean(axis=0), atol=0.01)


def _decode(path: Path) -> np.ndarray:
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    return np.stack([np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader])


def test_lerobot_videos_decode_with_the_right_frames(lerobot_dir, source):
    for cam in CAMERAS:
        frames = _decode(lerobot_dir / f"videos/observation.images.{cam}/chunk-000/file-000.mp4")
        want = np.concatenate([s["color"][cam] for s in source])
        assert frames.shape == want.shape  # 29 frames of 48x64 rgb
        # lossy H.264 / yuv420p: each frame's mean colour within a few levels of the source
        err = np.abs(frames.reshape(len(want), -1, 3).mean(1) - want.reshape(len(want), -1, 3).mean(1))
        assert err.max() < 4.0, err.max()
        assert np.abs(frames.astype(int) - want).mean() < 3.0


def test_lerobot_lower_fps_picks_frames(dataset, source, tmp_path):
    summary = export_lerobot(dataset, tmp_path / "ds5", fps=5, include_depth=False, default_task="unnamed", progress=False)
    assert (summary.fps, summary.frames) == (5, 6 + 4 + 5)
    d = pq.read_table(tmp_path / "ds5/data/chunk-000/file-000.parquet").to_pydict()
    assert "observation.depth.head" not in d
    picked = np.concatenate([s["action"][::2] for s in source])  # 10 Hz -> every other frame
    np.testing.assert_array_equal(np.array(d["action"], np.float32), picked)
    assert len(_decode(tmp_path / "ds5/videos/observation.images.head/chunk-000/file-000.mp4")) == 15
    with pytest.raises(ExportError, match="--fps 20 must be between 1 and"):
        export_lerobot(dataset, tmp_path / "ds20", fps=20, default_task="unnamed", progress=False)


# ---- MCAP ------------------------------------------------------------------------------------------

def _read_bag(bag: Path) -> dict[str, list]:
    from rosbags.highlevel import AnyReader

    out: dict[str, list] = {}
    with AnyReader([bag]) as reader:
        for conn, t_ns, raw in reader.messages():
            out.setdefault(conn.topic, []).append((t_ns, reader.deserialize(raw, conn.msgtype)))
    return out


def test_mcap_bags_read_back_with_rosbags(dataset, source, tmp_path):
    before = _digest(dataset)
    summary = export_mcap(dataset, tmp_path / "bags", default_task="unnamed", progress=False)
    assert _digest(dataset) == before  # sources untouched
    assert [b.name for b in summary.bags] == ["episode_000000", "episode_000001", "episode_000002"]
    assert sorted(p.suffix for p in summary.bags[0].iterdir()) == [".mcap", ".yaml"]
    streams = ("color", "depth", "color_info", "depth_info")
    cam_topics = [topics.camera_topic(c, s) for c in CAMERAS for s in streams]
    for bag, src, n in zip(summary.bags, source, LENGTHS):
        msgs = _read_bag(bag)
        assert set(msgs) == {topics.JOINT_STATES, topics.ODOM, topics.CONTROLLER_STATE, topics.TF,
                             topics.TF_STATIC, *cam_topics}
        assert all(len(v) == (1 if topic == topics.TF_STATIC else n) for topic, v in msgs.items())
        want_ns = np.rint(src["time"] * 1e9).astype(np.int64)
        for topic, items in msgs.items():
            stamps = [t for t, _ in items]
            assert stamps == want_ns[:len(stamps)].tolist() and np.all(np.diff(stamps) > 0), topic
            first = items[0][1]
            head = (first.transforms[0] if topic in (topics.TF, topics.TF_STATIC) else first).header.stamp
            assert head.sec * 1_000_000_000 + head.nanosec == want_ns[0]
        js = [m for _, m in msgs[topics.JOINT_STATES]]
        assert js[0].name == list(spec.STATE_JOINTS)
        np.testing.assert_array_equal(np.array([m.position for m in js], np.float32), src["q"])
        np.testing.assert_array_equal(np.array([m.effort for m in js], np.float32), src["tau"])
        cmd = [m for _, m in msgs[topics.CONTROLLER_STATE]]
        assert cmd[0].name == list(spec.ACTION_JOINTS)
        base = [spec.ACTION_JOINTS.index(j) for j in spec.BASE_JOINTS]
        arm = spec.group_slice("left_arm")
        position = np.array([m.position for m in cmd], np.float32)
        velocity = np.array([m.velocity for m in cmd], np.float32)
        np.testing.assert_array_equal(position[:, arm], src["action"][:, arm])
        np.testing.assert_array_equal(velocity[:, base], src["action"][:, base])
        assert not position[:, base].any() and np.isnan(velocity[:, arm]).all()  # as the controller
        odom = [m for _, m in msgs[topics.ODOM]]
        yaw = [2 * np.arctan2(m.pose.pose.orientation.z, m.pose.pose.orientation.w) for m in odom]
        np.testing.assert_allclose(np.unwrap(yaw), np.unwrap(src["pose"][:, 2]), atol=1e-6)
        np.testing.assert_allclose([m.twist.twist.angular.z for m in odom], src["vel"][:, 2], atol=1e-7)
        assert (odom[0].header.frame_id, odom[0].child_frame_id) == (spec.FRAMES["odom"], spec.FRAMES["base"])
        for cam in CAMERAS:
            color = [m for _, m in msgs[topics.camera_topic(cam, "color")]]
            assert color[0].encoding == "rgb8"
            assert color[0].header.frame_id == spec.CAMERAS[cam].optical_frame
            pixels = np.stack([m.data.reshape(H, W, 3) for m in color])
            np.testing.assert_array_equal(pixels, src["color"][cam])
            depth = [m for _, m in msgs[topics.camera_topic(cam, "depth")]]
            assert depth[0].encoding == "32FC1" and depth[0].step == 4 * W
            got = np.stack([m.data.view("<f4").reshape(H, W) for m in depth])
            np.testing.assert_array_equal(got, src["depth"][cam])  # nan and inf kept as recorded
            info = msgs[topics.camera_topic(cam, "color_info")][0][1]
            assert (info.width, info.height) == (W, H) and info.k[0] == 40.0 and info.p[2] == (W - 1) / 2


def _tf_pose(transforms: dict, frame: str, root: str) -> np.ndarray:
    """Compose a tf tree (child -> (parent, 4x4)) from `frame` up to `root`."""
    M = np.eye(4)
    while frame != root:
        parent, T = transforms[frame]
        M, frame = T @ M, parent
    return M


def test_mcap_tf_places_every_urdf_frame_as_forward_kinematics_does(dataset, source, tmp_path):
    """/tf (odometry + movable joints, per frame) and /tf_static (fixed joints, once) compose to
    the same pose of every URDF link in odom as the odometry times the URDF's forward kinematics,
    the camera optical frames included: what RViz/Foxglove need to place the robot and its images."""
    from scipy.spatial.transform import Rotation

    from brs_sim.urdf import URDF_PATH, UrdfKinematics, link_transforms

    bag = export_mcap(dataset / "episode_000000.h5", tmp_path / "tf", progress=False).bags[0]
    msgs = _read_bag(bag)
    kin = UrdfKinematics(URDF_PATH)

    def tree(message) -> dict:
        out = {}
        for t in message.transforms:
            tr, r = t.transform.translation, t.transform.rotation
            M = np.eye(4)
            M[:3, :3] = Rotation.from_quat([r.x, r.y, r.z, r.w]).as_matrix()
            M[:3, 3] = tr.x, tr.y, tr.z
            out[t.child_frame_id] = (t.header.frame_id, M)
        return out

    static = tree(msgs[topics.TF_STATIC][0][1])
    assert {spec.CAMERAS[c].optical_frame for c in spec.CAMERAS} <= set(static)
    odom = spec.FRAMES["odom"]
    src = source[0]
    for k in (0, len(src["time"]) - 1):
        t_ns, message = msgs[topics.TF][k]
        assert message.transforms[0].header.stamp.sec * 1_000_000_000 + message.transforms[0].header.stamp.nanosec == t_ns
        frames = {**static, **tree(message)}
        assert set(frames) == set(kin.links)  # every link has its parent; base_link's is odom
        x, y, yaw = src["pose"][k].astype(float)
        base_in_odom = np.eye(4)
        base_in_odom[:3, :3] = Rotation.from_euler("z", yaw).as_matrix()
        base_in_odom[:2, 3] = x, y
        fk = link_transforms(kin, dict(zip(spec.STATE_JOINTS, src["q"][k].astype(float))))
        for link in kin.links:
            np.testing.assert_allclose(_tf_pose(frames, link, odom), base_in_odom @ fk[link], atol=1e-6,
                                       err_msg=f"frame {k}, link {link}")


def test_mcap_decodes_with_the_mcap_ros2_reader(dataset, source, tmp_path):
    """Foxglove's own Python reader (mcap + mcap-ros2-support, the embedded message definitions):
    every message of every topic decodes, log times rise per topic, /tf carries odom -> base_link."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    bag = export_mcap(dataset / "episode_000002.h5", tmp_path / "m", progress=False).bags[0]
    (path,) = bag.glob("*.mcap")
    times: dict[str, list[int]] = {}
    with open(path, "rb") as f:
        for _, channel, message, decoded in make_reader(f, decoder_factories=[DecoderFactory()]).iter_decoded_messages():
            times.setdefault(channel.topic, []).append(message.log_time)
            if channel.topic == topics.TF:
                odom = decoded.transforms[0]
                assert (odom.header.frame_id, odom.child_frame_id) == (spec.FRAMES["odom"], spec.FRAMES["base"])
    n = LENGTHS[2]
    assert topics.TF in times and len(times[topics.TF_STATIC]) == 1
    assert all(len(t) == n for topic, t in times.items() if topic != topics.TF_STATIC), {k: len(v) for k, v in times.items()}
    assert all(np.all(np.diff(t) > 0) for t in times.values())
    assert times[topics.JOINT_STATES] == np.rint(source[2]["time"] * 1e9).astype(np.int64).tolist()


def test_mcap_single_episode(dataset, tmp_path):
    summary = export_mcap(dataset / "episode_000001.h5", tmp_path / "one", default_task="unnamed", progress=False)
    assert [b.name for b in summary.bags] == ["episode_000001"]
    assert summary.frames == LENGTHS[1]
    meta = (summary.bags[0] / "metadata.yaml").read_text()
    assert "storage_identifier: mcap" in meta and "version: 9" in meta and "brs.seed: '1'" in meta
    assert "brs.task: unnamed" in meta  # the recording had none: --task names it


def test_mcap_export_refuses_an_episode_without_a_task_label(dataset, tmp_path):
    """As the LeRobot export: an unlabelled (empty or blank) episode is refused, nothing written,
    and the error says how (--task); a labelled episode keeps its own label under --task."""
    out = tmp_path / "bags"
    with pytest.raises(ExportError, match=r"1 episode\(s\) have no task label \(episode_000001\.h5\); "
                                          r"a bag carries it as brs\.task: pass --task TEXT"):
        export_mcap(dataset, out, progress=False)
    assert not out.exists() and not _leftovers(tmp_path)
    blank = tmp_path / "blank"
    blank.mkdir()
    shutil.copy(dataset / "episode_000000.h5", blank / "episode_000000.h5")
    with h5py.File(blank / "episode_000000.h5", "r+") as f:
        f.attrs["task"] = "   "
    with pytest.raises(ExportError, match=r"have no task label \(episode_000000\.h5\)"):
        export_mcap(blank, out, progress=False)
    summary = export_mcap(dataset / "episode_000000.h5", out, default_task="other", progress=False)
    assert "brs.task: put the cup in the sink" in (summary.bags[0] / "metadata.yaml").read_text()


# ---- faults ----------------------------------------------------------------------------------------

def _leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


@pytest.fixture
def with_partial(dataset, tmp_path) -> Path:
    """A copy of the dataset plus a recording that crashed (left .partial)."""
    folder = tmp_path / "demos"
    shutil.copytree(dataset, folder)
    writer = _write_episode(folder, 3, 4, "crashed", close=False)
    writer._file.close()  # the process died here: no close(), the file stays .partial
    assert (folder / "episode_000003.h5.partial").is_file()
    return folder


@pytest.mark.parametrize("fmt", ["lerobot", "mcap"])
def test_incomplete_episode_is_refused_and_nothing_written(with_partial, tmp_path, fmt):
    export = functools.partial(export_lerobot if fmt == "lerobot" else export_mcap, default_task="unnamed")
    out = tmp_path / "out"
    before = _digest(with_partial)
    refusal = r"(?s)1 incomplete episode.*episode_000003\.h5\.partial.*--skip-incomplete"
    with pytest.raises(ExportError, match=refusal):
        export(with_partial, out, progress=False)
    assert not out.exists() and not _leftovers(tmp_path)
    with pytest.raises(ExportError, match="incomplete"):
        export(with_partial / "episode_000003.h5.partial", out, progress=False)
    summary = export(with_partial, out, skip_incomplete=True, progress=False)
    assert summary.frames == sum(LENGTHS)
    assert _digest(with_partial) == before


def test_invalid_episode_is_listed(with_partial, tmp_path):
    (with_partial / "episode_000003.h5.partial").unlink()
    (with_partial / "episode_000004.h5").write_bytes(b"not an hdf5 file")
    with pytest.raises(ExportError, match=r"(?s)1 invalid episode.*episode_000004\.h5"):
        export_lerobot(with_partial, tmp_path / "out", default_task="unnamed", progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("fmt", ["lerobot", "mcap"])
def test_existing_output_needs_overwrite(dataset, tmp_path, fmt):
    export = functools.partial(export_lerobot if fmt == "lerobot" else export_mcap, default_task="unnamed")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="not empty; pass --overwrite"):
        export(dataset, out, progress=False)
    assert (out / "keep.txt").read_text() == "mine"
    export(dataset, out, overwrite=True, progress=False)
    assert not (out / "keep.txt").exists() and any(out.iterdir())
    assert not _leftovers(tmp_path)
    with pytest.raises(ExportError, match="contains the source episode"):
        export(dataset, dataset.parent, overwrite=True, progress=False)


def test_failure_midway_keeps_the_old_output(dataset, tmp_path, monkeypatch):
    from brs_teleop import export_lerobot as module

    out = tmp_path / "out"
    export_lerobot(dataset, out, default_task="unnamed", progress=False)
    before = _digest(out)
    calls = {"n": 0}
    real_write = module._DataWriter.write

    def failing_write(self, columns):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        real_write(self, columns)

    monkeypatch.setattr(module._DataWriter, "write", failing_write)
    with pytest.raises(OSError, match="disk full"):
        export_lerobot(dataset, out, overwrite=True, default_task="unnamed", progress=False)
    assert _digest(out) == before and not _leftovers(tmp_path)


# ---- CLI -------------------------------------------------------------------------------------------

def test_cli(dataset, tmp_path, capsys):
    from brs import cli

    assert cli.main(["export", "lerobot", str(dataset), str(tmp_path / "lr"), "--no-depth",
                     "--repo-id", "me/demos", "--no-progress"]) == 2  # one episode has no task label
    assert "no task label" in capsys.readouterr().err
    assert cli.main(["export", "lerobot", str(dataset), str(tmp_path / "lr"), "--no-depth",
                     "--repo-id", "me/demos", "--no-progress", "--task", "unnamed"]) == 0
    assert "3 episodes, 29 frames at 10 fps" in capsys.readouterr().out
    assert cli.main(["export", "mcap", str(dataset), str(tmp_path / "bags")]) == 2
    err = capsys.readouterr().err
    assert "brs export: error: 1 episode(s) have no task label (episode_000001.h5)" in err and "--task TEXT" in err
    assert not (tmp_path / "bags").exists()
    assert cli.main(["export", "mcap", str(dataset), str(tmp_path / "lr"), "--task", "unnamed"]) == 2
    assert "not empty; pass --overwrite" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["export", "mcap", "--help"])
    assert "brs export mcap data/demos data/bags" in capsys.readouterr().out


def test_lerobot_starts_new_files_when_full(dataset, source, tmp_path, monkeypatch):
    from brs_teleop import export_lerobot as module

    monkeypatch.setattr(module, "DATA_FILES_SIZE_IN_MB", 0)  # every episode in files of its own
    monkeypatch.setattr(module, "VIDEO_FILES_SIZE_IN_MB", 0)
    out = tmp_path / "ds"
    export_lerobot(dataset, out, include_depth=False, default_task="unnamed", progress=False)
    info = json.loads((out / "meta/info.json").read_text())
    eps = pq.read_table(out / "meta/episodes/chunk-000/file-000.parquet").to_pydict()
    key = "videos/observation.images.head"
    assert eps["data/file_index"] == [0, 1, 2] and eps[f"{key}/file_index"] == [0, 1, 2]
    assert eps[f"{key}/from_timestamp"] == [0.0, 0.0, 0.0]
    for e, n in enumerate(LENGTHS):
        data = out / info["data_path"].format(chunk_index=0, file_index=e)
        rows = pq.read_table(data).to_pydict()
        assert rows["episode_index"] == [e] * n and rows["index"][0] == eps["dataset_from_index"][e]
        np.testing.assert_array_equal(np.array(rows["action"], np.float32), source[e]["action"])
        video = out / info["video_path"].format(video_key="observation.images.head",
                                                chunk_index=0, file_index=e)
        assert len(_decode(video)) == n


def test_lerobot_reports_dropped_frames(tmp_path):
    folder = tmp_path / "gappy"
    path = _write_episode(folder, 0, 6, "task")
    with ep_format.read_episode(path) as ep:  # rewrite the times: frames 3 and 4 were dropped
        times = ep.time.copy()
    with h5py.File(path, "r+") as f:
        f["time"][3:] = times[3:] + 0.2
    summary = export_lerobot(folder, tmp_path / "out", include_depth=False, progress=False)
    assert summary.frames == 6
    assert len(summary.warnings) == 1 and "episode_000000.h5: 1 gap(s)" in summary.warnings[0]
    assert "after frame 2" in summary.warnings[0]


def test_lerobot_export_refuses_an_episode_without_a_task_label(dataset, tmp_path):
    """LeRobot gives every frame a task: an unlabelled episode is refused (nothing written)
    unless --task names it; the error says how."""
    out = tmp_path / "out"
    with pytest.raises(ExportError, match=r"1 episode\(s\) have no task label \(episode_\d+\.h5\).*--task TEXT"):
        export_lerobot(dataset, out, progress=False)
    assert not out.exists() and not _leftovers(tmp_path)
