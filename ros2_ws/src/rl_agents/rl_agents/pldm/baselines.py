"""Model-free goal-conditioned baselines for Two Rooms: GCBC and GCIQL (OGBench-style conventions).

Both see the same image observations as PLDM (rendered on the fly from the dataset positions) and
condition on a goal image: the observation (2 channels) and the goal (2 channels) are stacked into
a 4-channel input of a conv encoder the size of PLDM's (3 conv layers 4x4 stride 2 + MLP).

- GCBC: the policy regresses the dataset action toward goals relabelled from future states of the
  same trajectory (uniform over the rest of the episode). Deterministic policy, MSE on actions in
  units of max_step (= Gaussian log-likelihood with a fixed std).
- GCIQL: goal-conditioned implicit Q-learning. Goals for the value functions are relabelled as in
  OGBench: with probability p_curgoal the next state itself, p_trajgoal a future state of the same
  trajectory (geometric offset with parameter 1 - discount, clipped to the episode end),
  p_randomgoal a random dataset state. Reward 0 when the next state is within `goal_radius` of the
  goal (the episode then ends: mask 0), else -1; discount 0.99. So V(s, g) ~ -(steps to goal).
  V(s, g) is fitted by expectile regression (expectile 0.9) toward min of the two target Q heads;
  Q(s, a, g) toward r + discount * mask * V(s', g); the policy is extracted by advantage-weighted
  regression, weight min(exp(alpha * (Q - V)), 100), on trajectory goals (like GCBC).

Checkpoints: {"method", "model", "config", "step", "meta"} loadable with torch.load(weights_only=True)
(`load_agent` in this module also loads PLDM checkpoints).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from rl_agents.files import atomic_torch_save
from rl_agents.pldm.fit_args import METHODS
from rl_agents.pldm.model import conv_trunk
from rl_agents.two_rooms import Layout, render_batch, wall_image


@dataclass
class GCConfig:
    img_size: int = 64
    channels: int = 32
    hidden: int = 128
    action_dim: int = 2


@dataclass
class GCTrainConfig:
    steps: int = 5000
    batch_size: int = 64
    lr: float = 3e-4
    seed: int = 0
    grad_clip: float = 10.0
    # GCIQL (OGBench defaults)
    discount: float = 0.99
    expectile: float = 0.9
    alpha: float = 3.0  # AWR inverse temperature
    tau: float = 0.005  # target network EMA rate
    p_curgoal: float = 0.2
    p_trajgoal: float = 0.5
    p_randomgoal: float = 0.3
    goal_radius: float = 0.1  # relabelled success: ||s' - g|| <= goal_radius (the env's success radius)
    max_weight: float = 100.0


class GoalEncoder(nn.Module):
    """(obs (..., 2, S, S), goal (..., 2, S, S)) uint8 -> features (..., hidden)."""

    def __init__(self, cfg: GCConfig):
        super().__init__()
        self.conv, flat = conv_trunk(4, cfg.channels, cfg.img_size)  # PLDM's conv layers
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(flat, cfg.hidden), nn.ReLU())

    def forward(self, obs: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        lead = obs.shape[:-3]
        x = torch.cat([obs.reshape(-1, *obs.shape[-3:]), goal.reshape(-1, *goal.shape[-3:])], 1).float() / 255.0
        return self.fc(self.conv(x)).reshape(*lead, -1)


def _mlp(i: int, h: int, o: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(i, h), nn.ReLU(), nn.Linear(h, o))


def to_unit_disc(a: torch.Tensor) -> torch.Tensor:
    n = a.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return a * torch.clamp(1.0 / n, max=1.0)


class GCPolicy(nn.Module):
    """Deterministic goal-conditioned policy; actions in the unit disc (units of max_step)."""

    def __init__(self, cfg: GCConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = GoalEncoder(cfg)
        self.head = _mlp(cfg.hidden, cfg.hidden, cfg.action_dim)

    def forward(self, obs: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        return to_unit_disc(torch.tanh(self.head(self.encoder(obs, goal))))


class GCCritic(nn.Module):
    """V(s, g) and two Q(s, a, g) heads on one shared encoder."""

    def __init__(self, cfg: GCConfig):
        super().__init__()
        self.encoder = GoalEncoder(cfg)
        h, a = cfg.hidden, cfg.action_dim
        self.v = _mlp(h, h, 1)
        self.q1 = _mlp(h + a, h, 1)
        self.q2 = _mlp(h + a, h, 1)

    def value(self, feat: torch.Tensor) -> torch.Tensor:
        return self.v(feat).squeeze(-1)

    def qs(self, feat: torch.Tensor, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([feat, act], -1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)


class GCIQL(nn.Module):
    def __init__(self, cfg: GCConfig):
        super().__init__()
        self.cfg = cfg
        self.critic = GCCritic(cfg)
        self.target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor = GCPolicy(cfg)


def expectile_loss(diff: torch.Tensor, expectile: float) -> torch.Tensor:
    """mean(|expectile - 1[diff < 0]| * diff^2), diff = target - prediction."""
    w = torch.where(diff >= 0, torch.full_like(diff, expectile), torch.full_like(diff, 1 - expectile))
    return (w * diff.pow(2)).mean()


def goal_rewards(next_pos: np.ndarray, goal_pos: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """OGBench sparse goal reward: (reward, mask) = (0, 0) if ||s' - g|| <= radius else (-1, 1)."""
    success = np.linalg.norm(np.asarray(next_pos) - np.asarray(goal_pos), axis=-1) <= radius
    return success.astype(np.float32) - 1.0, 1.0 - success.astype(np.float32)


class GoalSampler:
    """Transitions (s, a, s') with relabelled goals from a Two Rooms dataset; frames rendered on the fly."""

    def __init__(self, data: dict, img_size: int, seed: int = 0):
        meta = data["meta"]
        self.pos = np.asarray(data["positions"], dtype=np.float32)  # (E, L+1, 2)
        self.act = (np.asarray(data["actions"]) / float(meta["max_step"])).astype(np.float32)
        self.layout = Layout(**meta["layout"])
        self.img_size = img_size
        self.walls = wall_image(self.layout, img_size)
        self.rng = np.random.default_rng(seed)

    def render(self, pos: np.ndarray) -> np.ndarray:
        return render_batch(pos, self.layout, self.img_size, walls=self.walls)

    def transitions(self, batch: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Episode indices, step indices (s_t, a_t, s_{t+1} exist) and the episode length."""
        e, length = self.act.shape[:2]
        ei = self.rng.integers(0, e, batch)
        t = self.rng.integers(0, length, batch)
        return ei, t, length

    def traj_goals(self, ei: np.ndarray, t: np.ndarray, length: int, geometric: float | None = None) -> np.ndarray:
        """Future state of the same trajectory: offset k >= 1, uniform up to the end, or geometric(1 - discount)."""
        remaining = length - t  # index of the last state is `length`
        if geometric is None:
            k = self.rng.integers(1, remaining + 1)
        else:
            k = np.minimum(self.rng.geometric(1.0 - geometric, size=len(t)), remaining)
        return self.pos[ei, t + k]

    def random_goals(self, n: int) -> np.ndarray:
        e, l1 = self.pos.shape[:2]
        return self.pos[self.rng.integers(0, e, n), self.rng.integers(0, l1, n)]

    def value_goals(self, ei, t, length, cfg: GCTrainConfig) -> np.ndarray:
        n = len(t)
        u = self.rng.random(n)
        cur = self.pos[ei, t + 1]
        traj = self.traj_goals(ei, t, length, cfg.discount)
        rand = self.random_goals(n)
        pc, pt = cfg.p_curgoal, cfg.p_curgoal + cfg.p_trajgoal
        return np.where((u < pc)[:, None], cur, np.where((u < pt)[:, None], traj, rand))


def save_gc_checkpoint(path: str | Path, method: str, model: nn.Module, cfg: GCConfig, step: int,
                       meta: dict | None = None) -> None:
    atomic_torch_save({"method": method, "model": model.state_dict(), "config": asdict(cfg), "step": step,
                       "meta": meta or {}}, path)


def _t(x: np.ndarray, dev: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x)).to(dev)


def data_meta(data: dict) -> dict:
    """The dataset facts a checkpoint needs for evaluation (plain types, weights_only-safe)."""
    m = data["meta"]
    return {"max_step": float(m["max_step"]), "img_size": int(m["img_size"]), "layout": dict(m["layout"]),
            "quality": str(m["quality"]), "episodes": int(m["episodes"]), "length": int(m["length"])}


def train_gcbc(data: dict, model_cfg: GCConfig | None = None, cfg: GCTrainConfig | None = None,
               device: str | None = None, out: str | Path | None = None, progress: bool = True):
    """Goal-conditioned behaviour cloning. Returns (policy, loss log)."""
    from rl_agents.pldm.train import pick_device

    cfg = cfg or GCTrainConfig()
    model_cfg = model_cfg or GCConfig(img_size=int(data["meta"].get("img_size", 64)))
    dev = pick_device(device)
    torch.manual_seed(cfg.seed)
    pi = GCPolicy(model_cfg).to(dev)
    opt = torch.optim.Adam(pi.parameters(), lr=cfg.lr)
    smp = GoalSampler(data, model_cfg.img_size, cfg.seed)
    log = []
    bar = tqdm(range(cfg.steps), desc="gcbc train", disable=not progress)
    for step in bar:
        ei, t, length = smp.transitions(cfg.batch_size)
        obs = _t(smp.render(smp.pos[ei, t]), dev)
        goal = _t(smp.render(smp.traj_goals(ei, t, length)), dev)
        act = _t(smp.act[ei, t], dev)
        loss = (pi(obs, goal) - act).pow(2).sum(-1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(pi.parameters(), cfg.grad_clip)
        opt.step()
        log.append({"actor": float(loss.detach())})
        if step % 50 == 0:
            bar.set_postfix(actor=f"{log[-1]['actor']:.3f}")
    if out:
        save_gc_checkpoint(out, "gcbc", pi, model_cfg, cfg.steps, {**data_meta(data), "train": asdict(cfg)})
    return pi.eval(), log


def gciql_losses(model: GCIQL, obs, act, next_obs, vgoal, reward, mask, agoal, cfg: GCTrainConfig) -> tuple[torch.Tensor, dict]:
    """All GCIQL losses for one batch (tensors already on the device)."""
    c = model.critic
    feat = c.encoder(obs, vgoal)
    with torch.no_grad():
        tq1, tq2 = model.target.qs(model.target.encoder(obs, vgoal), act)
        next_v = c.value(c.encoder(next_obs, vgoal))
        q_target = reward + cfg.discount * mask * next_v
    v = c.value(feat)
    value_loss = expectile_loss(torch.min(tq1, tq2) - v, cfg.expectile)
    q1, q2 = c.qs(feat, act)
    critic_loss = F.mse_loss(q1, q_target) + F.mse_loss(q2, q_target)
    with torch.no_grad():
        af = c.encoder(obs, agoal)
        aq1, aq2 = c.qs(af, act)
        adv = torch.min(aq1, aq2) - c.value(af)
        w = torch.exp(cfg.alpha * adv).clamp(max=cfg.max_weight)
    actor_loss = (w * (model.actor(obs, agoal) - act).pow(2).sum(-1)).mean()
    total = value_loss + critic_loss + actor_loss
    return total, {"value": value_loss.detach().item(), "critic": critic_loss.detach().item(),
                   "actor": actor_loss.detach().item(),
                   "v_mean": v.detach().mean().item(), "adv_mean": adv.mean().item()}


def train_gciql(data: dict, model_cfg: GCConfig | None = None, cfg: GCTrainConfig | None = None,
                device: str | None = None, out: str | Path | None = None, progress: bool = True):
    """Goal-conditioned IQL. Returns (model, loss log); model.actor is the policy."""
    from rl_agents.pldm.train import pick_device

    cfg = cfg or GCTrainConfig()
    model_cfg = model_cfg or GCConfig(img_size=int(data["meta"].get("img_size", 64)))
    dev = pick_device(device)
    torch.manual_seed(cfg.seed)
    model = GCIQL(model_cfg).to(dev)
    opt = torch.optim.Adam(list(model.critic.parameters()) + list(model.actor.parameters()), lr=cfg.lr)
    smp = GoalSampler(data, model_cfg.img_size, cfg.seed)
    log = []
    bar = tqdm(range(cfg.steps), desc="gciql train", disable=not progress)
    for step in bar:
        ei, t, length = smp.transitions(cfg.batch_size)
        vg = smp.value_goals(ei, t, length, cfg)
        reward, mask = goal_rewards(smp.pos[ei, t + 1], vg, cfg.goal_radius)
        ag = smp.traj_goals(ei, t, length)
        frames = smp.render(np.stack([smp.pos[ei, t], smp.pos[ei, t + 1], vg, ag]))  # (4, B, 2, S, S)
        frames = _t(frames, dev)
        loss, parts = gciql_losses(model, frames[0], _t(smp.act[ei, t], dev), frames[1], frames[2],
                                   _t(reward, dev), _t(mask, dev), frames[3], cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        with torch.no_grad():
            for p, tp in zip(model.critic.parameters(), model.target.parameters()):
                tp.lerp_(p, cfg.tau)
        log.append(parts)
        if step % 50 == 0:
            bar.set_postfix({k: f"{v:.2f}" for k, v in parts.items()})
    if out:
        save_gc_checkpoint(out, "gciql", model, model_cfg, cfg.steps, {**data_meta(data), "train": asdict(cfg)})
    return model.eval(), log


class GCAgent:
    """act(obs, goal_obs) like PLDMAgent: one policy forward pass per step."""

    def __init__(self, policy: GCPolicy, max_step: float):
        self.policy = policy.eval()
        self.device = next(policy.parameters()).device
        self.max_step = float(max_step)

    def reset(self) -> None:
        pass

    @torch.no_grad()
    def act(self, obs: np.ndarray, goal_obs: np.ndarray) -> np.ndarray:
        a = self.policy(_t(obs, self.device)[None], _t(goal_obs, self.device)[None])[0]
        return a.cpu().numpy().astype(np.float64) * self.max_step


def read_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict:
    """torch.load(weights_only=True) with a clear error naming the file for missing or bad files."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint not found: {path}")
    try:
        ck = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling/zip error means the same thing here
        raise ValueError(f"{path} is not a valid checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(ck, dict) or "model" not in ck or "config" not in ck:
        raise ValueError(f"{path} is not a planning checkpoint (expected keys 'model' and 'config')")
    return ck


def load_agent(path: str | Path, device: str | torch.device = "cpu", mppi=None, seed: int = 0,
               max_step: float | None = None):
    """Any of pldm / gcbc / gciql checkpoints -> (agent with act(obs, goal_obs), checkpoint dict)."""
    ck = read_checkpoint(path, device)
    method = ck.get("method", "pldm")
    meta = ck.get("meta", {})
    if max_step is None:
        if "max_step" not in meta:
            raise ValueError(f"{path} does not record max_step; pass it (brs plan eval --max-step)")
        max_step = float(meta["max_step"])
    try:
        if method == "pldm":
            from rl_agents.pldm.train import PLDMAgent, pldm_from_checkpoint

            return PLDMAgent(pldm_from_checkpoint(ck, device), max_step, mppi, seed), ck
        cfg = GCConfig(**ck["config"])
        if method == "gcbc":
            pi = GCPolicy(cfg).to(device)
            pi.load_state_dict(ck["model"])
        elif method == "gciql":
            model = GCIQL(cfg).to(device)
            model.load_state_dict(ck["model"])
            pi = model.actor
        else:
            raise ValueError(f"{path}: unknown method {method!r}")
    except (RuntimeError, TypeError, KeyError) as exc:
        raise ValueError(f"{path}: checkpoint does not match the {method} model ({exc})") from exc
    return GCAgent(pi, max_step), ck


def train_method(method: str, data: dict, steps: int, seed: int = 0, out: str | Path | None = None,
                 device: str | None = None, batch_size: int = 64, lr: float = 1e-3, seq_len: int = 4,
                 progress: bool = True, model_size: dict | None = None):
    """Train pldm | gcbc | gciql with the shared small-scale settings; returns (model, loss log).

    `model_size`: channels / hidden (and latent_dim for PLDM); defaults are PLDM's (32 / 128 / 32).
    The checkpoint (when `out` is set) records method and dataset facts, so `load_agent` needs nothing else.
    """
    size = dict(model_size or {})
    img = int(data["meta"]["img_size"])
    if method == "pldm":
        from rl_agents.pldm.model import PLDMConfig
        from rl_agents.pldm.train import TrainConfig, save_checkpoint, train

        model, log = train(data, PLDMConfig(img_size=img, **size),
                           TrainConfig(steps=steps, batch_size=batch_size, seq_len=seq_len, lr=lr, seed=seed),
                           device, None, progress)
        if out:
            save_checkpoint(out, model, steps, {"method": "pldm", "meta": {
                **data_meta(data), "train": {"steps": steps, "batch_size": batch_size, "lr": lr, "seq_len": seq_len,
                                             "seed": seed}}})
        return model, log
    size.pop("latent_dim", None)
    cfg = GCTrainConfig(steps=steps, batch_size=batch_size, lr=lr, seed=seed)
    if method == "gcbc":
        return train_gcbc(data, GCConfig(img_size=img, **size), cfg, device, out, progress)
    if method == "gciql":
        return train_gciql(data, GCConfig(img_size=img, **size), cfg, device, out, progress)
    raise ValueError(f"unknown method {method!r}; choose from {METHODS}")
