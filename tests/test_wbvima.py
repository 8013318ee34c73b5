"""WB-VIMA: model shapes, autoregressive conditioning, DDIM, normaliser, checkpoints, dataset
windows, a tiny training run and exact resume. CPU, tiny configs, synthetic episodes."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
h5py = pytest.importorskip("h5py")

from brs_common import robot_spec as spec  # noqa: E402
from brs_policy.dataset import WindowDataset  # noqa: E402
from brs_policy.train import TrainConfig, train  # noqa: E402
from brs_policy.wbvima import (CheckpointError, Normalizer, WBVIMAConfig, WBVIMAPolicy,  # noqa: E402
                               load_policy, save_checkpoint)
from brs_teleop.episode import CameraIntrinsics, EpisodeMetadata, EpisodeWriter, Frame  # noqa: E402

torch.set_num_threads(1)
N_STATE = len(spec.STATE_JOINTS)
CLOUD = 48  # points per synthetic cloud


def tiny_model(**kw) -> WBVIMAPolicy:
    torch.manual_seed(0)
    m = WBVIMAPolicy(WBVIMAConfig.tiny(n_points=32, **kw))
    rng = np.random.default_rng(0)
    m.fit_normalizers(rng.normal(size=(200, 21)), rng.normal(size=(200, 21)))
    return m.eval()


def points_fn(images, q):
    """Deterministic synthetic cloud: a grid shifted by the first joint, coloured by the image."""
    color, depth = images["head"]
    g = np.linspace(-0.5, 0.5, CLOUD, dtype=np.float32)
    xyz = np.stack([1.0 + g + 0.3 * q[0], g[::-1], 0.5 + float(depth.mean()) * g], axis=1)
    rgb = np.broadcast_to(color.reshape(-1, 3).mean(0) / 255.0, (CLOUD, 3))
    return np.concatenate([xyz, rgb], axis=1).astype(np.float32)


points_fn.cache_key = "test-synthetic-v1"
points_fn.calls = 0


def counting_points_fn(images, q):
    counting_points_fn.calls += 1
    return points_fn(images, q)


counting_points_fn.cache_key = "test-synthetic-v1"
counting_points_fn.calls = 0


def write_episodes(folder, n_episodes=3, n_frames=30):
    """Episodes whose actions follow a smooth, phase-dependent whole-body motion."""
    paths = []
    for e in range(n_episodes):
        meta = EpisodeMetadata(cameras={"head": CameraIntrinsics(K=(8, 0, 4, 0, 8, 3, 0, 0, 1), width=8,
                                                                 height=6)}, task="synthetic", seed=e)
        w = EpisodeWriter(folder, meta)
        phase = 0.4 * e
        for t in range(n_frames):
            s = t / n_frames
            action = np.concatenate([
                [0.2 * np.sin(2 * np.pi * s + phase), 0.1, 0.3 * np.cos(2 * np.pi * s)],
                0.5 * np.sin(np.pi * s + np.arange(4) + phase),
                0.8 * np.sin(np.pi * s + np.arange(14) * 0.3 + phase),
            ]).astype(np.float32)
            q = np.concatenate([action[3:]]).astype(np.float32)  # state follows the command
            color = np.full((6, 8, 3), int(255 * s), np.uint8)
            depth = np.full((6, 8), 1.0 + s, np.float32)
            w.add_frame(Frame(time=0.1 * t, joint_position=q, joint_velocity=np.zeros(N_STATE),
                              joint_effort=np.zeros(N_STATE), base_pose=np.zeros(3),
                              base_velocity=action[:3], action=action, images={"head": (color, depth)}))
        paths.append(w.close())
    return paths


@pytest.fixture(scope="module")
def episodes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("episodes")
    return folder, write_episodes(folder)


def tiny_train_config(folder, out, **kw) -> TrainConfig:
    base = dict(data=str(folder), out=str(out), steps=100, batch=16, points=32, val_episodes=1,
                ckpt_every=50, val_every=50, val_batches=1, seed=0, device="cpu", progress=False,
                plot=True, model={"n_points": 32, **WBVIMAConfig.tiny().__dict__ | {"n_points": 32}})
    base["model"] = {k: v for k, v in base["model"].items() if k not in ("parts", "xyz_box")}
    base.update(kw)
    return TrainConfig(**base)


# ---- model -----------------------------------------------------------------------------------------

def test_default_config_is_the_public_one():
    c = WBVIMAConfig()
    assert (c.obs_window, c.horizon, c.n_action_steps, c.n_points) == (2, 8, 8, 4096)
    assert (c.pointnet_hidden, c.pointnet_depth, c.proprio_hidden, c.proprio_depth) == (256, 2, 256, 2)
    assert (c.embed_dim, c.n_layers, c.n_heads, c.dropout, c.geglu) == (256, 2, 8, 0.1, True)
    assert c.unet_down_dims == (64, 128) and (c.unet_kernel_size, c.unet_n_groups) == (5, 8)
    assert (c.diffusion_step_embed_dim, c.num_train_timesteps, c.num_inference_steps) == (128, 100, 16)
    assert c.parts == {"base": (0, 3), "torso": (3, 7), "arms": (7, 21)}
    assert WBVIMAConfig.from_json(c.to_json()) == c


def test_shapes_and_predict():
    m = tiny_model()
    b, cfg = 3, m.config
    batch = {"points": torch.rand(b, 2, 32, 6), "proprio": torch.randn(b, 2, 21),
             "actions": torch.randn(b, 2, cfg.horizon, 21)}
    m.train()
    loss, parts = m.compute_loss(batch)
    assert loss.shape == () and set(parts) == {"base", "torso", "arms"}
    loss.backward()
    assert all(p.grad is not None for p in m.heads.parameters())
    assert m.encode(batch["points"], batch["proprio"]).shape == (b, 2, cfg.embed_dim)
    obs = {"points": np.random.rand(2, 50, 6).astype(np.float32), "proprio": np.zeros((2, 21), np.float32)}
    out = m.predict(obs)
    assert out.shape == (cfg.n_action_steps, 21) and out.dtype == np.float32 and np.isfinite(out).all()
    assert not m.training
    with pytest.raises(ValueError, match="observation steps"):
        m.predict({"points": obs["points"][:1], "proprio": obs["proprio"][:1]})
    bad = {"points": obs["points"], "proprio": obs["proprio"].copy()}
    bad["proprio"][1, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        m.predict(bad)


def test_token_cache_gives_the_same_actions():
    """The rolling-window token cache (inference fast path) must not change the result."""
    m = tiny_model()
    rng = np.random.default_rng(0)
    clouds = rng.random((4, 32, 6)).astype(np.float32)
    prop = rng.normal(size=(4, 21)).astype(np.float32)
    outs = {}
    for cache in (True, False):
        m.token_cache = cache
        m.clear_cache()
        outs[cache] = [m.predict({"points": clouds[i:i + 2], "proprio": prop[i:i + 2]},
                                 generator=torch.Generator().manual_seed(i)) for i in range(3)]
    for a, b in zip(outs[True], outs[False]):
        np.testing.assert_allclose(a, b, atol=1e-4)  # float noise of batching 1 vs 2 frames
    m.token_cache = True
    with torch.no_grad():  # new weights must not be served from stale tokens
        m.pointnet.head[1].bias.add_(1.0)
    m.load_state_dict(m.state_dict())
    assert not m._token_cache


def test_train_cli_arguments():
    import argparse

    from brs_policy import train_cli

    parser = argparse.ArgumentParser()
    train_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["train", "--data", "d1", "d2", "--out", "o", "--steps", "5", "--batch", "4",
                              "--points", "1024", "--resume", "--tiny", "--no-autoregressive"])
    cfg = train_cli.config_from_args(args)
    assert cfg.data == ["d1", "d2"] and (cfg.steps, cfg.batch, cfg.points, cfg.resume) == (5, 4, 1024, True)
    assert cfg.model["autoregressive"] is False and cfg.model["embed_dim"] == 32
    assert args.func is train_cli.run
    cpu = train_cli.config_from_args(parser.parse_args(["train", "--data", "d", "--out", "o", "--preset", "cpu"]))
    assert cpu.points == 512 and cpu.model["embed_dim"] == 128 and "relative_actions" not in cpu.model
    assert cpu.model["part_loss_weights"] == {"base": 4.0}
    assert "aux_object_weight" not in cpu.model  # off unless asked for
    absolute = train_cli.config_from_args(parser.parse_args(["train", "--data", "d", "--out", "o", "--preset",
                                                             "cpu", "--targets", "absolute"]))
    assert WBVIMAConfig(**absolute.model).relative_actions is False and absolute.model["embed_dim"] == 128
    weighted = train_cli.config_from_args(parser.parse_args(["train", "--data", "d", "--out", "o", "--part-loss-weight",
                                                             "base=4", "--part-loss-weight", "torso=2"]))
    assert WBVIMAConfig(**weighted.model).part_loss_weights == {"base": 4.0, "torso": 2.0}
    with pytest.raises(ValueError, match="expected PART=W"):
        train_cli.config_from_args(parser.parse_args(["train", "--data", "d", "--out", "o", "--part-loss-weight", "base"]))
    with pytest.raises(ValueError, match="part_loss_weights"):
        WBVIMAConfig(part_loss_weights={"wheels": 2.0})
    aux = train_cli.config_from_args(parser.parse_args(["train", "--data", "d", "--out", "o", "--preset", "cpu",
                                                        "--aux-object-weight", "0.5"]))
    assert aux.model["aux_object_weight"] == 0.5 and "aux_object_token" not in aux.model
    readout = train_cli.config_from_args(parser.parse_args(["train", "--data", "d", "--out", "o", "--preset", "cpu",
                                                            "--aux-object-weight", "0.5", "--aux-object-token",
                                                            "readout"]))
    assert WBVIMAConfig(**readout.model).aux_object_token == "readout"
    yaw = train_cli.config_from_args(parser.parse_args(["train", "--data", "d", "--out", "o", "--preset", "cpu",
                                                        "--aux-object-weight", "1", "--aux-object-scale", "0.25",
                                                        "0.25", "0.2"]))
    assert WBVIMAConfig(**yaw.model).aux_object_scale == (0.25, 0.25, 0.2)
    with pytest.raises(ValueError, match="aux_object_scale needs 3 positive values"):
        WBVIMAConfig(aux_object_scale=(0.25, 0.0, 0.5))
    public = train_cli.config_from_args(parser.parse_args(["train", "--data", "d", "--out", "o"]))
    assert public.points == 4096 and public.model == {}


def test_train_cli_on_a_missing_dataset_says_so_and_creates_nothing(tmp_path, capsys):
    from brs_policy import train_cli

    out = tmp_path / "run"
    assert train_cli.main(["--data", str(tmp_path / "missing"), "--out", str(out), "--steps", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"brs train: error: {tmp_path / 'missing'}: no such episode file or dataset folder", err
    assert not out.exists()


def test_observation_is_causal_over_time():
    """The readout of step 1 must not depend on step 2's observation."""
    m = tiny_model()
    pts, prop = torch.rand(1, 2, 32, 6), torch.randn(1, 2, 21)
    r1 = m.encode(pts, prop)
    pts2, prop2 = pts.clone(), prop.clone()
    pts2[:, 1] += 1.0
    prop2[:, 1] += 1.0
    r2 = m.encode(pts2, prop2)
    assert torch.allclose(r1[:, 0], r2[:, 0], atol=1e-6)
    assert not torch.allclose(r1[:, 1], r2[:, 1], atol=1e-3)


def _record_conditioning(model):
    seen = {name: [] for name in model.part_names}
    for name, head in model.heads.items():
        orig = head.film_table

        def wrapped(timesteps, cond, _orig=orig, _name=name):
            seen[_name].append(cond.clone())
            return _orig(timesteps, cond)

        head.film_table = wrapped
    return seen


@pytest.mark.parametrize("autoregressive", [True, False])
def test_autoregressive_conditioning(autoregressive):
    m = tiny_model(autoregressive=autoregressive)
    seen = _record_conditioning(m)
    cfg = m.config
    readout = torch.randn(2, cfg.embed_dim)
    g = torch.Generator().manual_seed(3)
    noise = {n: torch.randn(2, cfg.horizon, b - a, generator=g) for n, (a, b) in cfg.parts.items()}
    base_a = torch.full((2, cfg.horizon, 3), -0.5)
    base_b = torch.full((2, cfg.horizon, 3), 0.7)
    out_a = m.sample(readout, noise=noise, fixed={"base": base_a})
    out_b = m.sample(readout, noise=noise, fixed={"base": base_b})
    assert torch.equal(out_a[..., :3], base_a) and torch.equal(out_b[..., :3], base_b)
    torso_a, torso_b = seen["torso"]
    arms_a, arms_b = seen["arms"]
    if autoregressive:
        assert torso_a.shape[-1] == cfg.embed_dim + cfg.horizon * 3
        assert arms_a.shape[-1] == cfg.embed_dim + cfg.horizon * 7
        assert not torch.equal(torso_a, torso_b) and not torch.equal(arms_a, arms_b)
        assert not torch.allclose(out_a[..., 3:7], out_b[..., 3:7], atol=1e-5)  # torso reacts
        assert not torch.allclose(out_a[..., 7:], out_b[..., 7:], atol=1e-5)  # arms react
        # changing only the torso changes the arms' conditioning, not the base's
        seen["arms"].clear()
        seen["base"].clear()
        fixed_t = torch.zeros(2, cfg.horizon, 4)
        m.sample(readout, noise=noise, fixed={"torso": fixed_t})
        m.sample(readout, noise=noise, fixed={"torso": fixed_t + 0.5})
        assert torch.equal(seen["base"][0], seen["base"][1])
        assert not torch.equal(seen["arms"][0], seen["arms"][1])
    else:
        for cond in (torso_a, torso_b, arms_a, arms_b):
            assert cond.shape[-1] == cfg.embed_dim
        assert torch.equal(torso_a, torso_b) and torch.equal(arms_a, arms_b)
        assert torch.equal(out_a[..., 3:], out_b[..., 3:])


def test_fast_ddim_matches_diffusers():
    m = tiny_model()
    readout = torch.randn(3, m.config.embed_dim)
    for steps in (16, 8):
        a = m.sample(readout, steps=steps, generator=torch.Generator().manual_seed(1))
        b = m.sample(readout, steps=steps, generator=torch.Generator().manual_seed(1), use_diffusers=True)
        assert torch.allclose(a, b, atol=1e-4), (steps, (a - b).abs().max())
        assert a.abs().max() <= 1.0 + 1e-5  # clip_sample keeps normalised actions in range


def test_ddim_step_matches_diffusers_step_by_step():
    """The DDIM update from precomputed coefficients == DDIMScheduler.step at every timestep."""
    from brs_policy.wbvima.policy import ddim_step, make_scheduler

    m = tiny_model()
    for steps in (16, 8):
        timesteps, coef = m._ddim_table(steps)
        sched = make_scheduler(m.config)
        sched.set_timesteps(steps)
        assert torch.equal(timesteps, sched.timesteps)
        g = torch.Generator().manual_seed(steps)
        x = 1.5 * torch.randn(2, m.config.horizon, 7, generator=g)  # some x0 estimates get clipped
        for t, c in zip(sched.timesteps, coef):
            eps = torch.randn(x.shape, generator=g)
            x_in, eps_in = x.clone(), eps.clone()
            ref = sched.step(eps, t, x).prev_sample
            ours = ddim_step(x, eps, c, m.config.clip_sample)
            assert torch.equal(x, x_in) and torch.equal(eps, eps_in)  # inputs left alone
            assert torch.allclose(ours, ref, atol=1e-5), (steps, int(t), (ours - ref).abs().max())
            x = ref


def test_film_table_matches_the_conditioning_mlps():
    """film_table (step part cached across calls, condition part per call) == each step's FiLM
    through the full conditioning path (step encoder + Mish + Linear on the concatenation)."""
    m = tiny_model()
    cfg = m.config
    head = m.heads["arms"]
    cond = torch.randn(2, cfg.embed_dim + cfg.horizon * 7)
    x = torch.randn(2, cfg.horizon, 14)
    timesteps, _ = m._ddim_table(8)
    with torch.inference_mode():
        for _ in range(2):  # the second call uses the cached step part
            table = head.film_table(timesteps, cond)
            assert table.shape[:2] == (8, 2)
            for s, t in enumerate(timesteps):
                assert torch.allclose(head.forward_with_film(x, table[s]), head(x, t, cond), atol=1e-5)
    with torch.no_grad():  # in-place weight changes must not be served from the cache
        head.res_blocks[0].cond_encoder[1].bias.add_(0.3)
        head.step_encoder[1].weight.mul_(1.1)
    with torch.inference_mode():
        table = head.film_table(timesteps, cond)
        assert torch.allclose(head.forward_with_film(x, table[3]), head(x, timesteps[3], cond), atol=1e-5)


def test_frozen_denoisers_match_eager_and_follow_the_weights():
    """The TorchScript-frozen UNets compute what the eager modules compute, and are traced
    again when the weights change in place."""
    m = tiny_model()
    cfg = m.config
    readout = torch.randn(1, cfg.embed_dim)
    g = torch.Generator().manual_seed(5)
    noise = {n: torch.randn(1, cfg.horizon, b - a, generator=g) for n, (a, b) in cfg.parts.items()}

    def both():
        fast = m.sample(readout, noise=noise)
        m.jit = False
        eager = m.sample(readout, noise=noise)
        m.jit = True
        return fast, eager

    fast, eager = both()
    assert m._jit_cache and m.jit  # the frozen path was taken
    assert (fast - eager).abs().max() <= 1e-5
    assert (fast - m.sample(readout, noise=noise, use_diffusers=True)).abs().max() <= 1e-4
    with torch.no_grad():
        m.heads["base"].final[1].bias.add_(0.5)
    fast2, eager2 = both()
    assert (fast2 - eager2).abs().max() <= 1e-5 and not torch.allclose(fast2, fast, atol=1e-3)


def test_public_config_fast_path_matches_the_plain_path():
    """Default (public) config, 4096 points, batch 1, rolling window: predict (token cache,
    cached FiLM step part, frozen UNets, own DDIM step) == encode both frames + diffusers'
    DDIMScheduler step loop through the full UNet, within 1e-4 in normalised action units."""
    torch.manual_seed(0)
    m = WBVIMAPolicy(WBVIMAConfig())
    rng = np.random.default_rng(0)
    m.fit_normalizers(rng.normal(size=(256, 21)), rng.normal(size=(256, 21)))
    m.eval()
    clouds = rng.uniform([0, -1, -0.5, 0, 0, 0], [4, 1, 1.6, 1, 1, 1], (3, 4096, 6)).astype(np.float32)
    prop = rng.normal(size=(3, 21)).astype(np.float32)
    for i in range(2):  # the second call reuses the first window's newest frame tokens
        obs = {"points": clouds[i:i + 2], "proprio": prop[i:i + 2]}
        fast = m.predict(obs, generator=torch.Generator().manual_seed(i))
        with torch.inference_mode():
            readout = m.encode(torch.as_tensor(obs["points"])[None], torch.as_tensor(obs["proprio"])[None])[:, -1]
            ref = m.sample(readout, generator=torch.Generator().manual_seed(i), use_diffusers=True)[0, :8]
            fast_n = m.action_normalizer.normalize(torch.as_tensor(fast))
        assert (fast_n - ref).abs().max() <= 1e-4, (fast_n - ref).abs().max()


@pytest.mark.parametrize("mode", ["minmax", "meanstd"])
def test_normalizer_round_trip(mode):
    rng = np.random.default_rng(0)
    data = rng.normal(size=(500, 5)) * [1, 10, 0.01, 3, 1] + [0, 5, -2, 1, 0]
    data[:, 4] = 0.25  # a constant dimension (e.g. an unused joint)
    n = Normalizer(5, mode).fit(data)
    x = torch.as_tensor(data, dtype=torch.float32)
    y = n.normalize(x)
    assert torch.allclose(n.unnormalize(y), x, atol=1e-4)
    assert torch.isfinite(y).all() and torch.allclose(y[:, 4], torch.zeros(500))
    if mode == "minmax":
        assert y.min() >= -1 - 1e-5 and y.max() <= 1 + 1e-5
    else:
        assert torch.allclose(y[:, :4].mean(0), torch.zeros(4), atol=1e-4)
    m = Normalizer(5, mode)
    m.load_state_dict(n.state_dict())  # stats travel in the state_dict
    assert torch.equal(m.normalize(x), y) and bool(m.fitted)
    with pytest.raises(ValueError):
        Normalizer(5, mode).fit(np.full((3, 5), np.nan))


def test_proprio_is_normalised_by_the_spec_limits():
    """The default proprio normaliser maps every joint's limits (and +-max base velocity) to
    [-1, 1], whatever the data: a joint that barely moves in the demos is not amplified."""
    m = WBVIMAPolicy(WBVIMAConfig.tiny())
    position = np.array([not j.velocity_controlled for j in spec.JOINTS])
    lo = np.where(position, spec.LOWER, -spec.MAX_VELOCITY)
    hi = np.where(position, spec.UPPER, spec.MAX_VELOCITY)
    n = m.proprio_normalizer
    y = n.normalize(torch.as_tensor(np.stack([lo, hi]), dtype=torch.float32))
    torch.testing.assert_close(y, torch.tensor([[-1.0] * 21, [1.0] * 21]))
    home = np.where(position, spec.HOME, 0.0)
    demos = home + 6e-4 * np.random.default_rng(0).uniform(-1, 1, (100, 21))  # torso_joint4 in the demos
    m.fit_normalizers(demos, demos)  # fits the actions only
    noise = torch.as_tensor(np.stack([home, home + 1e-3]), dtype=torch.float32)  # 1 mrad or 1 mm
    step = (n.normalize(noise)[1] - n.normalize(noise)[0]).abs().max()
    assert step < 0.1, f"1 mrad (mm) of sensor noise moves the input by {step:.3f}"  # 0.05: a gripper
    minmax = Normalizer(21, "minmax").fit(demos)  # what the data's min/max would do
    assert (minmax.normalize(noise)[1] - minmax.normalize(noise)[0]).abs().max() > 1.0
    with pytest.raises(ValueError, match="set_range"):
        n.fit(demos)


def test_relative_targets_round_trip_and_predict_around_the_current_pose():
    torch.manual_seed(0)
    m = WBVIMAPolicy(WBVIMAConfig.tiny(n_points=32, relative_actions=True))
    position = torch.as_tensor([not j.velocity_controlled for j in spec.JOINTS])
    rng = np.random.default_rng(0)
    proprio = torch.as_tensor(rng.normal(size=(5, 21)), dtype=torch.float32)
    actions = torch.as_tensor(rng.normal(size=(5, 8, 21)), dtype=torch.float32)
    rel = m.to_relative(actions, proprio)
    torch.testing.assert_close(rel[..., ~position], actions[..., ~position])  # base velocities as they are
    torch.testing.assert_close(rel[..., position], actions[..., position] - proprio[:, None, position])
    torch.testing.assert_close(m.from_relative(rel, proprio), actions)
    # targets within +-0.05 of the pose: whatever the (untrained) denoiser says, predictions stay there
    m.fit_normalizers(0.05 * rng.uniform(-1, 1, size=(200, 21)), rng.normal(size=(200, 21)))
    m.eval()
    prop = np.tile(np.where(position.numpy(), 0.7, 0.0), (2, 1)).astype(np.float32)
    chunk = m.predict({"points": rng.random((2, 32, 6)).astype(np.float32), "proprio": prop})
    assert np.all(np.abs(chunk[:, position.numpy()] - 0.7) <= 0.05 + 1e-5), chunk


@pytest.mark.parametrize("base_velocity_input", [True, False])
def test_base_velocity_input_is_seen_or_not(base_velocity_input):
    """Without base_velocity_input the encoder gets the base velocity as 0: the policy cannot copy
    its own motion; the joints are seen either way."""
    m = tiny_model(base_velocity_input=base_velocity_input)
    rng = np.random.default_rng(1)
    points = torch.as_tensor(rng.random((1, 32, 6)), dtype=torch.float32)
    prop = torch.as_tensor(np.where(spec.POSITION, spec.HOME, 0.0)[None], dtype=torch.float32)
    moving, turned = prop.clone(), prop.clone()
    moving[0, spec.group_slice("base")] = torch.tensor([0.3, -0.2, 0.4])
    turned[0, 5] += 0.3  # a torso joint
    with torch.no_grad():
        tok = [m.obs_tokens(points, p)[0, 1] for p in (prop, moving, turned)]
    assert not torch.equal(tok[0], tok[2])
    assert torch.equal(tok[0], tok[1]) is not base_velocity_input, (tok[0] - tok[1]).abs().max()


def test_training_leaves_out_recorded_failures(tmp_path, capsys):
    from brs_policy.train import episode_paths

    paths = write_episodes(tmp_path, n_episodes=3, n_frames=4)
    for path, success in zip(paths, (1, 0, None)):  # success, failure, unknown (teleop)
        with h5py.File(path, "r+") as f:
            if success is None:
                del f.attrs["success"]
            else:
                f.attrs["success"] = success
    assert episode_paths(tmp_path) == [paths[0], paths[2]]
    assert "leaving out 1 of 3 episodes" in capsys.readouterr().err
    assert episode_paths(tmp_path, include_failures=True) == paths
    assert episode_paths([tmp_path / paths[1].name]) == [paths[1]]  # a file named explicitly is used


def test_loss_counts_every_action_dimension_alike():
    """loss = MSE over all 21 dimensions: each part's MSE weighted by its share of them."""
    m = tiny_model().train()
    rng = np.random.default_rng(0)
    batch = {"points": torch.as_tensor(rng.random((4, 2, 32, 6)), dtype=torch.float32),
             "proprio": torch.as_tensor(rng.normal(size=(4, 2, 21)), dtype=torch.float32),
             "actions": torch.as_tensor(rng.normal(size=(4, 2, 8, 21)), dtype=torch.float32)}
    loss, parts = m.compute_loss(batch)
    dims = {k: b - a for k, (a, b) in m.config.parts.items()}
    assert dims == {"base": 3, "torso": 4, "arms": 14}
    assert float(loss.detach()) == pytest.approx(sum(parts[k] * d / 21 for k, d in dims.items()), rel=1e-5)
    weighted = tiny_model(part_loss_weights={"base": 4.0}).train()
    loss, parts = weighted.compute_loss(batch)
    expected = parts["base"] * 4 * 3 / 21 + parts["torso"] * 4 / 21 + parts["arms"] * 14 / 21
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5)


def test_cpu_preset():
    from brs_policy.wbvima import count_parameters

    cpu, public = WBVIMAConfig.cpu(), WBVIMAConfig()
    assert (cpu.n_points, cpu.pointnet_hidden, cpu.embed_dim, cpu.relative_actions) == (512, 128, 128, False)
    assert cpu.part_loss_weights == {"base": 4.0} and public.part_loss_weights == {}
    assert cpu.base_velocity_input is False and public.base_velocity_input is True
    assert (cpu.horizon, cpu.n_action_steps, cpu.obs_window, cpu.num_inference_steps) == (8, 8, 2, 16)
    assert count_parameters(WBVIMAPolicy(cpu)) < 0.8 * count_parameters(WBVIMAPolicy(public))
    assert public.relative_actions is False and public.n_points == 4096  # the public config stays


# ---- checkpoints -----------------------------------------------------------------------------------

def test_checkpoint_round_trip_and_errors(tmp_path):
    m = tiny_model()
    path = save_checkpoint(tmp_path / "p.pt", m, extra={"note": "x"})
    raw = torch.load(path, weights_only=True)  # plain tensors and containers only
    assert raw["robot_spec_hash"] == spec.spec_hash() and "config_json" in raw
    loaded = load_policy(path, device="cpu")
    assert loaded.config == m.config and not loaded.training
    for k, v in m.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    obs = {"points": np.random.rand(2, 32, 6).astype(np.float32), "proprio": np.random.randn(2, 21).astype(np.float32)}
    a = m.predict(obs, generator=torch.Generator().manual_seed(0))
    b = loaded.predict(obs, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(a, b, atol=1e-6)

    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint" * 100)
    with pytest.raises(CheckpointError, match="not a readable WB-VIMA checkpoint"):
        load_policy(garbage)
    other = tmp_path / "other.pt"
    torch.save({"hello": torch.zeros(2)}, other)
    with pytest.raises(CheckpointError, match="not a WB-VIMA checkpoint"):
        load_policy(other)
    raw["robot_spec_hash"] = "0123456789abcdef"
    wrong = tmp_path / "wrong_spec.pt"
    torch.save(raw, wrong)
    with pytest.raises(CheckpointError, match="robot spec hash"):
        load_policy(wrong)
    assert load_policy(wrong, check_spec=False).config == m.config
    with pytest.raises(CheckpointError, match="no such"):
        load_policy(tmp_path / "missing.pt")


# ---- dataset ---------------------------------------------------------------------------------------

def test_dataset_windows_and_cache(episodes):
    folder, paths = episodes
    counting_points_fn.calls = 0
    ds = WindowDataset(paths[:1], obs_window=2, horizon=8, points_fn=counting_points_fn, n_points=32)
    n = ds.episodes[0].n
    assert len(ds) == n and ds.cloud_points == CLOUD
    calls = counting_points_fn.calls
    assert calls in (0, n)  # computed once (or cached by an earlier test)
    first = ds.sample(0)
    assert first["points"].shape == (2, 32, 6) and first["proprio"].shape == (2, 21)
    assert first["actions"].shape == (2, 8, 21)
    ep = ds.episodes[0]
    np.testing.assert_array_equal(first["proprio"][0], first["proprio"][1])  # padded start
    np.testing.assert_array_equal(first["actions"][1], ep.actions[:8])
    last = ds.sample(n - 1)
    np.testing.assert_array_equal(last["actions"][1, 0], ep.actions[-1])
    np.testing.assert_array_equal(last["actions"][1, -1], ep.actions[-1])  # repeated past the end
    mid = ds.sample(10)
    np.testing.assert_array_equal(mid["actions"][0], ep.actions[9:17])
    np.testing.assert_array_equal(mid["proprio"][1, 3:], ep.proprio[10, 3:])
    assert list((folder / ".wbvima_cache").glob(f"{paths[0].name}.*.npy"))
    assert isinstance(ep.points, np.memmap)  # mapped, not loaded: datasets may exceed RAM
    # the first n points of the cached (FPS-ordered) cloud, in training as on the robot
    np.testing.assert_array_equal(mid["points"][1], ep.points[10, :32])
    counting_points_fn.calls = 0
    WindowDataset(paths[:1], points_fn=counting_points_fn, n_points=32)
    assert counting_points_fn.calls == 0  # served from the cache
    batch = ds.batch([0, 5, 9])
    assert batch["points"].shape == (3, 2, 32, 6)


# ---- training --------------------------------------------------------------------------------------

def test_tiny_training_lowers_loss(episodes, tmp_path):
    folder, _ = episodes
    metrics = train(tiny_train_config(folder, tmp_path / "run", steps=150, lr=3e-3), points_fn=points_fn)
    assert metrics["step"] == 150 and metrics["val_episodes"] == 1
    losses = np.array([h[1] for h in metrics["history"]])
    first, last = losses[:10].mean(), losses[-20:].mean()
    assert last < 0.8 * first, (first, last)  # measured here: 1.10 -> 0.70
    assert metrics["val_loss"] is not None and np.isfinite(metrics["val_loss"])
    assert (tmp_path / "run" / "loss.png").stat().st_size > 1000
    policy = load_policy(metrics["policy"], device="cpu")
    obs = {"points": np.random.rand(2, 32, 6).astype(np.float32), "proprio": np.zeros((2, 21), np.float32)}
    assert policy.predict(obs).shape == (8, 21)


def test_resume_matches_uninterrupted_run(episodes, tmp_path):
    folder, _ = episodes
    kw = dict(steps=12, ckpt_every=4, val_every=6, plot=False)
    full = train(tiny_train_config(folder, tmp_path / "full", **kw), points_fn=points_fn)
    part = train(tiny_train_config(folder, tmp_path / "resumed", stop_at=8, **kw), points_fn=points_fn)
    assert part["step"] == 8 and "policy" not in part
    resumed = train(tiny_train_config(folder, tmp_path / "resumed", resume=True, **kw), points_fn=points_fn)
    assert resumed["step"] == 12 and resumed["steps_run"] == 4
    np.testing.assert_allclose([h[1] for h in resumed["history"]], [h[1] for h in full["history"]], rtol=1e-4)
    a = torch.load(full["policy"], weights_only=True)
    b = torch.load(resumed["policy"], weights_only=True)
    for key in ("model",):
        for k, v in a[key].items():
            assert torch.allclose(v, b[key][k], atol=1e-5), k
    for k, v in a["ema"]["model"].items():
        assert torch.allclose(v, b["ema"]["model"][k], atol=1e-5), k


def test_resume_with_more_steps_continues_the_lr_schedule(episodes, tmp_path):
    """A run of 12 steps resumed with --steps 24 goes on from the LR it had (no jump back up, no
    second warmup) and still ends at lr_min; the same --steps resumes exactly (test above)."""
    from brs_policy.train import _schedule_on_resume, lr_lambda

    folder, _ = episodes
    kw = dict(ckpt_every=4, val_every=6, plot=False, lr=1e-3, warmup_steps=2)
    train(tiny_train_config(folder, tmp_path / "run", steps=12, **kw), points_fn=points_fn)
    ts = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)["train_state"]
    longer = tiny_train_config(folder, tmp_path / "run", steps=24, resume=True, **kw)
    anchor = _schedule_on_resume(longer, ts)
    old = lr_lambda(tiny_train_config(folder, tmp_path / "x", steps=12, **kw))
    new = lr_lambda(longer, anchor)
    assert anchor[0] == 12 and new(12) == pytest.approx(old(12))
    factors = [new(s) for s in range(12, 25)]
    assert all(a >= b for a, b in zip(factors, factors[1:])), factors
    assert factors[-1] == pytest.approx(longer.lr_min / longer.lr)
    metrics = train(longer, points_fn=points_fn)
    assert metrics["step"] == 24 and metrics["steps_run"] == 12
    ts = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)["train_state"]
    assert ts["schedule"] == {"total": 24, "anchor": [12, pytest.approx(old(12))]}
    assert ts["scheduler"]["_last_lr"][0] == pytest.approx(longer.lr_min)


def test_exported_policy_is_small_and_acts_like_the_ema_weights(tmp_path):
    from brs_policy.export_policy import main as export_main
    from brs_policy.wbvima import export_policy

    m = tiny_model(relative_actions=True)
    ema = {"model": {k: v + 0.01 if v.is_floating_point() else v for k, v in m.state_dict().items()},
           "step": 5}
    src = save_checkpoint(tmp_path / "policy.pt", m, ema, train_state={"step": 5})
    dst = export_policy(src, tmp_path / "deploy.pt")
    raw = torch.load(dst, weights_only=True)
    assert "ema" not in raw and "train_state" not in raw
    assert dst.stat().st_size < 0.4 * src.stat().st_size
    assert any(v.dtype == torch.float16 for v in raw["model"].values())
    full = load_policy(src, device="cpu")  # the EMA weights
    small = load_policy(dst, device="cpu")
    assert all(v.dtype == torch.float32 for v in small.state_dict().values() if v.is_floating_point())
    obs = {"points": np.random.rand(2, 32, 6).astype(np.float32), "proprio": np.random.randn(2, 21).astype(np.float32)}
    a = full.predict(obs, generator=torch.Generator().manual_seed(0))
    b = small.predict(obs, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(a, b, atol=1e-2)  # float16 weights: < 0.3 % of these actions (|a| up to ~4)
    assert export_main([str(tmp_path / "missing.pt"), str(tmp_path / "x.pt")]) == 2


def test_shift_check_moves_only_the_region_and_reports_the_response(episodes, tmp_path):
    from brs_policy.shift_check import main as shift_main
    from brs_policy.shift_check import shift_response

    folder, paths = episodes
    ckpt = save_checkpoint(tmp_path / "p.pt", tiny_model())
    empty = shift_response(ckpt, paths[:1], [5], (5, 6, 5, 6, 5, 6), (0, 0.1, 0), seeds=2, points_fn=points_fn)
    (row,) = empty
    assert row["moved"] == [0, 0] and row["arms_change"] == 0.0
    assert row["base"][0] == row["base"][1] == row["base"][2]  # nothing moved: the same actions
    everything = shift_response(ckpt, paths[:1], [5, 12], (-9, 9, -9, 9, -9, 9), (0, 0.3, 0), seeds=2,
                                points_fn=points_fn)
    assert [r["moved"] for r in everything] == [[32, 32], [32, 32]]
    assert all(r["arms_change"] > 0 for r in everything)  # a random model reacts to its input
    assert len(everything[0]["recorded"]) == 3
    with pytest.raises(SystemExit) as bad:  # argparse: a region needs 6 numbers
        shift_main([str(ckpt), "--episodes", str(paths[0]), "--region", "1,2,3"])
    assert bad.value.code == 2
    assert shift_main([str(tmp_path / "missing.pt"), "--episodes", str(paths[0]), "--region", "0,1,0,1,0,1"]) == 2
