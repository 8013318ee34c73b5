"""The training-only object-pose loss: targets from a sim episode's seed and odometry, the mask
of frames where the object rests, and a point encoder that learns to say where the object is."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from brs_common import robot_spec as spec  # noqa: E402
from brs_policy.object_targets import approach_frames, object_in_base, object_pose_targets  # noqa: E402
from brs_policy.wbvima import WBVIMAConfig, WBVIMAPolicy  # noqa: E402
from brs_sim.tasks import TASKS  # noqa: E402
from brs_teleop.episode import EpisodeMetadata, EpisodeWriter, Frame  # noqa: E402

N_STATE = len(spec.STATE_JOINTS)


def _drive_then_stop(n=40, drive=12):
    """Base commands: 0.3 m/s forward for `drive` frames (after 2 still ones), then still."""
    action = np.zeros((n, spec.ACTION_DIM), np.float32)
    action[2:2 + drive, 0] = 0.3
    pose = np.zeros((n, 3), np.float32)
    pose[:, 0] = -0.45 + 0.03 * np.clip(np.arange(n) - 2, 0, drive)  # 0.1 s frames
    pose[:, 2] = 0.01 * np.arange(n)
    return action, pose


def _write(folder, task, seed, action, pose):
    w = EpisodeWriter(folder, EpisodeMetadata(task=task, seed=seed, source="expert"))
    for t in range(len(action)):
        w.add_frame(Frame(time=0.1 * t, joint_position=np.zeros(N_STATE), joint_velocity=np.zeros(N_STATE),
                          joint_effort=np.zeros(N_STATE), base_pose=pose[t], base_velocity=action[t, :3],
                          action=action[t]))
    return w.close()


def test_approach_frames_end_when_the_base_has_stopped():
    action, _ = _drive_then_stop()
    assert approach_frames(action[:, :3]) == 2 + 12 + 5  # drive ends at frame 14, 5 still frames
    assert approach_frames(np.zeros((10, 3))) == 10  # never drives: the object rests throughout
    assert approach_frames(np.full((10, 3), 0.2)) == 10  # never stops


def test_object_in_base_rotates_and_translates():
    # robot at (1, 1) facing +y; an object 0.5 m ahead of it, turned 0.2 rad more
    out = object_in_base((1.0, 1.5, np.pi / 2 + 0.2), np.array([[1.0, 1.0, np.pi / 2]]))
    np.testing.assert_allclose(out[0], [0.5, 0.0, 0.2], atol=1e-12)
    # yaw wraps into (-pi, pi]
    assert object_in_base((0, 0, 3.0), np.array([[0.0, 0.0, -3.0]]))[0, 2] == pytest.approx(6.0 - 2 * np.pi)


def test_targets_come_from_the_seed_and_the_odometry(tmp_path):
    action, pose = _drive_then_stop()
    path = _write(tmp_path, "bimanual_box", 7, action, pose)
    targets, mask = object_pose_targets(path)
    task = TASKS["bimanual_box"]
    xyz, yaw = task.placements(None, np.random.default_rng(7))["box"]
    expected = object_in_base((xyz[0], xyz[1], yaw), pose.astype(float))
    np.testing.assert_allclose(targets, expected, atol=1e-5)
    assert mask[:19].all() and not mask[19:].any(), mask
    # another seed puts the box elsewhere
    other, _ = object_pose_targets(_write(tmp_path, "bimanual_box", 8, action, pose))
    assert np.abs(other[0] - targets[0]).max() > 1e-3


def test_targets_need_a_sim_task(tmp_path):
    action, pose = _drive_then_stop(n=5, drive=2)
    with pytest.raises(ValueError, match="not a sim task"):
        object_pose_targets(_write(tmp_path, "kitchen_teleop", 0, action, pose))


def _object_batch(rng, b=32, n_points=32):
    """Clouds of clutter plus a red object at a random (x, y); the target is that (x, y, 0)."""
    pts = np.concatenate([rng.uniform([0.2, -0.8, 0.0], [1.5, 0.8, 0.3], (b, 2, n_points, 3)),
                          np.full((b, 2, n_points, 3), 0.5)], axis=-1)
    obj = np.stack([rng.uniform(0.5, 1.0, b), rng.uniform(-0.3, 0.3, b), np.zeros(b)], axis=1)
    pts[:, :, :4, :3] = obj[:, None, None, :3] + rng.normal(0, 0.01, (b, 2, 4, 3))
    pts[:, :, :4, 3:] = (1.0, 0.0, 0.0)
    batch = {"points": pts, "proprio": np.zeros((b, 2, 21)), "actions": rng.normal(0, 0.1, (b, 2, 8, 21)),
             "object_pose": np.repeat(obj[:, None], 2, axis=1), "object_mask": np.ones((b, 2), bool)}
    return {k: torch.as_tensor(v, dtype=torch.bool if v.dtype == bool else torch.float32) for k, v in batch.items()}


def test_object_loss_is_masked_and_trains_the_point_encoder():
    torch.manual_seed(0)
    model = WBVIMAPolicy(WBVIMAConfig.tiny(n_points=32, aux_object_weight=1.0))
    plain = WBVIMAPolicy(WBVIMAConfig.tiny(n_points=32))
    assert model.aux_head is not None and plain.aux_head is None
    rng = np.random.default_rng(0)
    model.fit_normalizers(rng.normal(size=(200, 21)), rng.normal(size=(200, 21)))
    batch = _object_batch(rng)
    # nothing known: the action loss alone
    torch.manual_seed(1)
    unmasked, parts = model.compute_loss(batch)
    torch.manual_seed(1)
    masked, masked_parts = model.compute_loss({**batch, "object_mask": torch.zeros_like(batch["object_mask"])})
    assert masked_parts["object_pose"] == 0.0 and parts["object_pose"] > 0.0
    assert float((unmasked - masked).detach()) == pytest.approx(parts["object_pose"], rel=1e-4)
    # the object loss alone teaches the point encoder where the red points are
    opt = torch.optim.Adam(list(model.pointnet.parameters()) + list(model.aux_head.parameters()), lr=3e-3)
    first = last = None
    for step in range(300):
        b = _object_batch(rng)
        tokens = model.obs_tokens(b["points"], b["proprio"])
        loss = model._aux_loss(tokens[..., 0, :], b["object_pose"], b["object_mask"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = loss.item() if step == 0 else first
        last = loss.item()
    assert last < 0.2 * first, (first, last)


def test_object_loss_can_read_the_transformer_readout():
    """aux_object_token="readout": the pose is predicted from what conditions the action heads, so
    the loss's gradient reaches the transformer (with "point" it stops at the point encoder)."""
    rng = np.random.default_rng(0)
    batch = _object_batch(rng)
    grads = {}
    for token in ("point", "readout"):
        torch.manual_seed(0)
        model = WBVIMAPolicy(WBVIMAConfig.tiny(n_points=32, aux_object_weight=1.0, aux_object_token=token)).eval()
        model.fit_normalizers(rng.normal(size=(200, 21)), rng.normal(size=(200, 21)))
        _, parts = model.compute_loss(batch)
        tokens = model.obs_tokens(batch["points"], batch["proprio"])
        source = tokens[..., 0, :] if token == "point" else model.transformer(tokens)
        aux = model._aux_loss(source, batch["object_pose"], batch["object_mask"])
        assert parts["object_pose"] == pytest.approx(aux.item(), rel=1e-5)
        aux.backward()
        grads[token] = sum(float(p.grad.abs().sum()) for p in model.transformer.parameters() if p.grad is not None)
    assert grads["point"] == 0.0 and grads["readout"] > 0.0, grads
    with pytest.raises(ValueError, match="aux_object_token"):
        WBVIMAConfig(aux_object_token="cloud")
