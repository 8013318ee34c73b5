"""`brs view EPISODE`: look at a recorded episode in Rerun, no running graph needed.

    brs view outputs/episodes/episode_000003.h5                 # opens the Rerun viewer
    brs view outputs/episodes/episode_000003.h5 --save ep3.rrd  # headless: `rerun ep3.rrd` later

Logged on the timeline `time` (s from the episode's first frame) and `frame`:
  cameras/<camera>/rgb, cameras/<camera>/depth  (Image, DepthImage in m, under a Pinhole with K)
  cloud                                          (Points3D: the fused point cloud in base_link,
                                                  exactly what the policy would see; --cloud-points 0: off)
  joints/<joint>/measured, joints/<joint>/target (Scalars: measured position vs recorded action)
  base/velocity/{vx,vy,wz}/measured|commanded    (Scalars)
  base/pose                                      (Points3D: the base's path in odom)
  episode                                        (TextLog: task, source, seed, outcome)
Bad input (a missing or unreadable file): one line and exit code 2 (through `brs`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from brs_common import robot_spec as spec

BASE_NAMES = ("vx", "vy", "wz")


def view_episode(path: str | Path, save: str | Path | None = None, cloud_points: int = 4096,
                 every: int = 1, spawn: bool = True, progress: bool = True) -> Path | None:
    """Log an episode to Rerun: to `save` (.rrd) or, without it, to a spawned viewer."""
    import rerun as rr
    from tqdm import tqdm

    from brs_teleop.episode import EpisodeError, read_episode

    path = Path(path)
    if save is not None and Path(save).suffix != ".rrd":
        raise ValueError(f"--save must end in .rrd; got {save}")
    if every < 1:
        raise ValueError(f"--every must be >= 1, got {every}")
    try:
        ep = read_episode(path)
    except EpisodeError as exc:
        raise ValueError(str(exc)) from None
    with ep:
        if ep.n_frames == 0:
            raise ValueError(f"{path}: no frames")
        rec = rr.RecordingStream("brs_episode", recording_id=path.stem)
        if save is not None:
            Path(save).parent.mkdir(parents=True, exist_ok=True)
            rec.save(str(save))
        elif spawn:
            rec.spawn()
        t = np.asarray(ep.time, dtype=np.float64) - float(ep.time[0])
        times = [rr.TimeColumn("time", duration=t), rr.TimeColumn("frame", sequence=np.arange(ep.n_frames))]
        # whole time series at once (columns), not one log call per sample
        state_of = {name: i for i, name in enumerate(spec.STATE_JOINTS)}
        for j, name in enumerate(spec.ACTION_JOINTS):
            if name in state_of:
                rec.send_columns(f"joints/{name}/measured", indexes=times,
                                 columns=rr.Scalars.columns(scalars=ep.joint_position[:, state_of[name]]))
                rec.send_columns(f"joints/{name}/target", indexes=times,
                                 columns=rr.Scalars.columns(scalars=ep.action[:, j]))
        base = [spec.ACTION_JOINTS.index(b) for b in spec.BASE_JOINTS]
        for k, name in enumerate(BASE_NAMES):
            rec.send_columns(f"base/velocity/{name}/measured", indexes=times,
                             columns=rr.Scalars.columns(scalars=ep.base_velocity[:, k]))
            rec.send_columns(f"base/velocity/{name}/commanded", indexes=times,
                             columns=rr.Scalars.columns(scalars=ep.action[:, base[k]]))
        meta = ep.metadata
        rec.set_time("time", duration=0.0)
        rec.log("episode", rr.TextLog(
            f"{path.name}: task {meta.get('task', '')!r}, source {meta.get('source', '')}, seed "
            f"{meta.get('seed', '')}, success {meta.get('success', '?')}, {ep.n_frames} frames, "
            f"{ep.duration:.1f} s"), static=True)
        xy = np.column_stack([ep.base_pose[:, :2], np.zeros(ep.n_frames)])
        rec.log("base/path", rr.LineStrips3D([xy]), static=True)
        for name, cam in ep.cameras.items():
            rec.log(f"cameras/{name}", rr.Pinhole(image_from_camera=np.asarray(cam.K).reshape(3, 3),
                                                  resolution=[cam.width, cam.height]), static=True)
        fuser = crop = None
        if cloud_points > 0 and ep.cameras:
            from .perception import PointCloudFuser

            fuser = PointCloudFuser(tuple(ep.cameras))
            for name, cam in ep.cameras.items():
                fuser.set_intrinsics(name, np.asarray(cam.K).reshape(3, 3), cam.width, cam.height)
            crop = meta.get("task") if meta.get("task") in _crop_names() else None
        for i in tqdm(range(0, ep.n_frames, every), desc=f"view {path.name}", unit="frame",
                      disable=not progress):
            rec.set_time("time", duration=float(t[i]))
            rec.set_time("frame", sequence=i)
            rec.log("base/pose", rr.Points3D([xy[i]], radii=0.05))
            images = {}
            for name, cam in ep.cameras.items():
                rgb, depth = np.asarray(cam.color[i]), np.asarray(cam.depth[i], dtype=np.float32)
                rec.log(f"cameras/{name}/rgb", rr.Image(rgb))
                rec.log(f"cameras/{name}/depth", rr.DepthImage(depth, meter=1.0))
                images[name] = (rgb, depth)
            if fuser is not None:
                from .perception import fuse_point_cloud

                cloud = fuse_point_cloud(images, ep.joint_position[i], crop=crop, n_points=cloud_points,
                                         fuser=fuser)
                rec.log("cloud", rr.Points3D(cloud[:, :3], colors=(cloud[:, 3:6] * 255).astype(np.uint8),
                                             radii=0.005))
        rec.flush()
        if save is not None:
            rec.disconnect()
            return Path(save)
    return None


def _crop_names() -> tuple[str, ...]:
    from .perception import CROP_BOXES

    return tuple(CROP_BOXES)
