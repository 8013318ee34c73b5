"""Episode files: one teleop/expert demonstration per HDF5 file (schema "brs-episode" v2). No ROS.

    meta = EpisodeMetadata(task="trash_to_spot", seed=3, source="teleop", rate_hz=10.0,
                           cameras={"head": CameraIntrinsics(K=..., width=320, height=240)})
    writer = EpisodeWriter("data/demos", meta)          # -> data/demos/episode_000007.h5.partial
    writer.add_frame(Frame(time=..., joint_position=..., ..., images={"head": (rgb, depth)}))
    path = writer.close()                               # -> data/demos/episode_000007.h5
    with read_episode(path) as ep:
        ep.action[:10], ep.cameras["head"].color[3], ep.cameras["head"].K

Crash safety: the file is written in SWMR mode (HDF5 orders its metadata writes so the file on
disk is always readable) and flushed after every frame, in two steps: the frame's data first,
then its entry in `/time`. So `len(/time)` counts whole frames even after a `kill -9`. A clean
`close()` sets `status="complete"`, fsyncs and renames `*.h5.partial` -> `*.h5` atomically;
anything named `.partial` or with status "recording" is incomplete and never validates.

Layout (N frames; every dataset chunked along time):
| path | shape, dtype | content |
|---|---|---|
| /time | (N,) float64 | ROS time of the frame, s (sim time in sim) |
| /observation/joint_{position,velocity,effort} | (N, len(STATE_JOINTS)) float32 | STATE_JOINTS order |
| /observation/base_pose | (N, 3) float32 | x, y, yaw in odom |
| /observation/base_velocity | (N, 3) float32 | vx, vy (base frame), wz |
| /action | (N, 21) float32 | executed whole-body command, ACTION_JOINTS order |
| /cameras/<name>/color | (N, H, W, 3) uint8 | rgb |
| /cameras/<name>/depth | (N, H, W) float32 or uint16 | attr `encoding`: "float32" metres (lossless) or "mm16" millimetres, 0 = no depth (the 16UC1 form of RealSense-class cameras; <= 0.5 mm rounding; sim demos ~4x smaller in all) |
Root attrs: see ROOT_ATTRS; camera group attrs: K, D, distortion_model, width, height, frame_id.
Readers see depth as float32 metres either way (`ep.cameras[name].depth[i]`; no depth = NaN).
Schema v2 added the depth `encoding` attr; v1 files (float32 depth) read as before.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from brs_common import robot_spec as spec

SCHEMA = "brs-episode"
SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
DEPTH_ENCODINGS = {"float32": np.float32, "mm16": np.uint16}  # depth `encoding` attr -> dtype on disk
SUFFIX = ".h5"
PARTIAL_SUFFIX = ".partial"
STATUS_RECORDING, STATUS_COMPLETE = "recording", "complete"
SUCCESS_UNKNOWN = -1
NAME_PATTERN = re.compile(r"^episode_(\d+)\.h5(\.partial)?$")

ROOT_ATTRS = ("schema", "schema_version", "status", "task", "seed", "robot_spec_hash",
              "calibration", "created_utc", "rate_hz", "action_joints", "state_joints", "cameras",
              "n_frames", "dropped_frames", "success", "source")
CAMERA_ATTRS = ("K", "D", "distortion_model", "width", "height", "frame_id")

N_STATE = len(spec.STATE_JOINTS)
# Proprioception and action datasets: name -> width. Images live under /cameras.
VECTOR_DATASETS: dict[str, int] = {
    "observation/joint_position": N_STATE,
    "observation/joint_velocity": N_STATE,
    "observation/joint_effort": N_STATE,
    "observation/base_pose": 3,
    "observation/base_velocity": 3,
    "action": spec.ACTION_DIM,
}
# sensor_msgs/JointState allows joints without velocity or effort (a driver that does not measure
# them; the real-robot merger fills NaN): these may hold NaN, every other vector must be finite.
MAY_BE_NAN = frozenset({"observation/joint_velocity", "observation/joint_effort"})
VECTOR_CHUNK = 64  # frames per chunk of the small datasets (one frame per chunk for images)


def depth_to_mm(depth_m: np.ndarray) -> np.ndarray:
    """float metres -> uint16 millimetres; NaN, inf, <= 0 and beyond 65.534 m -> 0 (no depth)."""
    mm = np.asarray(depth_m, dtype=np.float32) * np.float32(1000.0)
    with np.errstate(invalid="ignore"):
        valid = (mm >= 0.5) & (mm < 65534.5)  # NaN compares False
        return np.where(valid, mm + np.float32(0.5), np.float32(0.0)).astype(np.uint16)


def mm_to_depth(mm: np.ndarray) -> np.ndarray:
    """uint16 millimetres -> float32 metres, 0 (no depth) -> NaN."""
    mm = np.asarray(mm)
    return np.where(mm > 0, mm.astype(np.float32) * np.float32(1e-3), np.float32(np.nan))


class EpisodeError(Exception):
    """An episode file that is not a valid, complete brs-episode (the message says why)."""


# ---- metadata and frames -------------------------------------------------------------------------

@dataclass(frozen=True)
class CameraIntrinsics:
    """What the camera group attrs hold (from sensor_msgs/CameraInfo)."""

    K: tuple[float, ...]  # 3x3 row-major
    width: int
    height: int
    D: tuple[float, ...] = ()
    distortion_model: str = "plumb_bob"
    frame_id: str = ""

    @classmethod
    def from_camera_info(cls, msg) -> CameraIntrinsics:
        """From a sensor_msgs/CameraInfo (duck-typed: k, d, width, height, distortion_model)."""
        return cls(K=tuple(float(v) for v in msg.k), width=int(msg.width), height=int(msg.height),
                   D=tuple(float(v) for v in msg.d), distortion_model=str(msg.distortion_model),
                   frame_id=str(msg.header.frame_id))


@dataclass
class EpisodeMetadata:
    """Root attrs chosen by the caller; the rest (schema, status, counts, ...) the writer owns."""

    cameras: dict[str, CameraIntrinsics] = field(default_factory=dict)  # ordered, may be empty
    rate_hz: float = spec.CAMERA_RATE_HZ
    task: str = ""
    seed: int = 0
    source: str = "teleop"
    calibration: dict | str = "{}"  # dict or a JSON string
    success: int = SUCCESS_UNKNOWN

    def __post_init__(self):
        self.cameras = {name: cam if isinstance(cam, CameraIntrinsics) else CameraIntrinsics(**cam)
                        for name, cam in self.cameras.items()}


@dataclass
class Frame:
    """One synchronised sample. Vectors in the spec's orders; images per camera (rgb, depth)."""

    time: float
    joint_position: np.ndarray
    joint_velocity: np.ndarray
    joint_effort: np.ndarray
    base_pose: np.ndarray
    base_velocity: np.ndarray
    action: np.ndarray
    images: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def vectors(self) -> dict[str, np.ndarray]:
        """The VECTOR_DATASETS values of this frame, by dataset name."""
        return {name: getattr(self, name.rpartition("/")[2]) for name in VECTOR_DATASETS}


# ---- file names ------------------------------------------------------------------------------------

def episode_name(index: int) -> str:
    return f"episode_{index:06d}{SUFFIX}"


def episode_index(path: str | Path) -> int | None:
    m = NAME_PATTERN.match(Path(path).name)
    return int(m.group(1)) if m else None


def next_episode_path(folder: str | Path) -> Path:
    """folder/episode_<max existing index + 1>.h5 (complete and .partial files both count)."""
    folder = Path(folder)
    used = [i for p in folder.glob("episode_*") if (i := episode_index(p)) is not None]
    return folder / episode_name(max(used, default=-1) + 1)


def partial_path(path: str | Path) -> Path:
    path = Path(path)
    return path if path.name.endswith(PARTIAL_SUFFIX) else path.with_name(path.name + PARTIAL_SUFFIX)


def final_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name.removesuffix(PARTIAL_SUFFIX))


def list_episodes(folder: str | Path) -> tuple[list[Path], list[Path]]:
    """(complete `*.h5`, incomplete `*.h5.partial`) episode files of a folder, by index."""
    folder = Path(folder)
    complete, incomplete = [], []
    for p in folder.glob("episode_*"):
        m = NAME_PATTERN.match(p.name)
        if m and p.is_file():
            (incomplete if m.group(2) else complete).append(p)
    key = episode_index
    return sorted(complete, key=key), sorted(incomplete, key=key)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---- writing ---------------------------------------------------------------------------------------

class EpisodeWriter:
    """Writes one episode to `<name>.h5.partial`; `close()` completes it, `discard()` deletes it.

    `path` is a dataset folder (the next free episode index is taken) or an episode file path
    with or without `.h5` / `.partial`. Not thread-safe: one thread writes.
    """

    def __init__(self, path: str | Path, metadata: EpisodeMetadata | Mapping | None = None, *,
                 image_compression: str = "gzip", compression_level: int = 1, depth_encoding: str = "float32"):
        meta = metadata if isinstance(metadata, EpisodeMetadata) else EpisodeMetadata(**(metadata or {}))
        if depth_encoding not in DEPTH_ENCODINGS:
            raise ValueError(f"depth_encoding {depth_encoding!r}: use one of {', '.join(DEPTH_ENCODINGS)}")
        self.metadata = meta
        self.depth_encoding = depth_encoding
        path = Path(path)
        if path.is_dir():
            path = next_episode_path(path)
        elif not path.name.endswith((SUFFIX, SUFFIX + PARTIAL_SUFFIX)):
            path = path.with_name(path.name + SUFFIX)
        self.final_path = final_path(path)
        self.path = partial_path(path)
        if self.final_path.exists():
            raise FileExistsError(f"episode {self.final_path} already exists")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.n_frames = 0
        self.dropped_frames = 0
        self._first_time = self._last_time = float("nan")
        self._closed = False
        calibration = meta.calibration if isinstance(meta.calibration, str) else json.dumps(meta.calibration)
        json.loads(calibration)  # a clear error now rather than an unreadable attr later
        # mode "x": never overwrite an existing .partial (another recorder or a crash to inspect)
        self._file = h5py.File(self.path, "x", libver="latest")
        try:
            self._create(meta, calibration, image_compression, compression_level)
            self._file.swmr_mode = True  # from here on the file on disk is always readable
        except BaseException:
            self._file.close()
            self.path.unlink(missing_ok=True)
            raise

    def _create(self, meta: EpisodeMetadata, calibration: str, compression: str, level: int) -> None:
        f = self._file
        f.attrs.update({
            "schema": SCHEMA, "schema_version": SCHEMA_VERSION, "status": STATUS_RECORDING,
            "task": str(meta.task), "seed": int(meta.seed), "robot_spec_hash": spec.spec_hash(),
            "calibration": calibration,
            "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "rate_hz": float(meta.rate_hz), "action_joints": list(spec.ACTION_JOINTS),
            "state_joints": list(spec.STATE_JOINTS), "cameras": list(meta.cameras),
            "n_frames": 0, "dropped_frames": 0, "success": int(meta.success),
            "source": str(meta.source),
        })
        if not meta.cameras:
            f.attrs["cameras"] = np.array([], dtype=h5py.string_dtype())
        self._time = f.create_dataset("time", (0,), np.float64, maxshape=(None,),
                                      chunks=(VECTOR_CHUNK,), fillvalue=np.nan)
        self._vectors = {
            name: f.create_dataset(name, (0, width), np.float32, maxshape=(None, width),
                                   chunks=(VECTOR_CHUNK, width), fillvalue=np.nan)
            for name, width in VECTOR_DATASETS.items()
        }
        self._images: dict[str, tuple[h5py.Dataset, h5py.Dataset]] = {}
        for name, cam in meta.cameras.items():
            if len(cam.K) != 9:
                raise ValueError(f"camera {name}: K needs 9 values, got {len(cam.K)}")
            g = f.create_group(f"cameras/{name}")
            g.attrs.update({"K": np.asarray(cam.K, float), "D": np.asarray(cam.D, float),
                            "distortion_model": cam.distortion_model, "width": int(cam.width),
                            "height": int(cam.height), "frame_id": cam.frame_id})
            h, w = int(cam.height), int(cam.width)
            # gzip: readable by every HDF5 tool, ~3x smaller than lzf on sim images
            opts = {"compression_opts": int(level)} if compression == "gzip" else {}
            # depth: shuffle groups the bytes of each value, which compresses far better
            depth = g.create_dataset("depth", (0, h, w), DEPTH_ENCODINGS[self.depth_encoding], maxshape=(None, h, w),
                                     chunks=(1, h, w), compression=compression, shuffle=True, **opts)
            depth.attrs["encoding"] = self.depth_encoding
            self._images[name] = (
                g.create_dataset("color", (0, h, w, 3), np.uint8, maxshape=(None, h, w, 3),
                                 chunks=(1, h, w, 3), compression=compression, **opts),
                depth,
            )

    def _check(self, frame: Frame) -> tuple[dict[str, np.ndarray], dict[str, tuple]]:
        """Validated arrays of a frame, or ValueError naming what is wrong (nothing is written)."""
        if not np.isfinite(frame.time):
            raise ValueError(f"frame time {frame.time} is not finite")
        if self.n_frames and frame.time <= self._last_time:
            raise ValueError(f"frame time {frame.time} not after the previous {self._last_time}")
        vectors = {}
        for name, value in frame.vectors().items():
            v = np.asarray(value, dtype=np.float32).reshape(-1)
            if v.shape != (VECTOR_DATASETS[name],):
                raise ValueError(f"{name}: {v.size} values, expected {VECTOR_DATASETS[name]}")
            if name not in MAY_BE_NAN and not np.all(np.isfinite(v)):
                raise ValueError(f"{name}: NaN or inf in frame at t={frame.time}")
            vectors[name] = v
        if set(frame.images) != set(self._images):
            raise ValueError(f"frame has cameras {sorted(frame.images)}, episode has {sorted(self._images)}")
        images = {}
        for name, (color, depth) in frame.images.items():
            cds, dds = self._images[name]
            color, depth = np.asarray(color), np.asarray(depth)
            if color.shape != cds.shape[1:] or color.dtype != np.uint8:
                raise ValueError(f"{name} color: {color.shape} {color.dtype}, "
                                 f"expected {cds.shape[1:]} uint8")
            if depth.shape != dds.shape[1:] or depth.dtype != np.float32:
                raise ValueError(f"{name} depth: {depth.shape} {depth.dtype}, "
                                 f"expected {dds.shape[1:]} float32")
            images[name] = (color, depth_to_mm(depth) if self.depth_encoding == "mm16" else depth)
        return vectors, images

    def add_frame(self, frame: Frame) -> None:
        """Append one frame and flush it. ValueError (nothing written) for a malformed frame."""
        if self._closed:
            raise RuntimeError(f"episode {self.path} is closed")
        vectors, images = self._check(frame)
        n = self.n_frames
        for name, v in vectors.items():
            ds = self._vectors[name]
            ds.resize(n + 1, axis=0)
            ds[n] = v
        for name, (color, depth) in images.items():
            for ds, value in zip(self._images[name], (color, depth)):
                ds.resize(n + 1, axis=0)
                ds.write_direct(np.ascontiguousarray(value), dest_sel=np.s_[n])
        self._file.flush()  # the frame's data is on disk ...
        self._time.resize(n + 1, axis=0)
        self._time[n] = frame.time
        self._file.flush()  # ... before /time says it exists
        self._last_time = float(frame.time)
        if n == 0:
            self._first_time = self._last_time
        self.n_frames = n + 1

    @property
    def duration(self) -> float:
        return self._last_time - self._first_time if self.n_frames else 0.0

    def close(self, *, success: int | None = None, dropped_frames: int | None = None) -> Path:
        """Mark complete, fsync and rename to the final `.h5` name; returns that path.

        Also after add_frame failed (a full disk): the episode is its whole frames, the part of
        a frame that reached the file is cut off. If this fails too, the file stays `.partial`.
        """
        if self._closed:
            raise RuntimeError(f"episode {self.path} is already closed")
        self._closed = True
        self._file.close()
        # attrs cannot change in SWMR mode: reopen plainly for the final metadata
        with h5py.File(self.path, "r+", libver="latest") as f:
            for name in self._dataset_names():
                if f[name].shape[0] != self.n_frames:  # grown by a frame whose write failed
                    f[name].resize(self.n_frames, axis=0)
            f.attrs["n_frames"] = self.n_frames
            f.attrs["dropped_frames"] = int(self.dropped_frames if dropped_frames is None else dropped_frames)
            if success is not None:
                f.attrs["success"] = int(success)
            f.attrs["status"] = STATUS_COMPLETE
        _fsync(self.path)
        os.replace(self.path, self.final_path)
        _fsync(self.final_path.parent)
        return self.final_path

    def _dataset_names(self) -> list[str]:
        return ["time", *VECTOR_DATASETS, *(f"cameras/{c}/{s}" for c in self._images for s in ("color", "depth"))]

    def discard(self) -> None:
        """Close and delete the partial file."""
        self.abandon()
        self.path.unlink(missing_ok=True)

    def abandon(self) -> None:
        """Close the file and leave it `.partial` with status "recording", as a crash would (also
        after a close() that failed: the file on disk keeps its whole frames, readable)."""
        self._closed = True
        try:
            if self._file:  # an h5py File is true while open
                self._file.close()
        except Exception:  # a file the disk already refused: nothing more to save
            pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        """A clean `with` block completes the episode; an exception leaves it `.partial`."""
        if exc_type is None:
            if not self._closed:
                self.close()
        else:
            self.abandon()


# ---- reading ---------------------------------------------------------------------------------------

class DepthData:
    """A camera's depth dataset read as float32 metres (NaN = no depth) whatever its encoding;
    slice it like the h5py dataset (`depth[i]`, `depth[a:b]`, `depth[[i, j]]`). `raw` is the dataset."""

    def __init__(self, ds: h5py.Dataset):
        self.raw = ds
        self.encoding = str(_attr(ds.attrs.get("encoding", "float32")))
        if self.encoding not in DEPTH_ENCODINGS:
            raise EpisodeError(f"{ds.file.filename}: depth {ds.name} has encoding {self.encoding!r}; "
                               f"this reader knows {', '.join(DEPTH_ENCODINGS)}")
        self.shape = ds.shape
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return len(self.raw)

    def __getitem__(self, index) -> np.ndarray:
        values = self.raw[index]
        return mm_to_depth(values) if self.encoding == "mm16" else values


@dataclass
class CameraData:
    name: str
    color: h5py.Dataset  # (N, H, W, 3) uint8, read lazily
    depth: DepthData  # (N, H, W) float32 metres, read lazily
    K: np.ndarray  # (3, 3)
    D: np.ndarray
    distortion_model: str
    width: int
    height: int
    frame_id: str


def _attr(value):
    """h5py attr -> plain Python (str, int, float, list of str/float)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return [_attr(v) for v in value.tolist()] if value.dtype.kind in "OSU" else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


class Episode:
    """An open episode file. Vector data are numpy arrays of the first `n_frames` (whole) frames;
    images are h5py datasets (slice them: `ep.cameras["head"].color[i]`). Close it (or use `with`).
    For a `.partial` file `n_frames` is the number of whole frames on disk."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._file = _open(self.path)
        f = self._file
        self.metadata: dict = {k: _attr(v) for k, v in f.attrs.items()}
        self.complete = (not self.path.name.endswith(PARTIAL_SUFFIX)
                         and self.metadata.get("status") == STATUS_COMPLETE)
        have = {name: f[name] for name in ("time", *VECTOR_DATASETS) if name in f}
        n = min((len(ds) for ds in have.values()), default=0)
        if not self.complete and "time" in have:
            # whole frames: /time grows after each frame's data; a crash between its resize and
            # its write leaves the fill value (NaN) at the end
            finite = np.isfinite(have["time"][:n])
            n = n if finite.all() else int(np.argmin(finite))
        self.n_frames = n
        self.time = have["time"][:n] if "time" in have else np.empty(0)
        for name in VECTOR_DATASETS:
            setattr(self, name.rpartition("/")[2],
                    have[name][:n] if name in have else np.empty((0, VECTOR_DATASETS[name]), np.float32))
        self.cameras: dict[str, CameraData] = {}
        for name, g in (f["cameras"].items() if "cameras" in f else ()):
            a = {k: _attr(v) for k, v in g.attrs.items()}
            self.cameras[name] = CameraData(
                name, g["color"], DepthData(g["depth"]), np.asarray(a.get("K", [np.nan] * 9), float).reshape(3, 3),
                np.asarray(a.get("D", []), float), str(a.get("distortion_model", "")),
                int(a.get("width", 0)), int(a.get("height", 0)), str(a.get("frame_id", "")))

    joint_position: np.ndarray
    joint_velocity: np.ndarray
    joint_effort: np.ndarray
    base_pose: np.ndarray
    base_velocity: np.ndarray
    action: np.ndarray

    @property
    def duration(self) -> float:
        return float(self.time[-1] - self.time[0]) if self.n_frames else 0.0

    @property
    def file(self) -> h5py.File:
        return self._file

    def frame(self, i: int) -> Frame:
        """Frame `i` with its images read into memory."""
        if not -self.n_frames <= i < self.n_frames:
            raise IndexError(f"frame {i} out of range ({self.n_frames} frames)")
        i %= self.n_frames
        return Frame(float(self.time[i]), *(getattr(self, n.rpartition("/")[2])[i] for n in VECTOR_DATASETS),
                     images={name: (c.color[i], c.depth[i]) for name, c in self.cameras.items()})

    def close(self) -> None:
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _open(path: Path) -> h5py.File:
    if not path.is_file():
        raise EpisodeError(f"{path}: no such file")
    try:
        return h5py.File(path, "r")
    except OSError as plain_error:
        try:  # a file a SWMR writer still has open, or left behind by a crash
            return h5py.File(path, "r", libver="latest", swmr=True)
        except OSError:
            raise EpisodeError(f"{path}: not a readable HDF5 file ({plain_error})") from None


def read_episode(path: str | Path) -> Episode:
    """Open an episode (complete or `.partial`); check `episode.complete` or validate first."""
    return Episode(path)


def validate_episode(path: str | Path, spec_hash: str | None = None) -> dict:
    """Raise EpisodeError unless `path` is a complete, consistent brs-episode; return its metadata.

    `spec_hash`: also require this robot_spec hash (e.g. `robot_spec.spec_hash()`).
    """
    path = Path(path)
    with read_episode(path) as ep:
        _validate(ep, spec_hash)
        return ep.metadata


def _validate(ep: Episode, expected_hash: str | None) -> None:
    m, f, where = ep.metadata, ep.file, str(ep.path)

    def fail(msg: str):
        raise EpisodeError(f"{where}: {msg}")

    if m.get("schema") != SCHEMA:
        fail(f"schema is {m.get('schema')!r}, expected {SCHEMA!r}: not a BRS episode file")
    if m.get("schema_version") not in READABLE_VERSIONS:
        fail(f"schema_version is {m.get('schema_version')!r}; this reader supports "
             f"{', '.join(map(str, READABLE_VERSIONS))}")
    missing = [k for k in ROOT_ATTRS if k not in m]
    if missing:
        fail(f"missing root attributes {missing}")
    if m["status"] != STATUS_COMPLETE:
        fail(f"status is {m['status']!r}, not {STATUS_COMPLETE!r}: the recording did not finish "
             "cleanly (crashed or still running)")
    if ep.path.name.endswith(PARTIAL_SUFFIX):
        fail("file name ends in .partial: an unfinished recording")
    if expected_hash is not None and m["robot_spec_hash"] != expected_hash:
        fail(f"robot_spec_hash {m['robot_spec_hash']} != {expected_hash}: recorded with a "
             "different robot spec (joints, limits or cameras changed)")
    for key, want in (("action_joints", spec.ACTION_JOINTS), ("state_joints", spec.STATE_JOINTS)):
        if tuple(m[key]) != tuple(want):
            fail(f"{key} {m[key]} differ from the robot spec's {list(want)}")
    n = m["n_frames"]
    if not isinstance(n, int) or n <= 0:
        fail(f"n_frames is {n!r}: an episode needs at least one frame")
    shapes = {"time": (n,), **{name: (n, w) for name, w in VECTOR_DATASETS.items()}}
    cameras = list(m["cameras"])
    if sorted(cameras) != sorted(ep.cameras):
        fail(f"attr cameras {cameras} but /cameras holds {sorted(ep.cameras)}")
    for name, cam in ep.cameras.items():
        shapes[f"cameras/{name}/color"] = (n, cam.height, cam.width, 3)
        shapes[f"cameras/{name}/depth"] = (n, cam.height, cam.width)
    for name, shape in shapes.items():
        if name not in f:
            fail(f"dataset /{name} is missing")
        if f[name].shape != shape:
            what = "truncated: " if f[name].shape[:1] != shape[:1] else ""
            fail(f"{what}dataset /{name} has shape {f[name].shape}, expected {shape} "
                 f"(n_frames={n})")
    for name, cam in ep.cameras.items():
        for key in CAMERA_ATTRS:
            if key not in f[f"cameras/{name}"].attrs:
                fail(f"camera {name}: attribute {key!r} missing")
        if not np.all(np.isfinite(cam.K)) or cam.K[2, 2] != 1.0:
            fail(f"camera {name}: K {cam.K.reshape(-1).tolist()} is not an intrinsic matrix")
        for stream, dtype in (("color", np.uint8), ("depth", DEPTH_ENCODINGS[cam.depth.encoding])):
            if f[f"cameras/{name}/{stream}"].dtype != dtype:
                fail(f"/cameras/{name}/{stream} has dtype {f[f'cameras/{name}/{stream}'].dtype}, "
                     f"expected {np.dtype(dtype)}")
    if not np.all(np.isfinite(ep.time)):
        fail("/time has non-finite values")
    if n > 1 and not np.all(np.diff(ep.time) > 0):
        fail("/time is not strictly increasing")
    for name in VECTOR_DATASETS.keys() - MAY_BE_NAN:
        values = f[name][...]
        bad = ~np.isfinite(values)
        if bad.any():
            frames, cols = np.nonzero(bad)
            joints = _column_names(name)
            fail(f"/{name} has {int(bad.sum())} non-finite values, first at frame {int(frames[0])} "
                 f"({joints[int(cols[0])]})")


def has_task_label(metadata: Mapping) -> bool:
    """Does an episode's metadata name its task? Datasets (LeRobot) index episodes by it, so an
    empty or blank `task` makes an episode unusable there until an exporter's --task names it."""
    return bool(str(metadata.get("task", "")).strip())


NO_TASK_LABEL_FIX = ("give it one when exporting (brs export lerobot|mcap ... --task TEXT) or re-record it "
                     "(brs record start --task TEXT)")


def _column_names(dataset: str) -> tuple[str, ...]:
    if dataset == "action":
        return spec.ACTION_JOINTS
    if dataset.startswith("observation/joint_"):
        return spec.STATE_JOINTS
    return ("x", "y", "yaw") if dataset.endswith("pose") else ("vx", "vy", "wz")


def summarize(paths: Iterable[str | Path]) -> list[dict]:
    """One row per episode file: path, status, n_frames, duration, task, source, success, error."""
    rows = []
    for p in paths:
        row = {"path": Path(p), "status": "?", "n_frames": 0, "duration": 0.0, "task": "",
               "source": "", "success": SUCCESS_UNKNOWN, "error": ""}
        try:
            with read_episode(p) as ep:
                m = ep.metadata
                row.update(status=m.get("status", "?") if ep.complete else "incomplete",
                           n_frames=ep.n_frames, duration=ep.duration, task=m.get("task", ""),
                           source=m.get("source", ""), success=m.get("success", SUCCESS_UNKNOWN))
        except (EpisodeError, OSError, KeyError) as exc:
            row.update(status="unreadable", error=str(exc))
        rows.append(row)
    return rows
