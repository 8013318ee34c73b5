"""MR.Q agent (Fujimoto et al., 2025): model-based representation, model-free TD3-style actor-critic."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from rl_agents.files import atomic_torch_save

from .buffer import ReplayBuffer
from .config import MRQConfig
from .networks import Encoder, Policy, Value
from .two_hot import TwoHot


def multi_step_return(reward: torch.Tensor, not_done: torch.Tensor, discount: float):
    """reward, not_done: (B, h). Returns (sum_i gamma^i r_i masked after a termination, bootstrap factor).

    The factor is prod_i gamma * not_done_i, i.e. gamma^h without a termination in the window, else 0.
    """
    disc = torch.cumprod(discount * not_done, dim=1)
    scale = torch.cat([torch.ones_like(disc[:, :1]), disc[:, :-1]], dim=1)
    return (scale * reward).sum(1, keepdim=True), disc[:, -1:]


def random_shift(x: torch.Tensor, pad: int) -> torch.Tensor:
    """DrQ random shift: replicate-pad by `pad`, crop back at a random offset per image. (N, C, H, W)."""
    n, c, h, w = x.shape
    xp = F.pad(x.float(), (pad, pad, pad, pad), mode="replicate")
    wp = w + 2 * pad
    dy = torch.randint(0, 2 * pad + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (n, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1) + dy
    cols = torch.arange(w, device=x.device).view(1, 1, w) + dx
    idx = (rows * wp + cols).view(n, 1, h * w).expand(n, c, h * w)
    return xp.flatten(2).gather(2, idx).view(n, c, h, w)


class MRQAgent:
    def __init__(self, obs_shape, action_dim: int, *, discrete: bool = False, pixel_obs: bool = False,
                 action_low=None, action_high=None, config: MRQConfig | None = None, device="cpu", seed: int = 0):
        self.cfg = cfg = dataclasses.replace(config) if config is not None else MRQConfig()
        self.device = torch.device(device)
        self.obs_shape, self.action_dim = tuple(int(s) for s in obs_shape), int(action_dim)
        self.discrete, self.pixel_obs, self.seed = discrete, pixel_obs, seed
        low = -np.ones(action_dim) if action_low is None else np.asarray(action_low, dtype=np.float64)
        high = np.ones(action_dim) if action_high is None else np.asarray(action_high, dtype=np.float64)
        self.action_low, self.action_high = low, high
        noise_scale = 0.5 if discrete else 1.0  # one-hot actions live in [0, 1], boxes in [-1, 1]
        self.exploration_noise = cfg.exploration_noise * noise_scale
        self.target_policy_noise = cfg.target_policy_noise * noise_scale
        self.noise_clip = cfg.noise_clip * noise_scale

        torch.manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.encoder = Encoder(self.obs_shape, action_dim, pixel_obs, cfg).to(self.device)
        self.value = Value(cfg).to(self.device)
        self.policy = Policy(action_dim, discrete, cfg).to(self.device)
        self.encoder_target = copy.deepcopy(self.encoder).requires_grad_(False)
        self.value_target = copy.deepcopy(self.value).requires_grad_(False)
        self.policy_target = copy.deepcopy(self.policy).requires_grad_(False)
        opt_kw = {"fused": True} if cfg.fast_update else {"foreach": False}
        self.encoder_opt = torch.optim.AdamW(self.encoder.parameters(), lr=cfg.enc_lr, weight_decay=cfg.enc_wd, **opt_kw)
        self.value_opt = torch.optim.AdamW(self.value.parameters(), lr=cfg.value_lr, weight_decay=cfg.value_wd, **opt_kw)
        self.policy_opt = torch.optim.AdamW(self.policy.parameters(), lr=cfg.policy_lr, weight_decay=cfg.policy_wd,
                                            **opt_kw)
        self.two_hot = TwoHot(cfg.lower, cfg.upper, cfg.num_bins, device=self.device)
        self.buffer = ReplayBuffer(self.obs_shape, action_dim, horizon=max(cfg.enc_horizon, cfg.q_horizon),
                                   capacity=cfg.buffer_size, batch_size=cfg.batch_size, pixel_obs=pixel_obs,
                                   prioritized=cfg.prioritized, alpha=cfg.alpha, min_priority=cfg.min_priority,
                                   device=self.device)
        self.reward_scale, self.target_reward_scale = 1.0, 0.0
        self.num_updates = 0  # gradient steps of value/policy
        self.encoder_updates = 0
        self.env_steps = 0  # transitions observed
        self.last_metrics: dict = {}

    # ------------------------------------------------------------------ acting
    def _to_env_action(self, a_norm: np.ndarray) -> np.ndarray:
        return self.action_low + (a_norm + 1.0) * 0.5 * (self.action_high - self.action_low)

    def _normalise_action(self, action) -> np.ndarray:
        if self.discrete:
            one_hot = np.zeros(self.action_dim, dtype=np.float32)
            one_hot[int(action)] = 1.0
            return one_hot
        a = np.asarray(action, dtype=np.float64)
        return (2.0 * (a - self.action_low) / (self.action_high - self.action_low) - 1.0).astype(np.float32)

    @property
    def training_started(self) -> bool:
        return self.buffer.num_transitions > self.cfg.random_steps

    def reset(self) -> None:
        """Nothing to forget between runs: the policy acts on each observation alone (the
        command-source protocol, brs_common.command_source.Policy)."""

    def act(self, obs, explore: bool = True):
        """Environment action: int for discrete spaces, array within [low, high] otherwise."""
        if explore and self.buffer.num_transitions < self.cfg.random_steps:
            if self.discrete:
                return int(self.rng.integers(self.action_dim))
            return self._to_env_action(self.rng.uniform(-1.0, 1.0, self.action_dim))
        with torch.no_grad():
            o = torch.as_tensor(np.asarray(obs), device=self.device).reshape(1, *self.obs_shape)
            a = self.policy.act(self.encoder.zs(o if self.pixel_obs else o.float()))
            if explore:
                a = a + torch.randn_like(a) * self.exploration_noise
            if self.discrete:
                return int(a.argmax())
            return self._to_env_action(a.clamp(-1.0, 1.0)[0].cpu().numpy().astype(np.float64))

    def observe(self, obs, action, reward: float, next_obs, terminated: bool, truncated: bool) -> None:
        self.buffer.add(obs, self._normalise_action(action), reward, next_obs, terminated, truncated)
        self.env_steps += 1

    # ------------------------------------------------------------------ learning
    def _augment(self, obs: torch.Tensor) -> torch.Tensor:
        if not (self.pixel_obs and self.cfg.pixel_augs):
            return obs
        b, t = obs.shape[:2]
        return random_shift(obs.flatten(0, 1), self.cfg.pixel_pad).view(b, t, *self.obs_shape)

    def update(self) -> dict | None:
        """One agent update (call once per environment step). Returns metrics, or None before training."""
        if not self.training_started:
            return None
        cfg = self.cfg
        self.num_updates += 1
        if (self.num_updates - 1) % cfg.target_update_freq == 0:
            self._update_targets()
            for _ in range(cfg.target_update_freq):
                obs, act, rew, nd = self.buffer.sample(cfg.enc_horizon)
                self.last_metrics.update(self.train_encoder(self._augment(obs), act, rew, nd))
        obs, act, rew, nd = self.buffer.sample(cfg.q_horizon)
        obs = self._augment(obs)
        ret, term_disc = multi_step_return(rew, nd, cfg.discount)
        q, q_target, metrics = self.train_rl(obs[:, 0], act[:, 0], obs[:, -1], ret, term_disc)
        if cfg.prioritized:
            self.buffer.update_priority((q - q_target).abs().max(1).values)
        self.last_metrics.update(metrics)
        return self.last_metrics

    def _update_targets(self) -> None:
        self.encoder_target.load_state_dict(self.encoder.state_dict())
        self.value_target.load_state_dict(self.value.state_dict())
        self.policy_target.load_state_dict(self.policy.state_dict())
        self.target_reward_scale = self.reward_scale
        self.reward_scale = self.buffer.reward_scale()

    def _prep(self, obs: torch.Tensor) -> torch.Tensor:
        return obs if self.pixel_obs else obs.float()

    def train_encoder(self, obs, act, rew, nd) -> dict:
        """Model-based unroll over the window: next-zs MSE, reward two-hot CE, termination MSE."""
        cfg = self.cfg
        b, h = act.shape[:2]
        with torch.no_grad():
            target_zs = self.encoder_target.zs(self._prep(obs[:, 1:]).flatten(0, 1)).view(b, h, -1)
        zs = self.encoder.zs(self._prep(obs[:, 0]))
        mask = torch.ones(b, 1, device=self.device)
        dyn_loss = reward_loss = done_loss = 0.0
        for i in range(h):
            done_pred, zs, r_logits = self.encoder.predict(zs, act[:, i])
            dyn_loss = dyn_loss + ((zs - target_zs[:, i]) ** 2 * mask).mean()
            reward_loss = reward_loss + (self.two_hot.cross_entropy(r_logits, rew[:, i]) * mask).mean()
            if self.buffer.env_terminates:
                done_loss = done_loss + ((done_pred - (1.0 - nd[:, i:i + 1])) ** 2 * mask).mean()
            mask = mask * nd[:, i:i + 1]
        loss = cfg.dyn_weight * dyn_loss + cfg.reward_weight * reward_loss + cfg.done_weight * done_loss
        self.encoder_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.encoder_opt.step()
        self.encoder_updates += 1
        return {"encoder_loss": float(loss.detach()) if not self.cfg.fast_update else loss.detach()}

    def train_rl(self, obs, action, next_obs, ret, term_disc):
        cfg = self.cfg
        with torch.no_grad():
            zs = self.encoder.zs(self._prep(obs))
            next_zs = self.encoder_target.zs(self._prep(next_obs))
            noise = (torch.randn_like(action) * self.target_policy_noise).clamp(-self.noise_clip, self.noise_clip)
            next_action = self.policy_target.act(next_zs) + noise
            if self.discrete:
                next_action = F.one_hot(next_action.argmax(1), self.action_dim).float()
            else:
                next_action = next_action.clamp(-1.0, 1.0)
            q_next = self.value_target(self.encoder_target.zsa(next_zs, next_action)).min(1, keepdim=True).values
            q_target = (ret + term_disc * q_next * self.target_reward_scale) / self.reward_scale
            zsa = self.encoder.zsa(zs, action)
        q = self.value(zsa)
        value_loss = F.smooth_l1_loss(q, q_target.expand(-1, 2))
        self.value_opt.zero_grad(set_to_none=True)
        value_loss.backward()
        torch.nn.utils.clip_grad_norm_(self.value.parameters(), cfg.value_grad_clip, foreach=cfg.fast_update)
        self.value_opt.step()

        pi, pre = self.policy(zs)
        q_pi = self.value(self.encoder.zsa(zs, pi))
        policy_loss = -q_pi.mean() + cfg.pre_activ_weight * pre.pow(2).mean()
        self.policy_opt.zero_grad(set_to_none=True)
        if cfg.fast_update:  # gradients for the policy only, not for value/encoder weights
            params = list(self.policy.parameters())
            for p, g in zip(params, torch.autograd.grad(policy_loss, params)):
                p.grad = g
        else:
            policy_loss.backward()
        self.policy_opt.step()
        metrics = {"value_loss": value_loss.detach(), "policy_loss": policy_loss.detach(), "q": q.detach().mean()}
        return q.detach(), q_target, metrics

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self, include_buffer: bool = False) -> dict:
        d = {
            "meta": {"obs_shape": list(self.obs_shape), "action_dim": self.action_dim, "discrete": self.discrete,
                     "pixel_obs": self.pixel_obs, "seed": self.seed,
                     "action_low": torch.as_tensor(self.action_low), "action_high": torch.as_tensor(self.action_high)},
            "config": self.cfg.to_dict(),
            "counters": {"num_updates": self.num_updates, "encoder_updates": self.encoder_updates,
                         "env_steps": self.env_steps, "reward_scale": self.reward_scale,
                         "target_reward_scale": self.target_reward_scale},
            "rng": {"torch": torch.get_rng_state(), "numpy": self.rng.bit_generator.state},
        }
        for name in ("encoder", "value", "policy", "encoder_target", "value_target", "policy_target",
                     "encoder_opt", "value_opt", "policy_opt"):
            d[name] = getattr(self, name).state_dict()
        if include_buffer:
            d["buffer"] = self.buffer.state_dict()
        return d

    def policy_state_dict(self) -> dict:
        """Only what `act(obs, explore=False)` needs: meta, config, counters, the state encoder's
        zs network and the policy (no value, targets, optimisers, rng or buffer; ~1/15 of policy.pt)."""
        d = self.state_dict()
        return {"meta": d["meta"], "config": d["config"], "counters": d["counters"],
                "zs_net": self.encoder.zs_net.state_dict(), "policy": d["policy"]}

    def load_state_dict(self, d: dict) -> None:
        if "value" not in d:  # policy_state_dict (export_policy): an agent that acts only
            self.encoder.zs_net.load_state_dict(d["zs_net"])
            self.policy.load_state_dict(d["policy"])
            self.env_steps = int(d["counters"]["env_steps"])
            return
        for name in ("encoder", "value", "policy", "encoder_target", "value_target", "policy_target",
                     "encoder_opt", "value_opt", "policy_opt"):
            getattr(self, name).load_state_dict(d[name])
        c = d["counters"]
        self.num_updates, self.encoder_updates = int(c["num_updates"]), int(c["encoder_updates"])
        self.env_steps = int(c["env_steps"])
        self.reward_scale, self.target_reward_scale = float(c["reward_scale"]), float(c["target_reward_scale"])
        torch.set_rng_state(d["rng"]["torch"])
        self.rng.bit_generator.state = d["rng"]["numpy"]
        if "buffer" in d:
            self.buffer.load_state_dict(d["buffer"])

    def save(self, path, include_buffer: bool = False) -> None:
        atomic_torch_save(self.state_dict(include_buffer), path)

    @classmethod
    def load(cls, path, device="cpu", config_overrides: dict | None = None, buffer: bool = True) -> "MRQAgent":
        """The agent of a checkpoint; `buffer` False leaves a stored replay buffer out (an agent
        that only acts: rl_agent_node)."""
        d = torch.load(path, map_location="cpu", weights_only=True)
        if not buffer:
            d.pop("buffer", None)
        m = d["meta"]
        cfg = MRQConfig.from_dict({**d["config"], **(config_overrides or {})})
        agent = cls(tuple(m["obs_shape"]), m["action_dim"], discrete=m["discrete"], pixel_obs=m["pixel_obs"],
                    action_low=m["action_low"].numpy(), action_high=m["action_high"].numpy(), config=cfg,
                    device=device, seed=m["seed"])
        agent.load_state_dict(d)
        return agent


def export_policy(checkpoint, path) -> None:
    """A training checkpoint (OUT/policy.pt or OUT/checkpoints/last.pt of `brs rl train`) -> a
    file with only the acting weights (`policy_state_dict`), for committed experts; it loads with
    `MRQAgent.load` as an agent whose `act(obs, explore=False)` is the checkpoint's."""
    atomic_torch_save(MRQAgent.load(checkpoint, buffer=False).policy_state_dict(), path)
