"""Export a folder of brs episodes (HDF5) as a LeRobotDataset v3.0 folder.

    export_lerobot("data/demos", "data/demos_lerobot", repo_id="me/brs_demos")

Layout written (LeRobot's v3.0 defaults; every table with pyarrow):
    meta/info.json                           codebase_version "v3.0", fps, features, path templates
    meta/stats.json                          min/max/mean/std/count/q01..q99 per feature
    meta/tasks.parquet                       task text (pandas index) -> task_index
    meta/episodes/chunk-000/file-000.parquet one row per episode: length, tasks, data/video
                                             locations, dataset_from/to_index, per-episode stats
    data/chunk-CCC/file-FFF.parquet          one row per frame (episodes concatenated)
    videos/observation.images.<camera>/chunk-CCC/file-FFF.mp4   H.264 yuv420p, episodes
                                             concatenated; episode k starts at its from_timestamp
    README.md                                dataset card (repo id, how to load)

Frame features: `observation.state` = joint positions (STATE_JOINTS) + base velocity (vx, vy, wz),
`action` = the executed 21-D command (ACTION_JOINTS), `observation.velocity`,
`observation.effort`, `observation.base_pose`, `observation.images.<camera>` (video) and
`observation.depth.<camera>`: uint16 millimetres, shape (H, W), 0 = no depth (the ROS 16UC1
convention of REP-118; 1 mm steps, up to 65.534 m). Depth is stored losslessly in the data
parquet rather than as a (lossy) video; `include_depth=False` leaves it out.
`timestamp` = frame_index / fps: LeRobot requires frames exactly 1/fps apart, so the recorded
ROS times are not copied; they are only used to pick frames when exporting at a lower fps.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from brs_common import robot_spec as spec
from brs_teleop import episode as ep_format
from brs_teleop.export_common import (ExportError, check_output_dir, check_task_labels, collect_episodes,
                                      staged_output, task_label)

CODEBASE_VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
CHUNKS_SIZE = 1000  # files per chunk folder
DATA_FILES_SIZE_IN_MB = 100  # a new data / video file starts (at an episode boundary) past these
VIDEO_FILES_SIZE_IN_MB = 200
ROBOT_TYPE = "brs"
VIDEO_CODEC, VIDEO_PIX_FMT = "h264", "yuv420p"
VIDEO_GOP = 2  # keyframe every 2 frames, as LeRobot encodes: cheap random access when training
VIDEO_CRF = 20
BLOCK_FRAMES = 32  # frames read from HDF5 and written as one parquet row group at a time

STATE_NAMES = (*spec.STATE_JOINTS, "base_vx", "base_vy", "base_wz")
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
INDEX_FEATURES = ("timestamp", "frame_index", "episode_index", "index", "task_index")


def image_key(camera: str) -> str:
    return f"observation.images.{camera}"


def depth_key(camera: str) -> str:
    return f"observation.depth.{camera}"


@dataclass(frozen=True)
class ExportSummary:
    out_dir: Path
    episodes: int
    frames: int
    fps: int
    seconds: float
    warnings: tuple[str, ...] = ()  # e.g. episodes with gaps (dropped frames)

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")


# ---- features -------------------------------------------------------------------------------------

def _video_feature(height: int, width: int, fps: int) -> dict:
    return {"dtype": "video", "shape": [height, width, 3], "names": ["height", "width", "channels"],
            "info": {"video.height": height, "video.width": width, "video.codec": VIDEO_CODEC,
                     "video.pix_fmt": VIDEO_PIX_FMT, "video.is_depth_map": False,
                     "video.fps": fps, "video.channels": 3, "has_audio": False}}


def build_features(cameras: dict[str, tuple[int, int]], fps: int, include_depth: bool) -> dict:
    """info.json `features` for cameras {name: (video height, video width)}."""
    vec = lambda names: {"dtype": "float32", "shape": [len(names)], "names": list(names)}  # noqa: E731
    features = {
        "observation.state": vec(STATE_NAMES),
        "action": vec(spec.ACTION_JOINTS),
        "observation.velocity": vec(spec.STATE_JOINTS),
        "observation.effort": vec(spec.STATE_JOINTS),
        "observation.base_pose": vec(("x", "y", "yaw")),
    }
    for cam, (h, w) in cameras.items():
        features[image_key(cam)] = _video_feature(h, w, fps)
    if include_depth:
        for cam, (h, w) in cameras.items():
            features[depth_key(cam)] = {
                "dtype": "uint16", "shape": [h, w], "names": ["height", "width"],
                "info": {"unit": "mm", "invalid_value": 0, "source": "depth float32 m, rounded"}}
    features["timestamp"] = {"dtype": "float32", "shape": [1], "names": None}
    for key in INDEX_FEATURES[1:]:
        features[key] = {"dtype": "int64", "shape": [1], "names": None}
    return features


def _arrow_type(feature: dict) -> pa.DataType:
    """The Arrow type HF `datasets` gives the feature (Value, fixed-length List, Array2D)."""
    dtype = pa.from_numpy_dtype(np.dtype(feature["dtype"]))
    shape = feature["shape"]
    if shape == [1]:
        return dtype
    if len(shape) == 1:
        return pa.list_(dtype, shape[0])
    return pa.list_(pa.list_(dtype))  # Array2D storage: nested variable-size lists


def data_schema(features: dict) -> pa.Schema:
    return pa.schema([(k, _arrow_type(f)) for k, f in features.items() if f["dtype"] != "video"])


def _column(values: np.ndarray, typ: pa.DataType) -> pa.Array:
    """Arrow array of `typ` from an (n, ...) numpy array, without per-element Python work."""
    if not pa.types.is_list(typ) and not pa.types.is_fixed_size_list(typ):
        return pa.array(values, type=typ)
    n = values.shape[0]
    if pa.types.is_fixed_size_list(typ):
        flat = pa.array(values.reshape(-1), type=typ.value_type)
        return pa.FixedSizeListArray.from_arrays(flat, typ.list_size)
    h, w = values.shape[1:3]  # (n, h, w) -> list<list<v>>
    rows = pa.ListArray.from_arrays(pa.array(np.arange(0, n * h + 1, dtype=np.int32) * w),
                                    pa.array(values.reshape(-1), type=typ.value_type.value_type))
    return pa.ListArray.from_arrays(pa.array(np.arange(0, n + 1, dtype=np.int32) * h), rows)


# ---- statistics -------------------------------------------------------------------------------------

class _Stats:
    """Per-channel min/max/mean/std/count plus quantiles from a bounded uniform sample.

    `add(summarize(rows), frames)` takes rows (m, C): C channels (vector entries or colours).
    Quantiles come from at most `max_samples` rows, thinned uniformly (each row seen is kept
    with the same probability), so they are exact for small data and a fair estimate beyond.
    """

    def __init__(self, channels: int, max_samples: int = 50_000, seed: int = 0):
        self.n = 0
        self.frames = 0
        self.sum = np.zeros(channels)
        self.sumsq = np.zeros(channels)
        self.min = np.full(channels, np.inf)
        self.max = np.full(channels, -np.inf)
        self._sample: list[np.ndarray] = []
        self._sampled = 0
        self._keep = 1.0
        self._max = max_samples
        self._rng = np.random.default_rng(seed)

    @staticmethod
    def summarize(rows: np.ndarray) -> tuple:
        """The sums of a block of rows, computed once and added to several _Stats."""
        x = np.asarray(rows, dtype=np.float64)
        return x, x.sum(axis=0), np.square(x).sum(axis=0), x.min(axis=0), x.max(axis=0)

    def add(self, block: tuple, frames: int) -> None:
        x, total, total_sq, lo, hi = block
        self.frames += frames
        self.n += x.shape[0]
        self.sum += total
        self.sumsq += total_sq
        self.min = np.minimum(self.min, lo)
        self.max = np.maximum(self.max, hi)
        if self._keep < 1.0:
            x = x[self._rng.random(x.shape[0]) < self._keep]
        self._sample.append(x)
        self._sampled += x.shape[0]
        while self._sampled > self._max:  # thin everything kept so far by half
            self._sample = [s[self._rng.random(s.shape[0]) < 0.5] for s in self._sample]
            self._sampled = sum(s.shape[0] for s in self._sample)
            self._keep /= 2

    def result(self, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
        mean = self.sum / max(self.n, 1)
        std = np.sqrt(np.maximum(self.sumsq / max(self.n, 1) - mean ** 2, 0.0))
        out = {"min": self.min, "max": self.max, "mean": mean, "std": std}
        sample = np.concatenate(self._sample) if self._sample else np.zeros((1, mean.size))
        for name, q in QUANTILES.items():
            out[name] = np.quantile(sample, q, axis=0)
        out = {k: v.reshape(shape) for k, v in out.items()}
        out["count"] = np.array([self.frames])
        return out


def _stats_layout(features: dict) -> dict[str, tuple[int, tuple[int, ...]]]:
    """feature -> (channels, stats shape): vectors per entry, images per colour (3, 1, 1),
    depth and scalars one channel."""
    out = {}
    for key, f in features.items():
        if f["dtype"] == "video":
            out[key] = (3, (3, 1, 1))
        elif len(f["shape"]) == 1:
            out[key] = (f["shape"][0], (f["shape"][0],))
        else:
            out[key] = (1, (1,))
    return out


def _stats_rows(key: str, values: np.ndarray, features: dict) -> np.ndarray:
    """Rows for _Stats.update: colour in [0, 1] on a 4x4 pixel grid (as LeRobot downsamples)."""
    f = features[key]
    if f["dtype"] == "video":
        return values[:, ::4, ::4].reshape(-1, 3) / 255.0
    if len(f["shape"]) == 2:
        return values[:, ::4, ::4].reshape(-1, 1)
    return values.reshape(values.shape[0], -1)


def _jsonable(stats: dict[str, dict[str, np.ndarray]]) -> dict:
    return {k: {s: v.tolist() for s, v in st.items()} for k, st in stats.items()}


# ---- output files -----------------------------------------------------------------------------------

class _Shards:
    """chunk/file index of the current output file; a new file starts once it passed max_mb."""

    def __init__(self, root: Path, template: str, max_mb: float, **fmt):
        self.root, self.template, self.fmt = root, template, fmt
        self.max_bytes = max_mb * 1024 ** 2
        self.chunk = self.file = 0

    @property
    def path(self) -> Path:
        return self.root / self.template.format(chunk_index=self.chunk, file_index=self.file, **self.fmt)

    def full(self) -> bool:
        """The current file reached the size limit (as far as its writer flushed it)."""
        size = self.path.stat().st_size if self.path.exists() else 0
        return size >= self.max_bytes

    def advance(self) -> None:
        self.file += 1
        if self.file >= CHUNKS_SIZE:
            self.chunk, self.file = self.chunk + 1, 0


class _DataWriter:
    """Frame rows into data/chunk-CCC/file-FFF.parquet, one row group per block."""

    def __init__(self, root: Path, schema: pa.Schema):
        self.shards = _Shards(root, DATA_PATH, DATA_FILES_SIZE_IN_MB)
        self.schema = schema
        self._writer: pq.ParquetWriter | None = None

    def start_episode(self) -> tuple[int, int]:
        if self._writer is not None and self.shards.full():
            self._writer.close()
            self._writer = None
            self.shards.advance()
        if self._writer is None:
            self.shards.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self.shards.path, self.schema, compression="zstd")
        return self.shards.chunk, self.shards.file

    def write(self, columns: dict[str, np.ndarray]) -> None:
        arrays = [_column(columns[f.name], f.type) for f in self.schema]
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class _VideoWriter:
    """One camera's frames into videos/<key>/chunk-CCC/file-FFF.mp4 (episodes concatenated)."""

    def __init__(self, root: Path, key: str, size_hw: tuple[int, int], fps: int):
        self.shards = _Shards(root, VIDEO_PATH, VIDEO_FILES_SIZE_IN_MB, video_key=key)
        self.h, self.w = size_hw
        self.fps = fps
        self.frames_in_file = 0
        self._gen = None

    def start_episode(self) -> tuple[int, int, float]:
        if self._gen is not None and self.shards.full():
            self.close()
            self.shards.advance()
        if self._gen is None:
            import imageio_ffmpeg

            self.shards.path.parent.mkdir(parents=True, exist_ok=True)
            self._gen = imageio_ffmpeg.write_frames(
                str(self.shards.path), (self.w, self.h), fps=self.fps, codec="libx264",
                pix_fmt_out=VIDEO_PIX_FMT, quality=None, macro_block_size=2,
                ffmpeg_log_level="error",
                output_params=["-crf", str(VIDEO_CRF), "-g", str(VIDEO_GOP),
                               "-movflags", "+faststart"])
            self._gen.send(None)
            self.frames_in_file = 0
        return self.shards.chunk, self.shards.file, self.frames_in_file / self.fps

    def write(self, rgb: np.ndarray) -> None:
        for frame in rgb:
            self._gen.send(np.ascontiguousarray(frame[: self.h, : self.w]))
        self.frames_in_file += len(rgb)

    def close(self) -> None:
        if self._gen is not None:
            self._gen.close()
            self._gen = None


def _write_tasks(path: Path, tasks: list[str]) -> None:
    """tasks.parquet as pandas writes a DataFrame indexed by task text (LeRobot reads it with
    pd.read_parquet and looks tasks up by that index)."""
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode",
                            "numpy_type": "object", "metadata": {"encoding": "UTF-8"}}],
        "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
             "numpy_type": "int64", "metadata": None},
            {"name": "task", "field_name": "task", "pandas_type": "unicode",
             "numpy_type": "object", "metadata": None},
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.3",
    }
    schema = pa.schema([("task_index", pa.int64()), ("task", pa.string())],
                       metadata={b"pandas": json.dumps(pandas_meta).encode()})
    table = pa.Table.from_arrays([pa.array(range(len(tasks)), pa.int64()), pa.array(tasks, pa.string())],
                                 schema=schema)
    pq.write_table(table, path)


def _write_card(path: Path, repo_id: str, info: dict, source: Path) -> None:
    features = "\n".join(f"| `{k}` | {f['dtype']} | {f['shape']} |" for k, f in info["features"].items())
    path.write_text(
        "---\nlicense: other\ntask_categories:\n- robotics\ntags:\n- LeRobot\n- brs\n"
        "configs:\n- config_name: default\n  data_files: data/*/*.parquet\n---\n\n"
        f"# {repo_id}\n\nBRS whole-body teleoperation episodes exported from `{source}` as a "
        f"LeRobotDataset {CODEBASE_VERSION}: {info['total_episodes']} episodes, "
        f"{info['total_frames']} frames at {info['fps']} fps.\n\n"
        "```python\nfrom lerobot.datasets.lerobot_dataset import LeRobotDataset\n"
        f"ds = LeRobotDataset({repo_id!r}, root=\"<this folder>\")\n```\n\n"
        "| feature | dtype | shape |\n|---|---|---|\n" + features + "\n\n"
        "`observation.depth.*`: uint16 millimetres, 0 = no depth. "
        "`timestamp` = frame_index / fps.\n")


# ---- export -----------------------------------------------------------------------------------------

def _frame_indices(times: np.ndarray, rate_hz: float, fps: int) -> np.ndarray:
    """All frames at the recorded rate, else the frames nearest to t0 + k / fps."""
    if abs(rate_hz - fps) < 1e-6:
        return np.arange(len(times))
    targets = times[0] + np.arange(0.0, times[-1] - times[0] + 0.5 / fps, 1.0 / fps)
    after = np.clip(np.searchsorted(times, targets), 0, len(times) - 1)
    before = np.maximum(after - 1, 0)
    nearest = np.where(np.abs(times[before] - targets) <= np.abs(times[after] - targets), before, after)
    return np.unique(nearest)


def _read_block(ds, idx: np.ndarray) -> np.ndarray:
    """ds[idx] for sorted unique indices, as one slice where they are contiguous."""
    if idx[-1] - idx[0] + 1 == len(idx):
        return ds[int(idx[0]): int(idx[-1]) + 1]
    return ds[idx]


def _dataset_shape(episodes: list[Path], fps: int | None) -> tuple[int, dict, list[float]]:
    """(fps, cameras {name: even (h, w)}, rates) checked to be the same for every episode."""
    cameras, rates = None, []
    for path in episodes:
        with ep_format.read_episode(path) as ep:
            rates.append(float(ep.metadata["rate_hz"]))
            cams = {name: (c.height, c.width) for name, c in ep.cameras.items()}
        if cameras is None:
            cameras = cams
        elif cams != cameras:
            raise ExportError(f"{path}: cameras {cams} differ from the first episode's {cameras}; "
                              "a LeRobot dataset needs the same cameras in every episode")
    if fps is None:
        if len({round(r, 6) for r in rates}) > 1 or abs(rates[0] - round(rates[0])) > 1e-6:
            raise ExportError(f"episodes were recorded at {sorted(set(rates))} Hz; LeRobot needs one "
                              "integer fps: pass --fps")
        fps = int(round(rates[0]))
    if fps <= 0 or fps > min(rates) + 1e-6:
        raise ExportError(f"--fps {fps} must be between 1 and the lowest recorded rate "
                          f"{min(rates):g} Hz (frames are picked, never invented)")
    even = {name: (h - h % 2, w - w % 2) for name, (h, w) in cameras.items()}  # yuv420p needs even
    for name, (h, w) in even.items():
        if h == 0 or w == 0:
            raise ExportError(f"camera {name} image {cameras[name]} is too small for a video")
    return fps, even, rates


def export_lerobot(dataset_dir: str | Path, out_dir: str | Path, *, repo_id: str | None = None,
                   fps: int | None = None, include_depth: bool = True, overwrite: bool = False,
                   skip_incomplete: bool = False, default_task: str = "",
                   progress: bool | None = None) -> ExportSummary:
    """Convert the complete episodes of `dataset_dir` into a LeRobotDataset v3.0 at `out_dir`.

    `fps`: output frame rate (default: the recorded rate, which must be an integer); lower than
    the recorded rate picks the frame nearest to each 1/fps step. `default_task` names episodes
    recorded without a task. Raises ExportError (nothing written) for incomplete or invalid
    episodes, mismatched cameras, or a non-empty `out_dir` without `overwrite`.
    """
    from tqdm import tqdm

    start = time.perf_counter()
    dataset_dir = Path(dataset_dir)
    episodes = collect_episodes(dataset_dir, skip_incomplete=skip_incomplete)
    check_task_labels(episodes, default_task, "LeRobot needs one per frame")
    out = check_output_dir(out_dir, episodes, overwrite=overwrite)
    fps, cameras, rates = _dataset_shape(episodes, fps)
    features = build_features(cameras, fps, include_depth)
    layout = _stats_layout(features)
    schema = data_schema(features)
    total_stats = {k: _Stats(c) for k, (c, _) in layout.items()}
    tasks: dict[str, int] = {}
    episode_rows: list[dict] = []
    warnings: list[str] = []
    frames_total = 0

    with staged_output(out) as root:
        data = _DataWriter(root, schema)
        videos = {cam: _VideoWriter(root, image_key(cam), hw, fps) for cam, hw in cameras.items()}
        try:
            bar = tqdm(episodes, desc="lerobot export", unit="episode",
                       disable=None if progress is None else not progress)
            for ep_index, (path, rate) in enumerate(zip(bar, rates)):
                with ep_format.read_episode(path) as ep:
                    row = _export_episode(ep, ep_index, rate, fps, frames_total, tasks, default_task,
                                          features, layout, total_stats, data, videos)
                    warnings += _gap_warnings(ep, fps)
                episode_rows.append(row)
                frames_total += row["length"]
        finally:
            data.close()
            for v in videos.values():
                v.close()
        info = {
            "codebase_version": CODEBASE_VERSION, "robot_type": ROBOT_TYPE,
            "total_episodes": len(episode_rows), "total_frames": frames_total,
            "total_tasks": len(tasks), "chunks_size": CHUNKS_SIZE,
            "data_files_size_in_mb": DATA_FILES_SIZE_IN_MB,
            "video_files_size_in_mb": VIDEO_FILES_SIZE_IN_MB, "fps": fps,
            "splits": {"train": f"0:{len(episode_rows)}"},
            "data_path": DATA_PATH, "video_path": VIDEO_PATH if cameras else None,
            "features": features,
        }
        meta = root / "meta"
        (meta / "episodes/chunk-000").mkdir(parents=True)
        (meta / "info.json").write_text(json.dumps(info, indent=4))
        stats = {k: s.result(layout[k][1]) for k, s in total_stats.items()}
        (meta / "stats.json").write_text(json.dumps(_jsonable(stats), indent=4))
        _write_tasks(meta / "tasks.parquet", list(tasks))
        pq.write_table(pa.Table.from_pylist(episode_rows),
                       root / EPISODES_PATH.format(chunk_index=0, file_index=0))
        _write_card(root / "README.md", repo_id or f"local/{out.name}", info, dataset_dir)
    return ExportSummary(out, len(episode_rows), frames_total, fps, time.perf_counter() - start,
                         tuple(warnings))


def _gap_warnings(ep, fps: int) -> list[str]:
    """Gaps between recorded frames of over 1.5 periods at the output fps (frames the recorder
    dropped): LeRobot's timestamps are nominal, so the exported motion runs faster there."""
    idx = _frame_indices(ep.time, float(ep.metadata["rate_hz"]), fps)
    gaps = np.diff(ep.time[idx]) > 1.5 / fps
    if not gaps.any():
        return []
    return [f"{ep.path.name}: {int(gaps.sum())} gap(s) longer than 1.5 frames (first after frame "
            f"{int(np.argmax(gaps))}); the exported timestamps close them up"]


def _export_episode(ep, ep_index, rate, fps, offset, tasks, default_task, features, layout,
                    total_stats, data, videos) -> dict:
    """Write one episode's frames; return its meta/episodes row."""
    task = task_label(ep.metadata, default_task)
    task_index = tasks.setdefault(task, len(tasks))
    idx = _frame_indices(ep.time, rate, fps)
    n = len(idx)
    stats = {k: _Stats(c) for k, (c, _) in layout.items()}
    data_chunk, data_file = data.start_episode()
    row = {"episode_index": ep_index, "tasks": [task], "length": n,
           "data/chunk_index": data_chunk, "data/file_index": data_file,
           "dataset_from_index": offset, "dataset_to_index": offset + n}
    for cam, writer in videos.items():
        chunk, file, t0 = writer.start_episode()
        key = image_key(cam)
        row.update({f"videos/{key}/chunk_index": chunk, f"videos/{key}/file_index": file,
                    f"videos/{key}/from_timestamp": t0, f"videos/{key}/to_timestamp": t0 + n / fps})
    for lo in range(0, n, BLOCK_FRAMES):
        block = idx[lo: lo + BLOCK_FRAMES]
        frame_index = np.arange(lo, lo + len(block), dtype=np.int64)
        cols = {
            "observation.state": np.concatenate([ep.joint_position[block], ep.base_velocity[block]], axis=1),
            "action": ep.action[block],
            "observation.velocity": ep.joint_velocity[block],
            "observation.effort": ep.joint_effort[block],
            "observation.base_pose": ep.base_pose[block],
            "timestamp": (frame_index / fps).astype(np.float32),
            "frame_index": frame_index,
            "episode_index": np.full(len(block), ep_index, np.int64),
            "index": offset + frame_index,
            "task_index": np.full(len(block), task_index, np.int64),
        }
        for cam, writer in videos.items():
            h, w = writer.h, writer.w
            rgb = _read_block(ep.cameras[cam].color, block)[:, :h, :w]
            writer.write(rgb)
            cols[image_key(cam)] = rgb
            if depth_key(cam) in features:
                cols[depth_key(cam)] = ep_format.depth_to_mm(_read_block(ep.cameras[cam].depth, block)[:, :h, :w])
        data.write(cols)
        for key, values in cols.items():
            summary = _Stats.summarize(_stats_rows(key, values, features))
            stats[key].add(summary, len(block))
            total_stats[key].add(summary, len(block))
    for key, st in stats.items():
        for name, value in st.result(layout[key][1]).items():
            row[f"stats/{key}/{name}"] = value.tolist()
    m = ep.metadata
    row.update({"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0,
                "brs/file": ep.path.name, "brs/source": str(m["source"]), "brs/success": int(m["success"]),
                "brs/seed": int(m["seed"]), "brs/created_utc": str(m["created_utc"]),
                "brs/robot_spec_hash": str(m["robot_spec_hash"])})
    return row
