"""`brs rl train`: train MR.Q on a registered environment (gym/..., dmc/...), with resume.

Writes into --out: eval.csv (step, mean return, wall s, steps/s), episodes.csv, summary.json,
curve.png (evaluation returns), checkpoints/last.pt (agent + replay buffer, for --resume) and
policy.pt (weights only). Checkpoints load with torch.load(weights_only=True).
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

EXAMPLES = """examples:
  brs rl train --env dmc/cartpole-balance --steps 20000 --seed 0
  brs rl train --env gym/Pendulum-v1 --steps 5000 --reduced --out outputs/mrq/pendulum
  brs rl train --env dmc/cheetah-run --steps 100000 --device cuda --out outputs/mrq/cheetah --resume
"""

REDUCED = dict(zs_dim=64, zsa_dim=64, za_dim=32, enc_hdim=64, value_hdim=64, policy_hdim=64, batch_size=64,
               random_steps=1000)


def add_parser(sub) -> None:
    """Register `rl` (with `rl train`) on brs's subparsers."""
    rl = sub.add_parser("rl", help="reinforcement learning agents (MR.Q)")
    rl_sub = rl.add_subparsers(dest="rl_command", required=True, metavar="command")
    _add_train(rl_sub)
    from rl_agents.ros_eval import add_eval_parser  # `brs rl eval`: a policy in the ROS sim graph

    add_eval_parser(rl_sub)


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train MR.Q on an environment", description=__doc__.splitlines()[0],
                          epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _arguments(p)
    p.set_defaults(func=run)


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--env", required=True,
                   help="gym/<EnvId>, dmc/<domain>-<task>, dmc-pixels/<domain>-<task> or ros/<task>")
    p.add_argument("--steps", type=int, required=True, help="total agent steps (DMC: 2 frames each)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="output folder (default outputs/mrq/<env>_s<seed>)")
    p.add_argument("--eval-every", type=int, default=5000)
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--ckpt-every", type=int, default=10000, help="checkpoint (with buffer) every N steps")
    p.add_argument("--no-buffer-in-ckpt", action="store_true", help="checkpoints without the replay buffer")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.pt")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--reduced", action="store_true", help="small networks/batch for quick CPU runs (not the paper)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="MRQConfig overrides")


def _overrides(items: list[str]) -> dict:
    from .config import MRQConfig

    fields = MRQConfig.__dataclass_fields__
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        if key not in fields:
            raise ValueError(f"unknown MRQConfig field {key!r}")
        typ = type(getattr(MRQConfig(), key))
        out[key] = value.lower() in ("1", "true", "yes") if typ is bool else typ(float(value)) if typ is int else typ(value)
    return out


def _plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r["step"] for r in rows], [r["return"] for r in rows], marker="o")
    ax.set_xlabel("agent steps")
    ax.set_ylabel("evaluation return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(args) -> int:
    import torch
    from tqdm import tqdm

    from rl_agents.envs import make_env

    from .agent import MRQAgent
    from .config import MRQConfig
    from .loop import Trainer, evaluate

    if args.threads:
        torch.set_num_threads(args.threads)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    out = Path(args.out or f"outputs/mrq/{args.env.replace('/', '_')}_s{args.seed}")
    ckpt = out / "checkpoints" / "last.pt"
    out.mkdir(parents=True, exist_ok=True)
    env = make_env(args.env, seed=args.seed)
    eval_env = make_env(args.env, seed=args.seed + 10_000)
    overrides = {**(REDUCED if args.reduced else {}), **_overrides(args.set)}
    if args.resume and ckpt.exists():
        agent = MRQAgent.load(ckpt, device=device)
        history = json.loads((out / "summary.json").read_text()).get("eval", []) if (out / "summary.json").exists() else []
        print(f"resumed from {ckpt} at step {agent.env_steps}")
    else:
        cfg = MRQConfig(**{**overrides, "buffer_size": min(MRQConfig().buffer_size, max(args.steps, 1) + 10_000)})
        agent = MRQAgent(env.obs_shape, env.action_dim, discrete=env.discrete, pixel_obs=env.pixel_obs,
                         action_low=env.action_low, action_high=env.action_high, config=cfg, device=device,
                         seed=args.seed)
        history = []
    if agent.env_steps:
        env.reset(seed=args.seed + agent.env_steps)  # a fresh episode after a resume
    trainer = Trainer(env, agent)
    (out / "config.json").write_text(json.dumps({"env": args.env, "seed": args.seed, "device": device,
                                                 "config": agent.cfg.to_dict()}, indent=2) + "\n")

    def save_logs() -> None:
        with open(out / "eval.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["step", "return", "wall_s", "steps_per_s"])
            w.writeheader()
            w.writerows(history)
        summary = {"env": args.env, "seed": args.seed, "steps": agent.env_steps, "eval": history,
                   "final_return": history[-1]["return"] if history else None}
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        if history:
            _plot(history, out / "curve.png", f"MR.Q {args.env} seed {args.seed}")

    episodes = open(out / "episodes.csv", "a", newline="")
    ep_writer = csv.writer(episodes)
    t0, steps0 = time.perf_counter(), agent.env_steps
    bar = tqdm(total=args.steps, initial=agent.env_steps, unit="step", dynamic_ncols=True)
    try:
        while agent.env_steps < args.steps:
            n_eps = len(trainer.episode_returns)
            trainer.step()
            bar.update(1)
            if len(trainer.episode_returns) > n_eps:
                step, ret = trainer.episode_returns[-1]
                ep_writer.writerow([step, f"{ret:.3f}"])
                rate = (agent.env_steps - steps0) / max(time.perf_counter() - t0, 1e-9)
                bar.set_postfix(ret=f"{ret:.1f}", sps=f"{rate:.1f}")
            s = agent.env_steps
            if s % args.eval_every == 0 or s == args.steps:
                ret = evaluate(eval_env, agent, args.eval_episodes)
                wall = time.perf_counter() - t0
                history.append({"step": s, "return": round(ret, 3), "wall_s": round(wall, 1),
                                "steps_per_s": round((s - steps0) / max(wall, 1e-9), 2)})
                bar.write(f"step {s}: eval return {ret:.1f}")
                save_logs()
            if s % args.ckpt_every == 0 or s == args.steps:
                agent.save(ckpt, include_buffer=not args.no_buffer_in_ckpt)
                episodes.flush()
    finally:
        bar.close()
        episodes.close()
        env.close()  # ros/ envs stop their sim graph processes
        eval_env.close()
    agent.save(out / "policy.pt")
    save_logs()
    print(f"done: {agent.env_steps} steps, final eval return "
          f"{history[-1]['return'] if history else float('nan'):.1f}; logs in {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rl_agents.mrq.cli")
    _add_train(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
