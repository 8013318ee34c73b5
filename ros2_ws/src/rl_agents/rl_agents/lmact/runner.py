"""The evaluation loop: a model on an env over numbers of demonstrations and evaluation seeds.

`run(env, model, [0, 1, 2, 4, 8], seeds=range(20), path="out/run.jsonl")`:

1. Demonstrations: max(k) expert episodes with seeds DEMO_SEED_OFFSET, +1, ... (disjoint from the
   evaluation seeds: checked); a k-demo prompt holds the first k (nested sets).
2. References on the evaluation seeds, for the normalisation: the expert and the random policy
   (uniform legal actions), played directly (no prompt); the random reference of a seed is the
   mean of `random_rollouts` (default 10) episodes with their own seeded action streams, so its
   noise does not swamp a 20-episode comparison.
3. For each k and each evaluation seed, one episode: per step the prompt (k demos, the episode so
   far, the observation) goes to the model, its reply is parsed, an illegal or unparsable reply
   is counted and replaced by a random legal action (`actions.act_or_replace`, seeded by seed and
   k), and the env steps. Recorded: score (return), success, steps, illegal replies, tokens
   (from the model's usage), model latency, the fewest demos the context budget left in a prompt.

Every finished episode (and reference and demo) is one JSON line appended to `path` and flushed,
so an interrupted run (Ctrl-C, a back-end that gave up) resumes where it stopped when started
again with the same path: finished episodes are not repeated. The first line records the run's
identity (env, its options, model, observation format, demo seeds, random rollouts); resuming with another
identity is an error, more seeds or more demo counts are fine. A truncated last line (a crash
mid-write) is ignored. The demos are re-recorded on resume and must match the recorded actions.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

from .actions import act_or_replace
from .demos import DEMO_SEED_OFFSET, Episode, record_demos
from .models import Query
from .prompt import IMAGE_TOKENS, PromptBuilder

FORMAT_VERSION = 1


def context_budget(model) -> int | None:
    """Prompt tokens a model allows (its context less its answer), None: no check."""
    if getattr(model, "max_context_tokens", None) is None:
        return None
    return model.max_context_tokens - getattr(model, "max_output_tokens", 0)


def play_episode(env, model, builder: PromptBuilder, k: int, seed: int, budget: int | None = None,
                 drop_demos: bool = True) -> dict:
    """One evaluation episode through the prompt/parse/replace loop -> its record."""
    space = env.action_space
    replace_rng = random.Random(f"replace-{seed}-{k}")
    demo_actions = [ep.actions for ep in builder.demos]
    model.reset(seed)
    ctx = builder.episode()
    obs, done = env.reset(seed), False
    rec = {"type": "episode", "num_demos": k, "seed": seed, "score": 0.0, "steps": 0, "illegal": 0,
           "prompt_tokens": 0, "completion_tokens": 0, "latency_s": 0.0, "demos_in_context": k,
           "actions": [], "illegal_replies": []}
    t0 = time.perf_counter()
    while not done and rec["steps"] < env.max_steps:
        prompt, rendered = ctx.prompt(obs, k, budget, drop_demos)
        query = Query(prompt, rendered, builder.rendered, demo_actions, env.legal_actions(), env, rec["steps"])
        t = time.perf_counter()
        reply = model.act(query)
        rec["latency_s"] += time.perf_counter() - t
        action, legal = act_or_replace(space, reply.text, env, replace_rng)
        if not legal:
            rec["illegal"] += 1
            if len(rec["illegal_replies"]) < 3:
                rec["illegal_replies"].append(reply.text[:100])
        text = space.format(action)
        ctx.add(obs, text)
        obs, reward, done = env.step(action)
        rec["score"] += reward
        rec["steps"] += 1
        rec["actions"].append(text)
        rec["prompt_tokens"] += reply.prompt_tokens
        rec["completion_tokens"] += reply.completion_tokens
        rec["demos_in_context"] = min(rec["demos_in_context"], prompt.num_demos)
    rec["success"] = bool(env.success)
    rec["wall_s"] = time.perf_counter() - t0
    return rec


def play_reference(env, policy: str, seed: int, rollouts: int = 1) -> dict:
    """The random policy or the expert on `seed`, without a prompt -> its record (score, success
    and steps averaged over `rollouts` episodes of the same seed, each with its own action stream)."""
    scores, wins, steps = [], 0, 0
    for i in range(rollouts):
        rng = random.Random(f"random-reference-{seed}-{i}")
        obs, done, score, n = env.reset(seed), False, 0.0, 0
        while not done and n < env.max_steps:
            action = env.expert() if policy == "expert" else env.action_space.sample(rng, env)
            obs, reward, done = env.step(action)
            score += reward
            n += 1
        scores.append(score)
        wins += bool(env.success)
        steps += n
    return {"type": "reference", "policy": policy, "seed": seed, "score": sum(scores) / rollouts,
            "success": wins / rollouts, "steps": steps / rollouts, "rollouts": rollouts}


def read_jsonl(path: Path) -> list[dict]:
    """The records of a results file; unreadable lines (a truncated last write) are skipped."""
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict):
                rows.append(row)
    return rows


class _Log:
    """Appends records to the results file (or only keeps them, without a file)."""

    def __init__(self, path: Path | None, rows: list[dict]):
        self.path, self.rows = path, rows
        self.file = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            ends_clean = True
            if path.exists() and path.stat().st_size:
                with open(path, "rb") as f:
                    f.seek(-1, 2)
                    ends_clean = f.read(1) == b"\n"
            self.file = open(path, "a")
            if not ends_clean:
                self.file.write("\n")  # after a truncated line

    def write(self, row: dict) -> None:
        self.rows.append(row)
        if self.file is not None:
            self.file.write(json.dumps(row) + "\n")
            self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def run(env, model, num_demos_list: Sequence[int], seeds: Iterable[int] | None = None, episodes: int | None = None,
        path: str | Path | None = None, obs_format: str = "text", env_options: dict | None = None,
        demo_seed_offset: int = DEMO_SEED_OFFSET, drop_demos: bool = True, image_tokens: int = IMAGE_TOKENS,
        random_rollouts: int = 10, progress: bool = False) -> list[dict]:
    """Evaluate `model` on `env` (see the module docstring); -> every record of the run (file order).

    seeds: the evaluation seeds (default range(episodes)). path: the JSONL results file (resumed
    when it exists). env_options: how the env was made (recorded in the run's identity).
    """
    seeds = list(range(episodes or 0) if seeds is None else seeds)
    ks = sorted(set(int(k) for k in num_demos_list))
    if not seeds or not ks:
        raise ValueError("need at least one evaluation seed and one number of demonstrations")
    if len(set(seeds)) != len(seeds):
        raise ValueError("evaluation seeds repeat")
    if ks[0] < 0:
        raise ValueError(f"numbers of demonstrations must be >= 0, got {ks[0]}")
    if obs_format not in env.formats:
        raise ValueError(f"{env.name} renders {', '.join(env.formats)} observations, not {obs_format!r}")
    demo_range = range(demo_seed_offset, demo_seed_offset + ks[-1])
    clash = sorted(s for s in seeds if s in demo_range)
    if clash:
        raise ValueError(f"evaluation seeds {clash[:5]} are also demonstration seeds "
                         f"({demo_range.start}..{demo_range.stop - 1})")
    identity = {"env": env.name, "env_options": env_options or {}, "model": model.name, "obs": obs_format,
                "demo_seed_offset": demo_seed_offset, "random_rollouts": random_rollouts, "format": FORMAT_VERSION}
    path = Path(path) if path is not None else None
    rows = read_jsonl(path) if path is not None else []
    head = next((r for r in rows if r.get("type") == "run"), None)
    if head is not None and {k: head.get(k) for k in identity} != identity:
        raise ValueError(f"{path} holds another run ({ {k: head.get(k) for k in identity} }); "
                         f"this one is {identity}: use another output")
    done_eps = {(r["num_demos"], r["seed"]) for r in rows if r.get("type") == "episode"}
    done_refs = {(r["policy"], r["seed"]) for r in rows if r.get("type") == "reference"}
    old_demos = {r["seed"]: r["actions"] for r in rows if r.get("type") == "demo"}
    log = _Log(path, rows)
    try:
        if head is None:
            log.write({"type": "run", **identity, "started": time.strftime("%Y-%m-%d %H:%M:%S")})
        todo_refs = [(p, s) for p in ("random", "expert") for s in seeds if (p, s) not in done_refs]
        todo_eps = [(k, s) for k in ks for s in seeds if (k, s) not in done_eps]
        demos: list[Episode] = record_demos(env, ks[-1], demo_seed_offset) if todo_eps else []
        for ep in demos:
            if ep.seed in old_demos and old_demos[ep.seed] != ep.actions:
                raise ValueError(f"the expert's demonstration for seed {ep.seed} differs from the one this run "
                                 "recorded (did the expert change?); use another output")
            if ep.seed not in old_demos:
                log.write({"type": "demo", "seed": ep.seed, "actions": ep.actions, "score": ep.ret,
                           "success": ep.success})
        builder = PromptBuilder(env, demos, obs_format, image_tokens) if todo_eps else None
        budget = context_budget(model)
        from tqdm import tqdm

        with tqdm(total=len(todo_refs) + len(todo_eps), disable=not progress, unit="ep", dynamic_ncols=True,
                  desc=f"{env.name} {model.name}") as bar:
            for policy, seed in todo_refs:
                log.write(play_reference(env, policy, seed, random_rollouts if policy == "random" else 1))
                bar.update(1)
            for k, seed in todo_eps:
                rec = play_episode(env, model, builder, k, seed, budget, drop_demos)
                log.write(rec)
                bar.set_postfix(k=k, score=f"{rec['score']:.2f}")
                bar.update(1)
    finally:
        log.close()
    return rows


def load_results(path: str | Path) -> dict[str, Any]:
    """A results file as {"run": identity, "episodes": [...], "references": [...], "demos": [...]}."""
    rows = read_jsonl(Path(path))
    head = next((r for r in rows if r.get("type") == "run"), None)
    if head is None:
        raise ValueError(f"{path} is not an LMAct results file (no run line)")
    return {"run": head, "episodes": [r for r in rows if r.get("type") == "episode"],
            "references": [r for r in rows if r.get("type") == "reference"],
            "demos": [r for r in rows if r.get("type") == "demo"]}
