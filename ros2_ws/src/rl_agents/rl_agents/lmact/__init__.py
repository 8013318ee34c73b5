"""LMAct-style in-context imitation benchmark (Ruoss et al., 2024): a model sees k expert
demonstration episodes and the current episode in its context and answers one action per call;
no reward, no weight updates. Scores are normalised between the random policy (0) and the expert (1).

Modules:
  env.py             the Env interface (reset / legal_actions / step / render / expert)
  actions.py         action spaces, answer parsing, the replacement rule for illegal answers
  demos.py           expert demonstrations (recording, seeds)
  prompt.py          OpenAI-style chat prompts (text, vectors, PNG data-URL images), token estimate
  images.py          PNG data URLs
  models.py          the model interface (Query -> Reply) and the random / expert / nearest-neighbour baselines
  openai_backend.py  any OpenAI-compatible chat-completions endpoint (retries, budget, usage)
  hf_backend.py      a local transformers model (optional dependency)
  runner.py          the resumable evaluation loop (JSONL results)
  report.py          normalised scores, bootstrap / Wilson intervals, table, figure
  cli.py             `brs lmact run / report`
  envs/              tic-tac-toe, grid world, crossword, chess
See docs/lmact.md.
"""

from .actions import DiscreteActions, VectorActions, act_or_replace, extract_answer
from .demos import Episode, record_demos, record_expert
from .env import Env
from .envs import ENVS, make_env
from .models import BackendError, ExpertModel, NearestNeighbourModel, Query, RandomModel, Reply
from .prompt import ContextBudgetError, PromptBuilder, build_messages
from .runner import load_results, run

__all__ = ["DiscreteActions", "VectorActions", "act_or_replace", "extract_answer", "Episode", "record_demos",
           "record_expert", "Env", "ENVS", "make_env", "BackendError", "ExpertModel", "NearestNeighbourModel",
           "Query", "RandomModel", "Reply", "ContextBudgetError", "PromptBuilder", "build_messages",
           "load_results", "run"]
