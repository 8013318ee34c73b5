"""WB-VIMA: whole-body visuomotor attention policy (BRS), the model and its inference API.

    per observation step s (To steps):  points (P, 6) --PointNet--> token_pc
                                        proprio (21)  --MLP------> token_prop
    tokens [pc_1, prop_1, R_1, pc_2, prop_2, R_2]  --GEGLU transformer (causal over steps,
                                                     readout tokens R_s read, are never read)--> r_s
    r_s --UNet_base--> a_base (T, 3)
    r_s + a_base --UNet_torso--> a_torso (T, 4)
    r_s + a_base + a_torso --UNet_arms--> a_arms+grippers (T, 14)      (autoregressive=True)

Training: teacher forcing (the torso/arms denoisers are conditioned on the clean ground-truth
actions of the parts before them), epsilon-prediction MSE with DDIM's training noise schedule.
Inference: the chain runs in order, each part's 16 DDIM steps using the finished parts before it.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from brs_common import robot_spec as spec

from .config import WBVIMAConfig
from .nets import InterleavedTransformer, PointNet, mlp
from .normalizer import Normalizer
from .unet import ConditionalUnet1D


AUX_DIM = 3  # object x, y (m) and yaw (rad) in base_link


def make_scheduler(cfg: WBVIMAConfig):
    from diffusers.schedulers.scheduling_ddim import DDIMScheduler

    return DDIMScheduler(num_train_timesteps=cfg.num_train_timesteps, beta_schedule=cfg.beta_schedule,
                         clip_sample=cfg.clip_sample, prediction_type=cfg.prediction_type,
                         set_alpha_to_one=True, steps_offset=0)


def ddim_step(x: torch.Tensor, eps: torch.Tensor, coef: tuple[float, float, float, float],
              clip: bool) -> torch.Tensor:
    """One DDIM step (eta 0, epsilon prediction) from x_t to x_t_prev, coef = (sqrt(a_t),
    sqrt(1 - a_t), sqrt(a_prev), sqrt(1 - a_prev)) with a = alphas_cumprod: what diffusers'
    DDIMScheduler.step computes, in 4 tensor ops (x and eps are left unchanged)."""
    sa, s1a, sap, s1ap = coef
    x0 = torch.sub(x, eps, alpha=s1a).div_(sa)  # predicted clean sample
    if clip:
        x0 = x0.clamp_(-1.0, 1.0)
    return x0.mul_(sap).add_(eps, alpha=s1ap)


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """"auto"/None -> cuda when available, else cpu."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class WBVIMAPolicy(nn.Module):
    def __init__(self, config: WBVIMAConfig | None = None):
        super().__init__()
        cfg = self.config = config or WBVIMAConfig()
        e = cfg.embed_dim
        self.pointnet = PointNet(cfg.point_dim, cfg.pointnet_hidden, cfg.pointnet_depth, e)
        self.proprio_mlp = mlp(cfg.proprio_dim, cfg.proprio_hidden, cfg.proprio_depth, e)
        self.transformer = InterleavedTransformer(e, cfg.n_layers, cfg.n_heads, cfg.dropout,
                                                  cfg.obs_window, n_obs_tokens=2, geglu=cfg.geglu)
        # denoising order = kinematic-tree order = position in the action: base, torso, arms
        self.part_names = sorted(cfg.parts, key=lambda n: cfg.parts[n][0])
        self.heads = nn.ModuleDict()
        prev = 0
        for name in self.part_names:
            a, b = cfg.parts[name]
            cond = e + (cfg.horizon * prev if cfg.autoregressive else 0)
            self.heads[name] = ConditionalUnet1D(b - a, cond, cfg.diffusion_step_embed_dim, cfg.unet_down_dims,
                                                 cfg.unet_kernel_size, cfg.unet_n_groups,
                                                 cfg.unet_cond_predict_scale)
            prev += b - a
        # training only (aux_object_weight > 0): point token -> object pose in base_link
        self.aux_head = nn.Linear(e, AUX_DIM) if cfg.aux_object_weight > 0 else None
        self.register_buffer("aux_scale", torch.tensor(cfg.aux_object_scale), persistent=False)
        self.action_normalizer = Normalizer(cfg.action_dim, cfg.action_norm)
        self.proprio_normalizer = Normalizer(cfg.proprio_dim, cfg.proprio_norm)
        if cfg.proprio_norm == "limits":  # base velocity within +-max, joints within their limits
            self.proprio_normalizer.set_range(spec.ACTION_LOWER, spec.ACTION_UPPER)
        # position entries of the action (relative targets are taken against these proprio entries)
        self.register_buffer("position_mask", torch.as_tensor(spec.POSITION), persistent=False)
        # proprio entries the encoder sees (1) or gets as 0 (the base velocity without base_velocity_input)
        seen = torch.ones(cfg.proprio_dim)
        if not cfg.base_velocity_input:
            seen[spec.group_slice("base")] = 0.0
        self.register_buffer("proprio_seen", seen, persistent=False)
        # loss weight per part: its share of the action's dimensions (every dimension counts alike),
        # times the config's extra weight for it
        self._part_weight = {n: (b - a) / cfg.action_dim * cfg.part_loss_weights.get(n, 1.0)
                             for n, (a, b) in cfg.parts.items()}
        box = torch.tensor(cfg.xyz_box, dtype=torch.float32)  # (3, 2)
        self.register_buffer("xyz_center", box.mean(1), persistent=False)
        self.register_buffer("xyz_scale", 2.0 / (box[:, 1] - box[:, 0]), persistent=False)
        self.scheduler = make_scheduler(cfg)
        self._ddim_cache: dict = {}
        self.token_cache = True  # reuse observation tokens of frames seen in the previous call
        self.denoise_threads = 1  # CPU threads for the denoising loop at inference (0: leave as is)
        self.jit = True  # denoise through TorchScript-frozen UNets at inference (eval mode)
        self._token_cache: dict = {}
        self._jit_cache: dict = {}

    # ---- observation encoding ------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return self.xyz_center.device

    def obs_tokens(self, points: torch.Tensor, proprio: torch.Tensor) -> torch.Tensor:
        """points (..., P, 6) metres + rgb 0..1, proprio (..., 21) raw -> tokens (..., 2, E)."""
        xyz = (points[..., :3] - self.xyz_center) * self.xyz_scale
        pts = torch.cat((xyz, points[..., 3:]), dim=-1)
        lead = pts.shape[:-2]
        pc = self.pointnet(pts.reshape(-1, *pts.shape[-2:])).reshape(*lead, -1)
        prop = self.proprio_mlp(self.proprio_normalizer.normalize(proprio) * self.proprio_seen)
        return torch.stack((pc, prop), dim=-2)

    def encode(self, points: torch.Tensor, proprio: torch.Tensor) -> torch.Tensor:
        """points (B, S, P, 6), proprio (B, S, 21) -> readout features (B, S, E)."""
        return self.transformer(self.obs_tokens(points, proprio))

    def _cond(self, readout: torch.Tensor, prev: list[torch.Tensor]) -> torch.Tensor:
        if not self.config.autoregressive or not prev:
            return readout
        return torch.cat([readout, *(p.flatten(1) for p in prev)], dim=-1)

    # ---- training --------------------------------------------------------------------------------

    def to_relative(self, actions: torch.Tensor, proprio: torch.Tensor) -> torch.Tensor:
        """actions (..., T, 21) raw, proprio (..., 21) of the chunk's observation -> the model's
        action targets: position entries minus the observed positions when `relative_actions`."""
        if not self.config.relative_actions:
            return actions
        return actions - torch.where(self.position_mask, proprio, torch.zeros_like(proprio)).unsqueeze(-2)

    def from_relative(self, actions: torch.Tensor, proprio: torch.Tensor) -> torch.Tensor:
        """Inverse of to_relative."""
        if not self.config.relative_actions:
            return actions
        return actions + torch.where(self.position_mask, proprio, torch.zeros_like(proprio)).unsqueeze(-2)

    def fit_normalizers(self, actions, proprio) -> None:
        """Fit the action normaliser on model targets (..., 21) (see to_relative) and the proprio
        one on proprio samples (..., 21) unless it uses the spec limits."""
        self.action_normalizer.fit(actions)
        if self.config.proprio_norm != "limits":
            self.proprio_normalizer.fit(proprio)

    def forward(self, batch: Mapping[str, torch.Tensor]):
        """= compute_loss (so DistributedDataParallel sees the training computation)."""
        return self.compute_loss(batch)

    def compute_loss(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """batch: points (B, To, P, 6), proprio (B, To, 21), actions (B, To, T, 21) raw.
        Epsilon MSE over all 21 action dimensions alike (each part weighted by its share of the
        dimensions: the arms' 14 count 14/21), times config.part_loss_weights; teacher forcing for
        the conditioning actions."""
        tokens = self.obs_tokens(batch["points"], batch["proprio"])  # (B, S, 2, E)
        steps = self.transformer(tokens)  # (B, S, E)
        b, s, e = steps.shape
        readout = steps.reshape(b * s, e)
        targets = self.to_relative(batch["actions"], batch["proprio"])
        actions = self.action_normalizer.normalize(targets).reshape(b * s, self.config.horizon, -1)
        n = actions.shape[0]
        t = torch.randint(0, self.config.num_train_timesteps, (n,), device=actions.device)
        losses, prev = {}, []
        for name in self.part_names:
            a, z = self.config.parts[name]
            clean = actions[..., a:z]
            noise = torch.randn_like(clean)
            noisy = self.scheduler.add_noise(clean, noise, t)
            pred = self.heads[name](noisy, t, self._cond(readout, prev))
            losses[name] = torch.nn.functional.mse_loss(pred, noise)
            prev.append(clean)
        loss = sum(self._part_weight[k] * v for k, v in losses.items())
        if self.aux_head is not None and "object_pose" in batch:
            source = tokens[..., 0, :] if self.config.aux_object_token == "point" else steps
            losses["object_pose"] = self._aux_loss(source, batch["object_pose"], batch["object_mask"])
            loss = loss + self.config.aux_object_weight * losses["object_pose"]
        return loss, {k: float(v.detach()) for k, v in losses.items()}

    def _aux_loss(self, token: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """MSE of the object pose predicted from a token (B, S, E) (config.aux_object_token), in units of
        config.aux_object_scale, over the observation steps where `mask` (B, S) says the pose is known."""
        err = ((self.aux_head(token) - target) / self.aux_scale) ** 2  # (B, S, 3)
        m = mask.to(err.dtype).unsqueeze(-1)
        return (err * m).sum() / (m.sum() * err.shape[-1]).clamp(min=1.0)

    # ---- inference -------------------------------------------------------------------------------

    def _ddim_table(self, steps: int) -> tuple[torch.Tensor, list[tuple[float, float, float, float]]]:
        """Timesteps and per-step DDIM (eta=0) coefficients, from diffusers' DDIMScheduler."""
        if steps not in self._ddim_cache:
            sched = make_scheduler(self.config)
            sched.set_timesteps(steps)
            ac = sched.alphas_cumprod.double()
            ratio = self.config.num_train_timesteps // steps
            coef = []
            for t in sched.timesteps.tolist():
                a_t = float(ac[t])
                a_prev = float(ac[t - ratio]) if t - ratio >= 0 else float(sched.final_alpha_cumprod)
                coef.append((a_t ** 0.5, (1 - a_t) ** 0.5, a_prev ** 0.5, (1 - a_prev) ** 0.5))
            self._ddim_cache[steps] = (sched.timesteps.clone(), coef)
        return self._ddim_cache[steps]

    def _denoise(self, head: ConditionalUnet1D, cond: torch.Tensor, x: torch.Tensor, steps: int,
                 use_diffusers: bool) -> torch.Tensor:
        timesteps, coef = self._ddim_table(steps)
        if use_diffusers:  # reference path: diffusers' step() per iteration
            sched = make_scheduler(self.config)
            sched.set_timesteps(steps)
            for t in sched.timesteps:
                eps = head(x, t.to(x.device).expand(x.shape[0]), cond)
                x = sched.step(eps, t, x).prev_sample
            return x
        films = head.film_table(timesteps.to(x.device), cond)  # FiLM of all steps in one pass
        run = self._frozen_unet(head, x, films[0]) if self.jit and not self.training else head.forward_with_film
        for film, c in zip(films, coef):
            x = ddim_step(x, run(x, film), c, self.config.clip_sample)
        return x

    def _frozen_unet(self, head: ConditionalUnet1D, x: torch.Tensor, film: torch.Tensor):
        """`head.forward_with_film` traced with TorchScript and frozen, for these shapes: the same
        graph without the Python/module-call overhead (a batch-1 UNet call is ~250 tiny ops; this
        halves its time). Traced on first use per (head, shapes); traced again when the weights
        change (parameter version counters), so it never serves stale weights."""
        key = (id(head), tuple(x.shape), tuple(film.shape), x.dtype, str(x.device))
        version = tuple((p._version, p.data_ptr()) for p in head.parameters())
        hit = self._jit_cache.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        try:
            with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # TorchScript's deprecation notice
                example = (x.clone(), film.clone())
                fn = torch.jit.freeze(torch.jit.trace(_FilmUNet(head).eval(), example, check_trace=False))
                for _ in range(2):  # the profiling executor optimises the graph on the first calls
                    fn(*example)
        except Exception as exc:  # noqa: BLE001 - a TorchScript failure must not stop inference
            warnings.warn(f"TorchScript tracing of the denoiser failed ({exc!r}); using eager mode",
                          RuntimeWarning, stacklevel=2)
            self.jit = False
            return head.forward_with_film
        self._jit_cache[key] = (version, fn)
        return fn

    @torch.inference_mode()
    def sample(self, readout: torch.Tensor, steps: int | None = None, generator: torch.Generator | None = None,
               noise: Mapping[str, torch.Tensor] | None = None, use_diffusers: bool = False,
               fixed: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        """readout (N, E) -> normalised action chunks (N, T, 21): base, then torso, then arms.

        noise: optional initial noise per part (N, T, d); fixed: optional normalised actions of
        parts to use instead of denoising them (used by tests to probe the conditioning)."""
        steps = steps or self.config.num_inference_steps
        n, t_len = readout.shape[0], self.config.horizon
        out, prev = [], []
        for name in self.part_names:
            a, z = self.config.parts[name]
            if fixed is not None and name in fixed:
                x = fixed[name].to(readout)
            else:
                x0 = noise[name].to(readout) if noise is not None and name in noise else torch.randn(
                    (n, t_len, z - a), generator=generator, device=readout.device if generator is None
                    else generator.device).to(readout)
                x = self._denoise(self.heads[name], self._cond(readout, prev), x0, steps, use_diffusers)
            out.append(x)
            prev.append(x)
        return torch.cat(out, dim=-1)

    def _as_tensor(self, x, dims: int) -> torch.Tensor:
        t = torch.as_tensor(np.asarray(x, dtype=np.float32) if not torch.is_tensor(x) else x,
                            dtype=torch.float32, device=self.device)
        return t if t.dim() == dims else t.unsqueeze(0)

    @torch.inference_mode()
    def predict_chunk(self, points, proprio, steps: int | None = None,
                      generator: torch.Generator | None = None) -> torch.Tensor:
        """points (B, To, P, 6), proprio (B, To, 21) -> denormalised actions (B, Ta, 21) (tensor)."""
        pts, prop = self._as_tensor(points, 4), self._as_tensor(proprio, 3)
        cfg = self.config
        if pts.shape[1] != cfg.obs_window or prop.shape[1] != cfg.obs_window:
            raise ValueError(f"need {cfg.obs_window} observation steps, got points {tuple(pts.shape)}, "
                             f"proprio {tuple(prop.shape)}")
        if pts.shape[-1] != cfg.point_dim or prop.shape[-1] != cfg.proprio_dim:
            raise ValueError(f"points need {cfg.point_dim} columns and proprio {cfg.proprio_dim}; got "
                             f"{tuple(pts.shape)}, {tuple(prop.shape)}")
        if not (torch.isfinite(pts).all() and torch.isfinite(prop).all()):
            raise ValueError("observation holds NaN or inf (points or proprio): refusing to act on it")
        readout = self.transformer(self._cached_tokens(pts, prop))[:, -1]  # the latest step's readout
        threads = torch.get_num_threads()
        single = self.device.type == "cpu" and self.denoise_threads and threads > self.denoise_threads
        if single:  # the denoisers run hundreds of tiny ops: threads only add sync (measured 2x)
            torch.set_num_threads(self.denoise_threads)
        try:
            chunk = self.sample(readout, steps, generator)[:, : cfg.n_action_steps]
        finally:
            if single:
                torch.set_num_threads(threads)
        return self.from_relative(self.action_normalizer.unnormalize(chunk), prop[:, -1])

    def _cached_tokens(self, pts: torch.Tensor, prop: torch.Tensor) -> torch.Tensor:
        """obs_tokens for (B, To, ...), reusing the tokens of observation steps seen in the last
        call (a rolling window shares To-1 frames with the previous one: the PointNet, the most
        expensive part of inference, then runs on the new frame only). Keyed by content."""
        if pts.shape[0] != 1 or not self.token_cache:
            return self.obs_tokens(pts, prop)
        keys = [hash((pts[0, s].cpu().numpy().tobytes(), prop[0, s].cpu().numpy().tobytes()))
                for s in range(pts.shape[1])]
        cache = self._token_cache
        missing = [s for s, k in enumerate(keys) if k not in cache]
        if missing:
            new = self.obs_tokens(pts[:, missing], prop[:, missing])[0]
            for j, s in enumerate(missing):
                cache[keys[s]] = new[j]
        tokens = torch.stack([cache[k] for k in keys])[None]
        self._token_cache = {k: cache[k] for k in keys}  # keep only the current window
        return tokens

    def clear_cache(self) -> None:
        self._token_cache = {}

    def warmup(self) -> float:
        """One prediction on a synthetic window, so that the first real control step does not pay
        the one-time work (TorchScript tracing of the 3 denoisers, FiLM step parts, DDIM table;
        ~3 s on this CPU under load). Returns the seconds taken; the token cache is left empty."""
        t0 = time.perf_counter()
        cfg = self.config
        self.predict({"points": np.zeros((cfg.obs_window, cfg.n_points, cfg.point_dim), np.float32),
                      "proprio": np.zeros((cfg.obs_window, cfg.proprio_dim), np.float32)})
        self.clear_cache()
        return time.perf_counter() - t0

    def train(self, mode: bool = True):
        self._token_cache = {}  # weights may change: never reuse tokens across training
        if mode:
            self._jit_cache = {}  # (frozen UNets are also re-traced when parameter versions change)
        return super().train(mode)

    def load_state_dict(self, *args, **kwargs):
        self._token_cache, self._jit_cache = {}, {}
        return super().load_state_dict(*args, **kwargs)

    def _apply(self, fn, *args, **kwargs):
        self._token_cache, self._jit_cache = {}, {}
        return super()._apply(fn, *args, **kwargs)

    def predict(self, obs_window: Mapping, steps: int | None = None, generator=None) -> np.ndarray:
        """{"points": (To, P, 6), "proprio": (To, 21)} -> (Ta, 21) float32 action chunk in
        spec.ACTION_JOINTS order (base entries velocities, the rest positions). Eval mode, no
        grad; load with `load_policy` to get the EMA weights."""
        if self.training:
            self.eval()
        out = self.predict_chunk(obs_window["points"], obs_window["proprio"], steps, generator)
        return out[0].float().cpu().numpy()

    # policy_node acts through the command-source protocol (brs_common.command_source.Policy)
    reset = clear_cache
    act = predict


class _FilmUNet(nn.Module):
    """Wrapper so that TorchScript traces `forward_with_film` (x, one step's FiLM row)."""

    def __init__(self, head: ConditionalUnet1D):
        super().__init__()
        self.head = head

    def forward(self, x: torch.Tensor, film: torch.Tensor) -> torch.Tensor:
        return self.head.forward_with_film(x, film)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
