"""Replay buffer with LAP prioritised sampling (Fujimoto et al., 2020) and fixed-horizon windows.

Transitions are written to consecutive slots of preallocated tensors: slot j holds (obs_j, a_j, r_j,
not_done_j) and the next observation is obs_{j+1}. When an episode ends, `horizon` padding slots
follow it (obs = final observation, a = 0, r = 0, not_done = 0), so a window of `horizon` steps that
starts near a termination stays inside the episode and is masked by not_done. A slot is a valid
window start (priority > 0) once its whole window is written; windows that cross a truncation
(time limit) are never sampled. Sampling is one cumsum + searchsorted over the priorities.
"""

from __future__ import annotations

import numpy as np
import torch


class ReplayBuffer:
    def __init__(self, obs_shape: tuple, action_dim: int, *, horizon: int, capacity: int = 1_000_000,
                 batch_size: int = 256, pixel_obs: bool = False, prioritized: bool = True,
                 alpha: float = 0.4, min_priority: float = 1.0, device="cpu"):
        self.device = torch.device(device)
        self.obs_shape, self.action_dim = tuple(obs_shape), action_dim
        self.horizon, self.capacity, self.batch_size = horizon, int(capacity), batch_size
        self.prioritized, self.alpha, self.min_priority = prioritized, alpha, min_priority
        n = self.capacity
        obs_dtype = torch.uint8 if pixel_obs else torch.float32
        # empty, not zeros: unwritten slots are never read (priority 0), and on CPU the OS commits the
        # pages only when written, so a 1e6-slot pixel buffer costs memory as it fills
        self.obs = torch.empty((n, *self.obs_shape), dtype=obs_dtype, device=self.device)
        self.action = torch.zeros((n, action_dim), dtype=torch.float32, device=self.device)
        self.reward = torch.zeros(n, dtype=torch.float32, device=self.device)
        self.not_done = torch.zeros(n, dtype=torch.float32, device=self.device)
        self.real = torch.zeros(n, dtype=torch.bool, device=self.device)  # a real transition, not padding
        self.priority = torch.zeros(n, dtype=torch.float32, device=self.device)  # already ^alpha; 0 = invalid
        self._max_p = torch.ones((), dtype=torch.float32, device=self.device)  # tensor: no device sync
        self.pos = 0  # next slot to write
        self.size = 0  # slots written (<= capacity)
        self.ep_len = 0  # transitions so far in the current episode
        self.num_transitions = 0  # real transitions added, ever
        self.env_terminates = False  # seen at least one termination (enables the done loss)
        self._offsets = {}
        self._last_idx: torch.Tensor | None = None

    # ---------------------------------------------------------------- writing
    def _write(self, obs, action, reward: float, not_done: float, real: bool) -> int:
        j = self.pos
        self.obs[j] = obs
        self.action[j] = action
        self.reward[j] = reward
        self.not_done[j] = not_done
        self.real[j] = real
        self.priority[j] = 0.0  # the old window starting here is gone
        self.pos = (j + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        return j

    @property
    def max_priority(self) -> float:
        return float(self._max_p)

    def _validate(self, slot: int) -> None:
        self.priority[slot % self.capacity] = self._max_p

    def add(self, obs, action, reward: float, next_obs, terminated: bool, truncated: bool) -> None:
        """Add one transition; `action` is the normalised action ([-1, 1] box or one-hot)."""
        obs_t = torch.as_tensor(np.asarray(obs), device=self.device)
        act_t = torch.as_tensor(np.asarray(action, dtype=np.float32), device=self.device)
        j = self._write(obs_t, act_t, float(reward), 0.0 if terminated else 1.0, True)
        self.num_transitions += 1
        h = self.horizon
        if self.ep_len >= h:  # the window starting h slots back is now complete
            self._validate(j - h)
        self.ep_len += 1
        if terminated or truncated:
            nobs = torch.as_tensor(np.asarray(next_obs), device=self.device)
            zero_a = torch.zeros(self.action_dim, device=self.device)
            for _ in range(h):
                self._write(nobs, zero_a, 0.0, 0.0, False)
            if terminated:
                self.env_terminates = True
                first = max(0, self.ep_len - h)  # all remaining starts: masked by not_done
            else:
                first = self.ep_len - h if self.ep_len >= h else self.ep_len  # only the one ending at the cut
            for k in range(first, self.ep_len if terminated else min(self.ep_len, first + 1)):
                self._validate(j - (self.ep_len - 1 - k))
            self.ep_len = 0

    # ---------------------------------------------------------------- sampling
    def num_valid(self) -> int:
        return int((self.priority > 0).sum())

    def sample_indices(self) -> torch.Tensor:
        p = self.priority[: self.size]
        csum = torch.cumsum(p, 0, dtype=torch.float64)
        u = torch.rand(self.batch_size, device=self.device, dtype=torch.float64) * csum[-1]
        idx = torch.searchsorted(csum, u, right=True).clamp_(max=self.size - 1)
        self._last_idx = idx
        return idx

    def sample(self, horizon: int):
        """A batch of windows: obs (B, h+1, *obs), action (B, h, A), reward (B, h), not_done (B, h)."""
        idx = self.sample_indices()
        if horizon not in self._offsets:
            self._offsets[horizon] = torch.arange(horizon + 1, device=self.device)
        win = (idx[:, None] + self._offsets[horizon]) % self.capacity
        step = win[:, :-1]
        return self.obs[win], self.action[step], self.reward[step], self.not_done[step]

    def update_priority(self, priority: torch.Tensor) -> None:
        """priority: raw |TD error| per sample of the last batch; stored as max(p, min)^alpha."""
        if not self.prioritized:
            return
        p = priority.detach().reshape(-1).float().clamp(min=self.min_priority).pow(self.alpha)
        self.priority[self._last_idx] = p
        self._max_p = torch.maximum(self._max_p, p.max())

    def reward_scale(self, eps: float = 1e-8) -> float:
        """Mean absolute reward over the real transitions in the buffer."""
        n = int(self.real.sum())
        if n == 0:
            return 1.0
        return max(float((self.reward.abs() * self.real).sum()) / n, eps)

    # ---------------------------------------------------------------- checkpoint
    def state_dict(self) -> dict:
        n = self.size
        out = {k: getattr(self, k)[:n].cpu() for k in ("obs", "action", "reward", "not_done", "real", "priority")}
        out.update(max_priority=self.max_priority, pos=self.pos, size=self.size, ep_len=self.ep_len,
                   num_transitions=self.num_transitions, env_terminates=self.env_terminates)
        return out

    def load_state_dict(self, d: dict) -> None:
        n = int(d["size"])
        for k in ("obs", "action", "reward", "not_done", "real", "priority"):
            getattr(self, k)[:n] = d[k].to(self.device)
        self._max_p = torch.tensor(float(d["max_priority"]), device=self.device)
        self.pos, self.size, self.ep_len = int(d["pos"]), n, int(d["ep_len"])
        self.num_transitions, self.env_terminates = int(d["num_transitions"]), bool(d["env_terminates"])
        if self.ep_len > 0:  # the environment restarts on resume: close the cut episode (no new windows)
            last = self.obs[(self.pos - 1) % self.capacity].clone()
            zero_a = torch.zeros(self.action_dim, device=self.device)
            for _ in range(self.horizon):
                self._write(last, zero_a, 0.0, 0.0, False)
            self.ep_len = 0
