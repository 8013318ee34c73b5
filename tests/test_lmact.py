"""LMAct harness: answer parsing and the replacement rule, prompts, the baselines, the resumable
runner, the report and `brs lmact` (the HTTP back-end: test_lmact_openai.py; experts: test_lmact_envs.py)."""

from __future__ import annotations

import base64
import io
import json
import random

import numpy as np
import pytest

from brs_common.stats import wilson_interval
from rl_agents.lmact.actions import DiscreteActions, VectorActions, act_or_replace, extract_answer
from rl_agents.lmact.demos import DEMO_SEED_OFFSET, record_demos
from rl_agents.lmact.env import Env
from rl_agents.lmact.envs import make_env
from rl_agents.lmact.models import ExpertModel, NearestNeighbourModel, Query, RandomModel
from rl_agents.lmact.prompt import (ContextBudgetError, PromptBuilder, build_messages, estimate_message_tokens)
from rl_agents.lmact.report import bootstrap_ci, summarize
from rl_agents.lmact.runner import load_results, play_episode, run


# ---- parsing and the replacement rule ----------------------------------------------------------

@pytest.mark.parametrize("reply", ["b2", "  b2\n", "'b2'", '"b2"', "`b2`", "**b2**", "Action: b2", "action: B2",
                                   "Action 3: b2.", "```\nb2\n```", "I will play.\nAction: b2", "B2"])
def test_tolerant_parsing_of_a_legal_answer(reply):
    env = make_env("tictactoe")
    env.reset(1)  # seed 1: the agent moves first, b2 is free
    assert DiscreteActions().parse(reply, env) == "b2"


@pytest.mark.parametrize("reply", [None, "", "   ", "I think b2", "z9", "b2 c3", "Action:"])
def test_unparsable_or_illegal_answers(reply):
    env = make_env("tictactoe")
    env.reset(1)
    assert DiscreteActions().parse(reply, env) is None


def test_occupied_cell_is_illegal_and_replaced_by_a_seeded_random_legal_action():
    env = make_env("tictactoe")
    env.reset(1)
    env.step("b2")
    space = env.action_space
    assert space.parse("b2", env) is None
    picks = [act_or_replace(space, "b2", env, random.Random("replace-1-0")) for _ in range(3)]
    assert picks[0] == picks[1] == picks[2]  # seeded: the same replacement every time
    action, legal = picks[0]
    assert not legal and action in env.legal_actions()
    free = env.legal_actions()[-1]
    assert act_or_replace(space, f"Action: {free}", env, random.Random(0)) == (free, True)


def test_extract_answer_takes_the_last_action_prefix():
    assert extract_answer("Action 1: a1 was bad.\nAction: c3") == "c3"
    assert extract_answer("e7e8q.") == "e7e8q"


def test_vector_actions():
    space = VectorActions(2)
    assert space.parse("0.5, -0.25", None).tolist() == [0.5, -0.25]
    assert space.parse("Action: [1.5, -3]", None).tolist() == [1.0, -1.0]  # clipped
    assert space.parse(".5 -.5", None).tolist() == [0.5, -0.5]
    assert space.parse("0.5", None) is None and space.parse("nan, 0", None) is None and space.parse("up", None) is None
    a = space.sample(random.Random(0), None)
    assert a.shape == (2,) and np.all(np.abs(a) <= 1)
    assert space.format(np.array([0.5, -0.25])) == "0.500, -0.250"
    action, legal = act_or_replace(space, "garbage", None, random.Random(3))
    assert not legal and action.tolist() == space.sample(random.Random(3), None).tolist()


# ---- prompts -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ttt_demos():
    return record_demos(make_env("tictactoe"), 4)


def _play_two(env, ctx=None):
    """The first two (observation, action) pairs of seed 5 with the expert, and the third observation."""
    obs, history = env.reset(5), []
    for _ in range(2):
        a = env.expert()
        history.append((obs, a))
        obs, _, _ = env.step(a)
    return history, obs


def test_text_prompt_holds_k_demos_the_history_and_the_observation(ttt_demos):
    env = make_env("tictactoe")
    history, obs = _play_two(env)
    p = build_messages(env, ttt_demos[:2], history, obs, "text")
    system, user = p.messages[0]["content"], p.messages[1]["content"]
    assert [m["role"] for m in p.messages] == ["system", "user"]
    assert "one action only" in system and "tic-tac-toe" in system
    assert user.startswith("Here are 2 expert demonstration episodes.")
    assert "Demonstration 1:" in user and "Demonstration 2:" in user and "Demonstration 3:" not in user
    demos_part, current = user.split("Current episode:")
    for ep in ttt_demos[:2]:
        for t, (o, a) in enumerate(zip(ep.observations, ep.actions), 1):
            assert f"Observation {t}:\n{env.render_text(o)}\nAction {t}: {a}\n" in demos_part
    assert current == (f"\nObservation 1:\n{env.render_text(history[0][0])}\nAction 1: {history[0][1]}\n"
                       f"Observation 2:\n{env.render_text(history[1][0])}\nAction 2: {history[1][1]}\n"
                       f"Observation 3:\n{env.render_text(obs)}\nAction 3:")
    assert p.num_demos == 2 and p.est_tokens == estimate_message_tokens(p.messages)
    assert build_messages(env, [], [], obs, "text").messages[1]["content"].startswith("There are no demonstrations.")


@pytest.mark.parametrize("fmt", ["text", "rgb", "vector"])
def test_cached_builder_gives_the_reference_messages(ttt_demos, fmt):
    env = make_env("tictactoe")
    builder = PromptBuilder(env, ttt_demos, fmt)
    ctx = builder.episode()
    obs, history = env.reset(5), []
    for _ in range(3):
        for k in (0, 1, 4):
            prompt, _ = ctx.prompt(obs, k)
            ref = build_messages(env, ttt_demos[:k], history, obs, fmt)
            assert prompt.messages == ref.messages and prompt.est_tokens == ref.est_tokens
        a = env.expert()
        ctx.add(obs, a)
        history.append((obs, a))
        obs, _, done = env.step(a)
        if done:
            break


def test_images_go_as_png_data_urls(ttt_demos):
    from PIL import Image

    env = make_env("tictactoe")
    history, obs = _play_two(env)
    p = build_messages(env, ttt_demos[:1], history, obs, "rgb")
    parts = p.messages[1]["content"]
    images = [part["image_url"]["url"] for part in parts if part["type"] == "image_url"]
    expected = [*ttt_demos[0].observations, *(o for o, _ in history), obs]
    assert len(images) == len(expected) == len(ttt_demos[0]) + 3
    for url, o in zip(images, expected):
        assert url.startswith("data:image/png;base64,")
        decoded = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))
        assert np.array_equal(decoded, env.render_rgb(o))
    texts = [part["text"] for part in parts if part["type"] == "text"]
    assert all(a["type"] != b["type"] or a["type"] != "text" for a, b in zip(parts, parts[1:]))  # merged
    assert texts[-1].endswith("Action 3:")
    assert p.est_tokens == estimate_message_tokens(p.messages) >= 300 * len(images)


def test_context_budget_drops_demos_or_raises(ttt_demos):
    env = make_env("tictactoe")
    ctx = PromptBuilder(env, ttt_demos, "text").episode()
    obs = env.reset(5)
    full, _ = ctx.prompt(obs, 4)
    two, _ = ctx.prompt(obs, 2)
    fitted, _ = ctx.prompt(obs, 4, budget=two.est_tokens)
    assert fitted.num_demos == 2 and fitted.messages == two.messages and full.est_tokens > two.est_tokens
    with pytest.raises(ContextBudgetError, match="4 demonstrations"):
        ctx.prompt(obs, 4, budget=two.est_tokens, drop_demos=False)
    with pytest.raises(ContextBudgetError, match="even without"):
        ctx.prompt(obs, 4, budget=10)


# ---- baselines ---------------------------------------------------------------------------------

def _query(env, builder, obs, k):
    ctx = builder.episode()
    prompt, rendered = ctx.prompt(obs, k)
    return Query(prompt, rendered, builder.rendered, [ep.actions for ep in builder.demos], env.legal_actions(),
                 env, 0)


@pytest.mark.parametrize("fmt", ["text", "vector", "rgb"])
def test_nearest_neighbour_replays_the_action_of_the_closest_demo_observation(ttt_demos, fmt):
    env = make_env("tictactoe")
    builder = PromptBuilder(env, ttt_demos, fmt)
    nn = NearestNeighbourModel()
    ep = ttt_demos[2]
    obs = env.reset(ep.seed)  # the demo's own first position: distance 0
    assert obs == ep.observations[0]
    # the first exact match among the 3 demos in context (an earlier demo may share the position)
    expected = next(a for d in ttt_demos[:3] for o, a in zip(d.observations, d.actions) if o == obs)
    assert nn.act(_query(env, builder, obs, 3)).text == expected
    assert nn.act(_query(env, builder, obs, 0)).text == ""  # no demos: the replacement rule decides


def test_nearest_neighbour_text_distance_handles_different_lengths():
    env = make_env("crossword")
    demos = record_demos(env, 3)
    builder = PromptBuilder(env, demos, "text")
    obs = env.reset(demos[1].seed)
    reply = NearestNeighbourModel().act(_query(env, builder, obs, 3))
    assert reply.text == demos[1].actions[0]


def test_random_and_expert_models(ttt_demos):
    env = make_env("tictactoe")
    builder = PromptBuilder(env, ttt_demos, "text")
    obs = env.reset(1)
    q = _query(env, builder, obs, 1)
    rand = RandomModel()
    rand.reset(7)
    a = rand.act(q).text
    rand.reset(7)
    assert a in env.legal_actions() and rand.act(q).text == a
    assert ExpertModel().act(q).text == env.expert()


# ---- runner: episodes, references, resume ------------------------------------------------------

class _Counting:
    """Wraps a model: counts episodes and calls; raises KeyboardInterrupt at call number `stop_at`."""

    def __init__(self, model, stop_at: int | None = None):
        self.model, self.stop_at = model, stop_at
        self.name, self.max_context_tokens, self.max_output_tokens = model.name, None, 0
        self.episodes = self.calls = 0

    def reset(self, seed):
        self.episodes += 1
        self.model.reset(seed)

    def act(self, query):
        self.calls += 1
        if self.stop_at is not None and self.calls == self.stop_at:
            raise KeyboardInterrupt
        return self.model.act(query)


def _episodes(rows):
    keep = ("num_demos", "seed", "score", "steps", "illegal", "actions", "success", "demos_in_context")
    return sorted(({k: r[k] for k in keep} for r in rows if r["type"] == "episode"),
                  key=lambda r: (r["num_demos"], r["seed"]))


def test_run_records_references_and_episodes():
    env = make_env("tictactoe")
    rows = run(env, ExpertModel(), [0, 2], seeds=[3, 4, 5])
    refs = {(r["policy"], r["seed"]): r for r in rows if r["type"] == "reference"}
    eps = _episodes(rows)
    assert len(refs) == 6 and len(eps) == 6
    assert [r["type"] for r in rows[:3]] == ["run", "demo", "demo"]
    for e in eps:  # the expert through the harness = the expert reference (deterministic env)
        assert e["score"] == refs[("expert", e["seed"])]["score"] and e["illegal"] == 0
    nn = run(env, NearestNeighbourModel(), [0], seeds=[3, 4, 5])
    zero = _episodes(nn)
    assert all(e["illegal"] == e["steps"] > 0 for e in zero)  # no demos: every reply is replaced


def test_interrupted_run_resumes_without_repeating_episodes(tmp_path):
    env = make_env("tictactoe")
    path = tmp_path / "r.jsonl"
    first = _Counting(NearestNeighbourModel(), stop_at=25)
    with pytest.raises(KeyboardInterrupt):
        run(env, first, [0, 1, 4], seeds=range(6), path=path)
    finished = _episodes(load_results(path)["episodes"])
    assert 0 < len(finished) < 18
    with open(path, "a") as f:
        f.write('{"type": "episode", "num_demos": 4, "se')  # a write cut by a crash
    second = _Counting(NearestNeighbourModel())
    rows = run(env, second, [0, 1, 4], seeds=range(6), path=path)
    assert second.episodes == 18 - len(finished)
    eps = _episodes(rows)
    assert len({(e["num_demos"], e["seed"]) for e in eps}) == len(eps) == 18
    again = _Counting(NearestNeighbourModel())
    run(env, again, [0, 1, 4], seeds=range(6), path=path)
    assert again.episodes == 0  # all done: nothing is repeated
    straight = run(env, NearestNeighbourModel(), [0, 1, 4], seeds=range(6), path=tmp_path / "s.jsonl")
    assert _episodes(load_results(path)["episodes"]) == _episodes(straight)
    refs = [r for r in load_results(path)["references"]]
    assert len(refs) == 12 and len({(r["policy"], r["seed"]) for r in refs}) == 12


def test_resume_refuses_another_run_and_overlapping_seeds(tmp_path):
    env = make_env("tictactoe")
    path = tmp_path / "r.jsonl"
    run(env, RandomModel(), [0], seeds=[0], path=path)
    with pytest.raises(ValueError, match="holds another run"):
        run(env, NearestNeighbourModel(), [0], seeds=[0], path=path)
    with pytest.raises(ValueError, match="also demonstration seeds"):
        run(env, RandomModel(), [2], seeds=[DEMO_SEED_OFFSET + 1], path=tmp_path / "x.jsonl")
    with pytest.raises(ValueError, match="renders"):
        run(make_env("crossword"), RandomModel(), [0], seeds=[0], obs_format="rgb")


def test_play_episode_counts_garbage_as_illegal(ttt_demos):
    class Garbage:
        name, max_context_tokens, max_output_tokens = "garbage", None, 0

        def reset(self, seed):
            pass

        def act(self, query):
            from rl_agents.lmact.models import Reply

            return Reply("no idea", 10, 2)

    env = make_env("tictactoe")
    rec = play_episode(env, Garbage(), PromptBuilder(env, ttt_demos, "text"), 2, 8)
    assert rec["illegal"] == rec["steps"] > 0 and rec["illegal_replies"][0] == "no idea"
    assert rec["prompt_tokens"] == 10 * rec["steps"] and rec["completion_tokens"] == 2 * rec["steps"]


# ---- report ------------------------------------------------------------------------------------

def test_bootstrap_ci_is_seeded_and_brackets_the_mean():
    x = np.random.default_rng(0).normal(0.4, 0.3, 40)
    lo, hi = bootstrap_ci(x)
    assert lo < x.mean() < hi and hi - lo < 0.3
    assert bootstrap_ci(x) == (lo, hi)
    assert bootstrap_ci([0.5, 0.5]) == (0.5, 0.5)


def test_summary_normalises_between_random_and_expert():
    results = {
        "run": {"env": "e", "model": "m", "obs": "text"},
        "references": [{"policy": "random", "seed": s, "score": -1.0} for s in range(4)]
        + [{"policy": "expert", "seed": s, "score": 1.0} for s in range(4)],
        "episodes": [{"num_demos": 2, "seed": s, "score": sc, "success": sc > 0, "steps": 5, "illegal": 1,
                      "prompt_tokens": 100, "completion_tokens": 4, "latency_s": 0.5, "demos_in_context": 2}
                     for s, sc in zip(range(4), [1.0, 0.0, 0.0, -1.0])],
    }
    (row,) = summarize(results)
    assert row["normalised"] == pytest.approx(0.5) and row["score"] == 0.0
    assert row["success_rate"] == 0.25 and row["success_ci"] == list(wilson_interval(1, 4))
    assert row["illegal_per_step"] == pytest.approx(0.2) and row["tokens_per_episode"] == 104
    assert row["ms_per_action"] == pytest.approx(100.0)
    lo, hi = row["normalised_ci"]
    assert 0 <= lo < 0.5 < hi <= 1


# ---- CLI ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def brs_main():
    from brs.cli import main

    return main


@pytest.mark.parametrize("argv, message", [
    (["--env", "nope", "--model", "nn"], "unknown environment"),
    (["--env", "tictactoe", "--model", "gpt"], "unknown model"),
    (["--env", "tictactoe", "--model", "nn", "--episodes", "0"], "--episodes"),
    (["--env", "tictactoe", "--model", "nn", "--demos", "-1"], "--demos"),
    (["--env", "crossword", "--model", "nn", "--obs", "rgb"], "renders text"),
    (["--env", "chess", "--model", "nn", "--env-option", "opponent=strong"], "opponent"),
    (["--env", "gridworld", "--model", "nn", "--env-option", "colour=red"], "bad --env-option"),
    (["--env", "tictactoe", "--model", "nn", "--on-overflow", "maybe"], "--on-overflow"),
])
def test_cli_bad_input_exits_2_with_one_line(brs_main, capsys, tmp_path, argv, message):
    assert brs_main(["lmact", "run", *argv, "--out", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("brs lmact: error:") and message in err and "\n" not in err


def test_cli_openai_needs_a_model_name_and_hf_needs_transformers(brs_main, capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("LMACT_MODEL", raising=False)
    assert brs_main(["lmact", "run", "--env", "tictactoe", "--model", "openai", "--out", str(tmp_path)]) == 2
    assert "--model-name" in capsys.readouterr().err
    try:
        import transformers  # noqa: F401
    except ImportError:
        assert brs_main(["lmact", "run", "--env", "tictactoe", "--model", "hf", "--model-name", "x",
                         "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip()
        assert "transformers" in err and "not installed" in err and "\n" not in err


def test_cli_report_errors(brs_main, capsys, tmp_path):
    assert brs_main(["lmact", "report", str(tmp_path / "missing")]) == 2
    assert brs_main(["lmact", "report", str(tmp_path)]) == 2
    assert "no results files" in capsys.readouterr().err


def test_cli_run_then_report(brs_main, capsys, tmp_path):
    out = tmp_path / "res"
    for model in ("nn", "random"):
        assert brs_main(["lmact", "run", "--env", "tictactoe", "--model", model, "--demos", "0", "2",
                         "--episodes", "4", "--out", str(out), "--no-progress"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["tictactoe_nn_text.jsonl", "tictactoe_random_text.jsonl"]
    capsys.readouterr()
    summary = tmp_path / "summary.json"
    assert brs_main(["lmact", "report", str(out), "--figure", str(tmp_path / "fig.png"), "--json",
                     str(summary)]) == 0
    printed = capsys.readouterr().out
    assert "| tictactoe | nn | text | 2 | 4 |" in printed and "| tictactoe | random | text | 0 | 4 |" in printed
    rows = json.loads(summary.read_text())
    assert len(rows) == 4 and (tmp_path / "fig.png").stat().st_size > 5000


# ---- the phase-2 hook: an env with continuous vector actions runs through the same loop ---------

class _Reach1D(Env):
    """Move a point on [-2, 2] to 0; action: one float in [-1, 1] (the step). Return: -|x| summed."""

    name, title, formats, max_steps = "reach1d", "1-D reaching", ("text", "vector"), 6
    action_space = VectorActions(1)
    x = 0.0

    def instructions(self):
        return "Move the point to 0. An action is the step, one number in [-1, 1]."

    def reset(self, seed):
        self.x = round(random.Random(seed).uniform(-2, 2), 3)
        return self.x

    def legal_actions(self):
        return []

    def step(self, action):
        self.x = round(self.x + float(np.asarray(action).reshape(-1)[0]), 3)
        return self.x, -abs(self.x), abs(self.x) < 1e-3

    def state(self):
        return self.x

    def expert(self, state=None):
        return np.array([np.clip(-(self.x if state is None else state), -1, 1)], np.float32)

    @property
    def success(self):
        return abs(self.x) < 1e-3

    def render_text(self, obs):
        return f"x = {obs:.3f}"

    def render_vector(self, obs):
        return np.array([obs], np.float32)


def test_vector_action_env_runs_through_the_harness():
    env = _Reach1D()
    expert = _episodes(run(env, ExpertModel(), [0], seeds=range(5)))
    assert all(e["success"] and e["illegal"] == 0 for e in expert)
    assert all(len(a.split(", ")) == 1 for e in expert for a in e["actions"])
    nn = _episodes(run(env, NearestNeighbourModel(), [0, 4], seeds=range(5), obs_format="vector"))
    assert all(e["illegal"] == e["steps"] for e in nn if e["num_demos"] == 0)  # replaced by uniform random steps
    assert all(e["illegal"] == 0 for e in nn if e["num_demos"] == 4)  # replayed demo steps always parse
