"""Demonstrations: expert episodes recorded as (observation, action) pairs.

Observations are stored raw (the env's immutable snapshots), so one recording serves every
observation format. Demo episodes use seeds from DEMO_SEED_OFFSET on, disjoint from evaluation
seeds (the runner checks it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEMO_SEED_OFFSET = 1_000_000


@dataclass
class Episode:
    seed: int
    observations: list = field(default_factory=list)  # the observation before each action
    actions: list[str] = field(default_factory=list)  # the actions as the model would write them
    ret: float = 0.0
    success: bool = False

    def __len__(self) -> int:
        return len(self.actions)


def record_expert(env, seed: int) -> Episode:
    """One expert episode of `env` with `seed`."""
    ep = Episode(seed)
    obs, done = env.reset(seed), False
    while not done and len(ep) < env.max_steps:
        action = env.expert()
        ep.observations.append(obs)
        ep.actions.append(env.action_space.format(action))
        obs, reward, done = env.step(action)
        ep.ret += reward
    ep.success = env.success
    return ep


def demo_seeds(n: int, offset: int = DEMO_SEED_OFFSET) -> list[int]:
    return list(range(offset, offset + n))


def record_demos(env, n: int, offset: int = DEMO_SEED_OFFSET) -> list[Episode]:
    """n expert episodes; the first k of them are the demos of a k-demo prompt (nested sets)."""
    return [record_expert(env, s) for s in demo_seeds(n, offset)]


DEMO_FILE_FORMAT = 1


def save_demos(path, env, episodes: list[Episode]) -> None:
    """Episodes of an env with vector observations (env.render_vector / env.from_vector) as JSON,
    for an agent node that has no sim of its own to record them (lmact_agent_node)."""
    import json
    from pathlib import Path

    doc = {"format": DEMO_FILE_FORMAT, "env": env.name,
           "episodes": [{"seed": ep.seed, "return": ep.ret, "success": ep.success, "actions": ep.actions,
                         "observations": [[round(float(x), 6) for x in env.render_vector(o)]
                                          for o in ep.observations]} for ep in episodes]}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(doc) + "\n")


def load_demos(path, env) -> list[Episode]:
    """The episodes of a save_demos file, checked against `env`; ValueError with the reason."""
    import json
    from pathlib import Path

    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ValueError(f"demo file {path}: no such file (record one with `brs lmact demos`)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"demo file {path} is not readable JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != DEMO_FILE_FORMAT or doc.get("env") != env.name:
        raise ValueError(f"demo file {path} is not a format-{DEMO_FILE_FORMAT} demo file of env {env.name!r}")
    episodes = []
    for i, e in enumerate(doc.get("episodes", [])):
        try:
            obs = [env.from_vector(v) for v in e["observations"]]
            acts = [str(a) for a in e["actions"]]
            if len(obs) != len(acts) or any(env.action_space.parse(a, env) is None for a in acts):
                raise ValueError("observations and legal actions do not pair up")
            episodes.append(Episode(int(e["seed"]), obs, acts, float(e["return"]), bool(e["success"])))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"demo file {path}: episode {i} is malformed: {exc}") from None
    return episodes
