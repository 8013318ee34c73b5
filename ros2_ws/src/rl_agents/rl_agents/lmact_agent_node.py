"""LMAct agent node: a model imitating expert demonstrations in its context, acting in the graph
(`brs bringup use_sim:=true mode:=lmact demos:=FILE model:=nn|openai|...`; docs/lmact.md, "On the
robot").

Inputs, goal, output and states: rl_agents/goal_agent.py (/joint_states + /odom + goal ->
/whole_body/rl/command; diagnostics component "lmact_agent"). The env is LMAct's `robot_reach`
(the ROS task `reach`), so the prompt is the benchmark's: the env's instructions, the first
`num_demos` episodes of the demo file (`brs lmact demos --env robot_reach`), this goal's steps so
far, and the current observation (`obs`: text or vector). One action per model call, parsed as in
the benchmark; an unparsable or illegal reply is counted and replaced by a uniformly random
action (lmact/actions.act_or_replace).

The model runs in a worker thread, so a model that takes seconds per answer does not stall the
node: at each tick a finished answer is applied to the arm command, and a new question is asked
with the current observation (an answer within `answer_wait` s is applied in the same tick; a
slower one at the first tick after it arrives, while the arm holds its last command). As in the
benchmark's episodes, acting ends at the goal (`reached`) or after the task's `max_steps`
actions (`gave_up`); a new goal or ~/start begins a new episode. A model back-end that fails
(after its retries) is reported (`model_errors`, last error) and asked again at the next tick.
A missing or malformed demo file, an unknown model or observation format: exit code 2.
"""

from __future__ import annotations

import random
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from types import SimpleNamespace

import numpy as np

from brs_common.command_source import latency_stats
from brs_common.node_main import ConfigError, run_node

from .goal_agent import GoalAgentNode

NODE_NAME = "lmact_agent"
MODELS = ("nn", "expert", "random", "openai", "hf")


class _Episode:
    """The policy handle CommandSource resets on ~/start."""

    def __init__(self, node: "LmactAgentNode"):
        self.node = node

    def reset(self):
        self.node._new_goal()


class LmactAgentNode(GoalAgentNode):
    COMPONENT = "lmact_agent"
    PARAMETERS = [
        ("model", "nn", f"who acts: {', '.join(MODELS)} (nn: nearest demo observation, replays its action)"),
        ("model_name", "", "openai: the served model (default $LMACT_MODEL); hf: a Hugging Face model id or folder"),
        ("base_url", "", "openai: API root, e.g. http://localhost:8000/v1 (default $LMACT_BASE_URL, else OpenAI); "
                         "the key comes from $LMACT_API_KEY / $OPENAI_API_KEY only"),
        ("demos", "", "demo file from `brs lmact demos --env robot_reach` (empty: no demos)"),
        ("num_demos", -1, "demos in the context: the file's first N; < 0: all of them"),
        ("obs", "text", "observation format in the prompt: text | vector"),
        ("timeout", 60.0, "openai: seconds per call"),
        ("max_retries", 6, "openai: retries on 429/5xx/timeouts"),
        ("max_context_tokens", 0, "context budget (tokens; 0: no check); prompts that would not fit drop demos"),
        ("answer_wait", 0.02, "s a tick waits for the model's answer before leaving it to a later tick"),
    ]
    FIXED_PARAMETERS = ("model", "model_name", "base_url", "demos", "num_demos", "obs", "timeout", "max_retries",
                        "max_context_tokens", "answer_wait")

    def __init__(self, **kwargs):
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="lmact-model")
        self._future: Future | None = None
        self._asked = None  # the observation of the question in flight
        self.steps = self.illegal = self.model_errors = 0
        self.gave_up = False
        self.last_error = ""
        self.model_ms: list[float] = []
        super().__init__(NODE_NAME, hardware_id="lmact", **kwargs)
        self.get_logger().info(
            f"LMAct agent: model {self.model.name}, {self.k} demos from {self.demo_file or '(none)'}, {self.fmt} "
            f"observations, task {self.task.name}, {self.rate_hz:g} Hz, state {self.state} -> /whole_body/rl/command")

    def _load(self, p: dict) -> None:
        from .lmact.cli import make_model
        from .lmact.demos import load_demos
        from .lmact.envs.robot_reach import RobotReach
        from .lmact.prompt import PromptBuilder

        if self.task.name != "reach":
            raise ConfigError(f"lmact_agent acts on task reach (LMAct's robot_reach), not {self.task.name!r}")
        self.env = RobotReach()  # prompt rendering, action space and expert; never starts a sim here
        self.fmt = str(p["obs"])
        if self.fmt not in self.env.formats:
            raise ConfigError(f"obs must be one of {', '.join(self.env.formats)}, got {self.fmt!r}")
        if p["model"] not in MODELS:
            raise ConfigError(f"unknown model {p['model']!r}; choose from {', '.join(MODELS)}")
        self.demo_file = str(p["demos"])
        try:
            demos = load_demos(self.demo_file, self.env) if self.demo_file else []
            self.model = make_model(SimpleNamespace(
                model=p["model"], model_name=p["model_name"] or None, base_url=p["base_url"] or None, api_key=None,
                timeout=float(p["timeout"]), max_retries=int(p["max_retries"]), max_output_tokens=32,
                max_context_tokens=int(p["max_context_tokens"]) or None))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        n = int(p["num_demos"])
        self.k = len(demos) if n < 0 else n
        if self.k > len(demos):
            raise ConfigError(f"num_demos {n} but the demo file {self.demo_file or '(none)'} holds {len(demos)}")
        self.builder = PromptBuilder(self.env, demos, self.fmt)
        self.demo_actions = [ep.actions for ep in demos]
        self.answer_wait = float(p["answer_wait"])
        self.policy = _Episode(self)
        self._new_goal()

    # ------------------------------------------------------------------ episodes
    def _new_goal(self) -> None:
        super()._new_goal()
        self.ctx = self.builder.episode()
        self.steps = 0
        self.gave_up = False
        self._replace_rng = random.Random(f"lmact-node-replace-{time.time_ns()}")
        self._future = None  # an answer to the previous goal's question is dropped
        self.model.reset(0)

    def _ask(self, obs):
        """Run one model call (worker thread) -> (reply, seconds)."""
        from .lmact.models import Query
        from .lmact.runner import context_budget

        prompt, rendered = self.ctx.prompt(obs, self.k, context_budget(self.model))
        query = Query(prompt, rendered, self.builder.rendered, self.demo_actions, self.env.legal_actions(),
                      self.env, self.steps)
        t0 = time.perf_counter()
        reply = self.model.act(query)
        return reply, time.perf_counter() - t0

    def _take_answer(self):
        """The action of the finished question (replaced if illegal), or None when the call failed."""
        from .lmact.actions import act_or_replace

        future, asked, self._future = self._future, self._asked, None
        try:
            reply, seconds = future.result()
        except Exception as exc:  # a back-end that gave up, a context that does not fit ...
            self.model_errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"[:300]
            self.get_logger().error(f"model call failed: {self.last_error}", throttle_duration_sec=5.0)
            return None
        self.model_ms = (self.model_ms + [seconds * 1e3])[-100:]
        action, legal = act_or_replace(self.env.action_space, reply.text, self.env, self._replace_rng)
        if not legal:
            self.illegal += 1
        self.ctx.add(asked, self.env.action_space.format(action))
        self.steps += 1
        return action

    def _action(self, obs: np.ndarray):
        if self.reached or self.gave_up:
            return None
        if self._future is None:
            self._asked = self.env.obs = self.env.from_vector(obs)  # env.obs: what the expert model reads
            self._future = self._pool.submit(self._ask, self._asked)
            wait_futures([self._future], timeout=self.answer_wait)
        if not self._future.done():
            return None
        action = self._take_answer()
        if self.steps >= self.task.max_steps and not self.reached:
            self.gave_up = True
        return action

    def _status(self):
        message = self._status_message()
        if self.gave_up and not self.reached:
            message += f": gave up after {self.steps} actions"
        return message, {**self._goal_values(), "model": self.model.name, "demos_in_context": self.k,
                         "obs": self.fmt, "episode_steps": self.steps, "illegal_replies": self.illegal,
                         "gave_up": self.gave_up, "model_errors": self.model_errors, "last_error": self.last_error,
                         **latency_stats("model_ms", self.model_ms)}

    def destroy_node(self):
        self._pool.shutdown(wait=False, cancel_futures=True)
        return super().destroy_node()


def main(args=None):
    return run_node(LmactAgentNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
