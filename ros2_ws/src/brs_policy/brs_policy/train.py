"""WB-VIMA training: `train(TrainConfig(...)) -> metrics`.

AdamW (lr 7e-4, weight decay 0.1), linear warmup then cosine decay to 5e-6, gradient clipping 1.0,
EMA of the weights (power 0.75, max 0.9999), seeded. Every `ckpt_every` steps `<out>/checkpoints/
last.pt` holds model + EMA + optimizer + LR schedule + step + all RNG states, so `resume=True`
continues exactly where it stopped. At the end `<out>/policy.pt` (weights + EMA, no optimizer),
`<out>/metrics.json` and `<out>/loss.png` (train and validation loss curves).

Validation: whole episodes held out (`val_episodes`), loss of the EMA model on fixed batches.
Multi-GPU: launch with `torchrun --nproc_per_node N -m brs_policy.train_cli ...`; with WORLD_SIZE
set, each rank trains on its own batches (batch / world size) under DistributedDataParallel and
rank 0 writes checkpoints and plots.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from brs_teleop.episode import SUCCESS_UNKNOWN, list_episodes, read_episode

from .dataset import PointsFn, WindowDataset
from .wbvima import EMA, WBVIMAConfig, WBVIMAPolicy, count_parameters, pick_device, save_checkpoint
from .wbvima.checkpoint import read_checkpoint


@dataclass
class TrainConfig:
    data: str | list = ""  # dataset folder(s) of episode files, or a list of episode paths
    include_failures: bool = False  # also train on a folder's episodes that record a failure
    out: str = "outputs/wbvima"
    steps: int = 300_000  # public config; scale down on a CPU (see docs/wbvima.md)
    batch: int = 256
    lr: float = 7e-4
    lr_min: float = 5e-6
    weight_decay: float = 0.1  # encoders and transformer (matrices only)
    head_weight_decay: float = 1e-6  # the diffusion UNets (Diffusion Policy's value: decay hurts denoisers)
    warmup_steps: int | None = None  # None: min(1000, steps // 20)
    grad_clip: float = 1.0
    ema_power: float = 0.75
    ema_max: float = 0.9999
    ckpt_every: int = 1000
    val_every: int = 500
    val_batches: int = 4
    val_episodes: int | None = None  # None: 10% of the episodes (at least 1 when >= 2 episodes)
    seed: int = 0
    device: str = "auto"
    points: int = 4096  # points per cloud fed to the model (the first n of the cached FPS-ordered clouds)
    crop: str | list | None = None  # perception crop box; None: the episodes' task box
    model: dict = field(default_factory=dict)  # WBVIMAConfig overrides
    resume: bool = False
    stop_at: int | None = None  # stop this run at this step (simulate an interruption); None: steps
    threads: int | None = None  # torch CPU threads
    progress: bool = True
    plot: bool = True
    log_every: int = 10


def _warmup(cfg: TrainConfig) -> int:
    return cfg.warmup_steps if cfg.warmup_steps is not None else max(1, min(1000, cfg.steps // 20))


def lr_lambda(cfg: TrainConfig, anchor: tuple[int, float] | None = None):
    """LR factor per step: linear warmup, then cosine to lr_min at cfg.steps. `anchor` (step,
    factor): from that step on, a cosine from that factor to lr_min at cfg.steps instead; a
    resumed run whose --steps grew continues from the LR it had (no restart of the schedule)."""
    warm, total, floor = _warmup(cfg), cfg.steps, cfg.lr_min / cfg.lr

    def f(step: int) -> float:
        if anchor is not None and step >= anchor[0]:
            start, top = anchor
        elif step < warm:
            return (step + 1) / warm
        else:
            start, top = warm, 1.0
        progress = min(1.0, (step - start) / max(1, total - start))
        return floor + (top - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return f


def _schedule_on_resume(cfg: TrainConfig, ts: dict) -> tuple[int, float] | None:
    """The anchor that continues a checkpoint's LR schedule under this run's cfg.steps."""
    old = ts.get("schedule") or {}
    total = int(old.get("total", json.loads(ts.get("train_config", "{}")).get("steps", cfg.steps)))
    anchor = tuple(old["anchor"]) if old.get("anchor") else None
    if total == cfg.steps:
        return anchor
    step = int(ts["step"])
    was = replace(cfg, steps=total)
    return step, lr_lambda(was, anchor)(step)


def _failed(path: Path) -> bool:
    """Whether an episode records a failed attempt (success 0; teleop episodes are unknown, -1)."""
    with read_episode(path) as ep:
        return int(ep.metadata.get("success", SUCCESS_UNKNOWN)) == 0


def episode_paths(data, include_failures: bool = False) -> list[Path]:
    """Episode files of dataset folders and files. A folder's recorded failures (`brs collect`
    keeps them, e.g. with --action-noise) are left out unless `include_failures`; a file named
    explicitly is always used."""
    paths: list[Path] = []
    for item in [data] if isinstance(data, (str, Path)) else data:
        p = Path(item)
        if p.is_dir():
            complete, _ = list_episodes(p)
            failed = [] if include_failures else [e for e in complete if _failed(e)]
            if failed:
                print(f"{p}: leaving out {len(failed)} of {len(complete)} episodes that record a failure "
                      "(--include-failures keeps them)", file=sys.stderr)
            paths += [e for e in complete if e not in failed]
        elif p.is_file():
            paths.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such episode file or dataset folder")
    if not paths:
        raise FileNotFoundError(f"no complete episodes in {data}")
    return paths


def _crop_for(paths: list[Path], crop):
    if crop is not None:
        return crop
    from .perception import CROP_BOXES

    with read_episode(paths[0]) as ep:
        task = str(ep.metadata.get("task", ""))
    return task if task in CROP_BOXES else None


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    decay, head, no_decay = [], [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            if p.dim() < 2:
                no_decay.append(p)  # no decay on biases, norms, tokens
            else:
                (head if name.startswith("heads.") else decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": head, "weight_decay": cfg.head_weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))


def _to(batch: dict, device) -> dict:
    return {k: torch.from_numpy(np.ascontiguousarray(v)).to(device, non_blocking=True) for k, v in batch.items()}


def _rng_state(np_rng: np.random.Generator) -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": json.dumps(np_rng.bit_generator.state),
             "python": json.dumps(random.getstate())}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict, np_rng: np.random.Generator) -> None:
    torch.set_rng_state(state["torch"])
    np_rng.bit_generator.state = json.loads(state["numpy"])
    py = json.loads(state["python"])
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@torch.no_grad()
def validate(model: WBVIMAPolicy, ds: WindowDataset, batch: int, n_batches: int, device, seed: int = 1234) -> float:
    """Mean loss over fixed batches (fixed indices and noise), not touching the training RNGs."""
    was_training = model.training
    model.eval()
    rng = np.random.default_rng(seed)
    losses = []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for _ in range(n_batches):
            idx = rng.integers(len(ds), size=min(batch, len(ds)))
            loss, _ = model.compute_loss(_to(ds.batch(idx), device))
            losses.append(float(loss))
    model.train(was_training)
    return float(np.mean(losses))


def plot_losses(history: list, val_history: list, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    if history:
        s, l = np.array(history).T
        ax.plot(s, l, lw=0.8, alpha=0.5, label="train (per step)")
        if len(l) >= 20:
            k = max(5, len(l) // 50)
            ax.plot(s[k - 1:], np.convolve(l, np.ones(k) / k, "valid"), lw=1.5, label=f"train ({k}-step mean)")
    if val_history:
        s, l = np.array(val_history).T
        ax.plot(s, l, "o-", label="validation (EMA)")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("epsilon MSE")
    ax.set_title("WB-VIMA training loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def train(config: TrainConfig, points_fn: PointsFn | None = None) -> dict:
    """Train (or resume) a WB-VIMA policy; returns metrics (losses, timing, paths)."""
    cfg = config
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    distributed = world > 1
    if distributed:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available():
            torch.cuda.set_device(local)
            device = torch.device("cuda", local)
        else:
            device = torch.device("cpu")
        created_group = not dist.is_initialized()
        if created_group:
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    else:
        device = pick_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    main = rank == 0
    out = Path(cfg.out)
    ckpt_path = out / "checkpoints" / "last.pt"
    paths = episode_paths(cfg.data, cfg.include_failures)  # before creating anything: bad input leaves no folder
    n_val = cfg.val_episodes if cfg.val_episodes is not None else (max(1, len(paths) // 10) if len(paths) >= 2 else 0)
    if n_val >= len(paths):
        raise ValueError(f"val_episodes={n_val} leaves no training episodes ({len(paths)} in total)")
    if main:
        out.mkdir(parents=True, exist_ok=True)

    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed + rank)
    np_rng = np.random.default_rng(cfg.seed + rank)
    train_paths, val_paths = paths[: len(paths) - n_val], paths[len(paths) - n_val:]
    crop = _crop_for(paths, cfg.crop)

    resume_data = read_checkpoint(ckpt_path) if cfg.resume and ckpt_path.is_file() else None
    if resume_data is not None:
        model_cfg = WBVIMAConfig.from_json(resume_data["config_json"])
    else:
        from .perception import crop_box

        overrides = {"n_points": cfg.points, "xyz_box": crop_box(crop).tolist(), **cfg.model}
        model_cfg = WBVIMAConfig(**overrides)
    targets_fn = None
    if model_cfg.aux_object_weight > 0:
        from .object_targets import object_pose_targets as targets_fn
    train_ds = WindowDataset(train_paths, model_cfg.obs_window, model_cfg.horizon, points_fn,
                             model_cfg.n_points, progress=cfg.progress and main, crop=crop, targets_fn=targets_fn)
    # validation: the action loss only (comparable with runs without the auxiliary loss)
    val_ds = (WindowDataset(val_paths, model_cfg.obs_window, model_cfg.horizon, points_fn,
                            model_cfg.n_points, crop=crop) if val_paths else None)

    model = WBVIMAPolicy(model_cfg)
    if resume_data is None:
        chunks, chunk_proprio = train_ds.action_chunks()
        model.fit_normalizers(model.to_relative(torch.from_numpy(chunks), torch.from_numpy(chunk_proprio)),
                              train_ds.all_proprio())
    else:
        model.load_state_dict(resume_data["model"])
    model.to(device).train()
    ema = EMA(model, power=cfg.ema_power, max_value=cfg.ema_max)
    opt = make_optimizer(model, cfg)
    anchor = _schedule_on_resume(cfg, resume_data["train_state"]) if resume_data is not None else None
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg, anchor))
    step, history, val_history = 0, [], []
    if resume_data is not None:
        ts = resume_data["train_state"]
        opt.load_state_dict(ts["optimizer"])
        sched.load_state_dict(ts["scheduler"])
        for group in opt.param_groups:  # the LR of this step under the (possibly extended) schedule
            group["lr"] = group["initial_lr"] * sched.lr_lambdas[0](sched.last_epoch)
        ema.load_state_dict(resume_data["ema"])
        step = int(ts["step"])
        history = [tuple(h) for h in ts["history"]]
        val_history = [tuple(h) for h in ts["val_history"]]
        _set_rng_state(ts["rng"][rank] if rank < len(ts["rng"]) else ts["rng"][0], np_rng)
    net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) \
        if distributed else model
    per_rank = max(1, cfg.batch // world)

    def train_state() -> dict:
        states = [_rng_state(np_rng)]
        if distributed:
            gathered = [None] * world
            dist.all_gather_object(gathered, states[0])
            states = gathered
        return {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "step": step,
                "history": [list(h) for h in history], "val_history": [list(h) for h in val_history],
                "rng": states, "train_config": json.dumps(asdict(cfg), default=str),
                "schedule": {"total": cfg.steps, "anchor": list(anchor) if anchor else None}}

    def checkpoint():
        ts = train_state()  # every rank (gathers RNG states)
        if main:
            save_checkpoint(ckpt_path, model, ema.state_dict(), ts)

    stop = min(cfg.stop_at or cfg.steps, cfg.steps)
    bar = None
    if cfg.progress and main:
        from tqdm import tqdm

        bar = tqdm(total=stop, initial=step, desc="train wb-vima", dynamic_ncols=True)
    t0, steps_run, aux_losses = time.perf_counter(), 0, []
    while step < stop:
        idx = np_rng.integers(len(train_ds), size=per_rank)
        batch = _to(train_ds.batch(idx), device)
        loss, parts = net(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        ema.update(model)
        step += 1
        steps_run += 1
        history.append((step, float(loss.detach())))
        if "object_pose" in parts:
            aux_losses.append(parts["object_pose"])
        if bar is not None:
            bar.update(1)
            if step % cfg.log_every == 0 or step == stop:
                shown = {"loss": f"{np.mean([h[1] for h in history[-cfg.log_every:]]):.4f}"}
                if aux_losses:
                    shown["object_pose"] = f"{np.mean(aux_losses[-cfg.log_every:]):.3f}"
                bar.set_postfix(**shown, lr=f"{sched.get_last_lr()[0]:.2e}")
        if val_ds is not None and main and (step % cfg.val_every == 0 or step == cfg.steps):
            val_history.append((step, validate(ema.model, val_ds, per_rank, cfg.val_batches, device)))
        if step % cfg.ckpt_every == 0 or step == stop:
            checkpoint()
    elapsed = time.perf_counter() - t0
    if bar is not None:
        bar.close()

    metrics = {
        "step": step, "steps_run": steps_run, "steps_per_s": steps_run / elapsed if elapsed > 0 else 0.0,
        "params": count_parameters(model), "device": str(device), "world_size": world,
        "train_episodes": len(train_paths), "val_episodes": len(val_paths), "windows": len(train_ds),
        "batch": cfg.batch, "points": model_cfg.n_points,
        "initial_loss": float(np.mean([h[1] for h in history[:10]])) if history else float("nan"),
        "final_loss": float(np.mean([h[1] for h in history[-10:]])) if history else float("nan"),
        "val_loss": val_history[-1][1] if val_history else None,
        "final_object_pose_loss": float(np.mean(aux_losses[-10:])) if aux_losses else None,
        "history": history, "val_history": val_history, "checkpoint": str(ckpt_path),
    }
    if main:
        if step >= cfg.steps:
            metrics["policy"] = str(save_checkpoint(out / "policy.pt", model, ema.state_dict(),
                                                    extra={"metrics": json.dumps({k: v for k, v in metrics.items()
                                                                                  if k not in ("history", "val_history")})}))
        (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
        if cfg.plot:
            plot_losses(history, val_history, out / "loss.png")
            metrics["plot"] = str(out / "loss.png")
    if distributed:
        dist.barrier()
        if created_group:
            dist.destroy_process_group()
    return metrics
