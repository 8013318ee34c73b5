"""Training-only targets for WB-VIMA's auxiliary loss: where the task's object is, in base_link.

A sim episode records its task and seed, and a task places its objects from the seed alone
(`brs_sim.tasks.Task.placements`), so the object's start pose is known without recording any
privileged state. While the object rests (before the robot first stops at it to grasp), its pose
in base_link follows from that start pose and the recorded odometry (odom = world in the sim).
The policy never sees these targets: they only shape the point encoder during training
(`WBVIMAConfig.aux_object_weight`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from brs_common.planar import wrap_angle

MOVING = 0.03  # |base command| (m/s + rad/s) above which the base is driving
STILL = 0.005  # ... and below which it has stopped
STILL_FRAMES = 5  # frames below STILL that count as having arrived


def approach_frames(base_action: np.ndarray) -> int:
    """Frames up to the end of the first drive (the base moved, then stayed still for
    STILL_FRAMES): the object is at rest until then. The whole episode when the base never stops."""
    speed = np.linalg.norm(np.asarray(base_action, float), axis=1)
    moving = np.flatnonzero(speed > MOVING)
    if len(moving) == 0:
        return len(speed)
    still = speed < STILL
    for t in range(int(moving[0]), len(speed) - STILL_FRAMES + 1):
        if still[t:t + STILL_FRAMES].all():
            return t + STILL_FRAMES
    return len(speed)


def object_in_base(start_xyz_yaw, base_pose: np.ndarray) -> np.ndarray:
    """(N, 3) x, y, yaw of an object at world pose (x, y, yaw) seen from base poses (N, 3)."""
    ox, oy, oyaw = (float(v) for v in start_xyz_yaw)
    x, y, yaw = np.asarray(base_pose, float).T
    c, s = np.cos(yaw), np.sin(yaw)
    dx, dy = ox - x, oy - y
    rel_yaw = wrap_angle(oyaw - yaw)
    return np.stack([c * dx + s * dy, -s * dx + c * dy, rel_yaw], axis=1)


def object_pose_targets(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(targets (N, 3) float32, mask (N,) bool) for a sim episode: its task's first object in
    base_link, masked to the frames where the object is known to rest (see approach_frames).
    ValueError for an episode that names no sim task (e.g. a teleop recording on a robot)."""
    from brs_sim.tasks import TASKS
    from brs_teleop.episode import read_episode

    with read_episode(path) as ep:
        task_name = str(ep.metadata.get("task", ""))
        seed = int(ep.metadata.get("seed", 0))
        base_pose = np.asarray(ep.base_pose, float)
        base_action = np.asarray(ep.action, float)[:, :3]
    if task_name not in TASKS:
        raise ValueError(f"{path}: task {task_name!r} is not a sim task; the object-pose loss needs "
                         f"one of {', '.join(TASKS)}")
    task = TASKS[task_name]
    xyz, yaw = task.placements(None, np.random.default_rng(seed))[task.objects[0]]
    targets = object_in_base((xyz[0], xyz[1], yaw), base_pose).astype(np.float32)
    mask = np.zeros(len(targets), bool)
    mask[:approach_frames(base_action)] = True
    return targets, mask
