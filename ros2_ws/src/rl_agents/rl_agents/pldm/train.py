"""Training (offline, reward-free), checkpoints, the planning agent and evaluation."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from rl_agents.files import atomic_torch_save
from rl_agents.pldm.model import PLDM, PLDMConfig, pldm_loss
from rl_agents.pldm.planner import MPPI, MPPIConfig
from rl_agents.two_rooms import Layout, TwoRoomsEnv, render_batch, wall_image


@dataclass
class TrainConfig:
    steps: int = 5000
    batch_size: int = 64
    seq_len: int = 8  # predicted steps per training sequence (frames = seq_len + 1)
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    use_vicreg: bool = True
    use_idm: bool = True
    checkpoint_every: int = 0  # 0: only at the end
    grad_clip: float = 10.0


def pick_device(device: str | None = None) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class SequenceSampler:
    """Samples (obs, actions) sub-sequences from a Two Rooms dataset, rendering frames on the fly."""

    def __init__(self, data: dict, img_size: int, seed: int = 0):
        meta = data["meta"]
        self.pos = np.asarray(data["positions"])
        self.act = np.asarray(data["actions"]) / float(meta["max_step"])  # unit-disc actions
        self.layout = Layout(**meta["layout"])
        self.img_size = img_size
        self.walls = wall_image(self.layout, img_size)
        self.rng = np.random.default_rng(seed)

    def sample(self, batch: int, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
        e, length = self.act.shape[:2]
        if seq_len > length:
            raise ValueError(f"seq_len {seq_len} > episode length {length}")
        ei = self.rng.integers(0, e, batch)
        t0 = self.rng.integers(0, length - seq_len + 1, batch)
        idx = t0[:, None] + np.arange(seq_len + 1)
        pos = self.pos[ei[:, None], idx]
        act = self.act[ei[:, None], idx[:, :-1]]
        return render_batch(pos, self.layout, self.img_size, walls=self.walls), act.astype(np.float32)


def save_checkpoint(path: str | Path, model: PLDM, step: int, extra: dict | None = None) -> None:
    atomic_torch_save({"model": model.state_dict(), "config": asdict(model.cfg), "step": step, **(extra or {})}, path)


def pldm_from_checkpoint(ck: dict, device: str | torch.device = "cpu") -> PLDM:
    """The PLDM (eval mode) of a loaded checkpoint dict with "config" and "model"."""
    model = PLDM(PLDMConfig(**ck["config"])).to(device)
    model.load_state_dict(ck["model"])
    return model.eval()


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> PLDM:
    return pldm_from_checkpoint(torch.load(path, map_location=device, weights_only=True), device)


def train(data: dict, model_cfg: PLDMConfig | None = None, cfg: TrainConfig | None = None,
          device: str | None = None, out: str | Path | None = None, progress: bool = True) -> tuple[PLDM, list]:
    """Train PLDM on a dataset dict (from two_rooms_data.generate/load). Returns (model, loss log)."""
    cfg = cfg or TrainConfig()
    model_cfg = model_cfg or PLDMConfig(img_size=int(data["meta"].get("img_size", 64)))
    dev = pick_device(device)
    torch.manual_seed(cfg.seed)
    model = PLDM(model_cfg).to(dev)
    sampler = SequenceSampler(data, model_cfg.img_size, cfg.seed)

    def next_batch():
        obs, act = sampler.sample(cfg.batch_size, cfg.seq_len)
        return torch.from_numpy(obs).to(dev), torch.from_numpy(act).to(dev)

    def checkpoint(step):
        if out and cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0:
            save_checkpoint(out, model, step + 1)

    log = fit(model, cfg, next_batch, "pldm train", progress, on_step=checkpoint)
    if out:
        save_checkpoint(out, model, cfg.steps)
    return model, log


def fit(model: PLDM, cfg: TrainConfig, next_batch, desc: str, progress: bool = True,
        cosine_decay: bool = False, on_step=None) -> list:
    """The PLDM optimisation loop: `cfg.steps` AdamW steps on pldm_loss over `next_batch()` ->
    (obs, act) tensors, grad clipping, optional cosine lr decay to 5 %; `on_step(step)` after
    each. Leaves the model in eval mode; returns the loss log."""
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps, eta_min=cfg.lr * 0.05)
             if cosine_decay else None)
    log = []
    bar = tqdm(range(cfg.steps), desc=desc, disable=not progress)
    for step in bar:
        obs, act = next_batch()
        loss, parts = pldm_loss(model, obs, act, cfg.use_vicreg, cfg.use_idm)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        if sched is not None:
            sched.step()
        log.append(parts)
        if step % 50 == 0:
            bar.set_postfix({k: f"{v:.3f}" for k, v in parts.items()})
        if on_step is not None:
            on_step(step)
    model.eval()
    return log


class PLDMAgent:
    """Encodes observation and goal, plans with MPPI in latent space, returns the first action."""

    def __init__(self, model: PLDM, max_step: float, mppi: MPPIConfig | None = None, seed: int = 0):
        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.max_step = max_step
        self.planner = MPPI(self.model.predictor, model.cfg.action_dim, mppi, self.device, seed)
        self._goal_key = None
        self._zg = None

    def reset(self) -> None:
        self.planner.reset()
        self._goal_key = None

    @torch.no_grad()
    def act(self, obs: np.ndarray, goal_obs: np.ndarray) -> np.ndarray:
        key = goal_obs.tobytes()
        if key != self._goal_key:  # the goal is encoded once per goal
            self._zg = self.model.encoder(torch.from_numpy(goal_obs).to(self.device))
            self._goal_key = key
        z0 = self.model.encoder(torch.from_numpy(obs).to(self.device))
        plan = self.planner.plan(z0, self._zg)
        return plan[0].cpu().numpy().astype(np.float64) * self.max_step


def evaluate(env: TwoRoomsEnv, policy, episodes: int, seed: int = 0, progress: bool = False) -> dict:
    """policy(obs, goal_obs, info) -> action, or "random". Success = within the env's radius."""
    rng = np.random.default_rng(seed)
    succ, final_d, t0 = [], [], time.monotonic()
    for ep in tqdm(range(episodes), desc="eval", disable=not progress):
        obs, info = env.reset(seed=seed + ep)
        if hasattr(policy, "reset"):
            policy.reset()
        done = False
        while not done:
            if policy == "random":
                a = rng.uniform(-1, 1, 2) * env.max_step
            else:
                a = policy.act(obs, info["goal_obs"])
            obs, _, term, trunc, info = env.step(a)
            done = term or trunc
        succ.append(info["success"])
        final_d.append(info["dist"])
    return {"success_rate": float(np.mean(succ)), "mean_final_dist": float(np.mean(final_d)),
            "episodes": episodes, "seconds": time.monotonic() - t0}


def fit_config(args, **extra) -> TrainConfig:
    """The TrainConfig that `rl_agents.pldm.fit_args.add_fit_arguments`' values describe."""
    return TrainConfig(args.steps, args.batch_size, args.seq_len, args.lr, seed=args.seed, **extra)


def main(argv=None) -> None:
    """python -m rl_agents.pldm.train --data data/tr --out outputs/pldm/tr.pt [--eval-episodes 20]"""
    import argparse
    import json

    from rl_agents.pldm.fit_args import add_fit_arguments, apply_threads
    from rl_agents.two_rooms_data import load

    p = argparse.ArgumentParser(description="Train PLDM on a Two Rooms dataset, then evaluate MPPI vs random.")
    add_fit_arguments(p, data_help="dataset path without suffix (from rl_agents.two_rooms_data)",
                      steps=5000, batch_size=64, seq_len=8)
    p.add_argument("--checkpoint-every", type=int, default=1000)
    p.add_argument("--eval-episodes", type=int, default=20)
    p.add_argument("--goal-mode", choices=("any", "same_room", "other_room"), default="any")
    p.add_argument("--max-episode-steps", type=int, default=100)
    a = p.parse_args(argv)
    apply_threads(a)
    data = load(a.data)
    meta = data["meta"]
    model, _ = train(data, PLDMConfig(img_size=int(meta["img_size"])),
                     fit_config(a, checkpoint_every=a.checkpoint_every), a.device, a.out)
    if a.eval_episodes:
        env = TwoRoomsEnv(Layout(**meta["layout"]), int(meta["img_size"]), float(meta["max_step"]),
                          a.max_episode_steps, goal_mode=a.goal_mode, min_goal_dist=0.3)
        res = {"pldm": evaluate(env, PLDMAgent(model, env.max_step, seed=a.seed), a.eval_episodes, 10_000, True),
               "random": evaluate(env, "random", a.eval_episodes, 10_000)}
        print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
