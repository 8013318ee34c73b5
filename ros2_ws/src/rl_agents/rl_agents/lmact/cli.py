"""`brs lmact run / report`: the LMAct in-context imitation benchmark (docs/lmact.md).

  brs lmact run    -> one env, one model, over numbers of demos; appends OUT/<env>_<model>_<obs>.jsonl
                      (rerun the same command to resume an interrupted run)
  brs lmact report -> table (markdown) of every results file in a folder, and a figure
  brs lmact demos  -> expert episodes of an env with vector observations to a JSON file, the
                      demonstrations of lmact_agent_node (`brs bringup mode:=lmact`)

Bad arguments exit with code 2 and a one-line message; a back-end that keeps failing exits 1
(finished episodes are kept).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from .envs import ENVS

MODELS = ("random", "expert", "nn", "openai", "hf")

RUN_EXAMPLES = """examples:
  brs lmact run --env tictactoe --model nn --demos 0 1 2 4 8 --episodes 20 --out outputs/lmact
  brs lmact run --env gridworld --model random --obs rgb --out outputs/lmact
  brs lmact run --env chess --env-option opponent=greedy --model expert --episodes 5 --out outputs/lmact
  LMACT_API_KEY=... brs lmact run --env crossword --model openai --model-name gpt-4o-mini --out outputs/lmact
  brs lmact run --env tictactoe --model openai --base-url http://localhost:8000/v1 --model-name Qwen/Qwen2.5-7B-Instruct \\
      --max-context-tokens 32768 --out outputs/lmact
"""


def add_parser(sub) -> None:
    """Register `lmact` (run, report) on brs's subparsers."""
    p = sub.add_parser("lmact", help="LMAct: in-context imitation from expert demonstrations (LLM benchmark)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    s = p.add_subparsers(dest="lmact_command", required=True, metavar="command")
    _add_run(s)
    _add_report(s)
    _add_demos(s)


def _add_run(sub) -> None:
    p = sub.add_parser("run", help="evaluate a model over numbers of demonstrations (resumable)",
                       description="Evaluate a model on an environment with 0, 1, 2, ... expert demonstrations "
                                   "in its context; results go to OUT/<env>_<model>_<obs>.jsonl.",
                       epilog=RUN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", required=True, help=f"one of {', '.join(ENVS)}")
    p.add_argument("--env-option", nargs="*", default=[], metavar="KEY=VALUE",
                   help="env constructor options, e.g. opponent=greedy max_steps=30 (chess), size=8 (gridworld)")
    p.add_argument("--model", required=True, help=f"one of {', '.join(MODELS)}")
    p.add_argument("--model-name", default=None, help="openai: the served model (default $LMACT_MODEL); hf: the "
                                                      "Hugging Face model id or folder")
    p.add_argument("--base-url", default=None,
                   help="openai: the API root, e.g. http://localhost:8000/v1 (default $LMACT_BASE_URL, else OpenAI)")
    p.add_argument("--api-key", default=None,
                   help="openai: the API key (visible in the process list: prefer $LMACT_API_KEY / $OPENAI_API_KEY)")
    p.add_argument("--timeout", type=float, default=60.0, help="openai: seconds per call (default %(default)s)")
    p.add_argument("--max-retries", type=int, default=6, help="openai: retries on 429/5xx/timeouts (default %(default)s)")
    p.add_argument("--max-context-tokens", type=int, default=None,
                   help="context budget; prompts that would not fit drop demos (default: no check, hf: the model's)")
    p.add_argument("--max-output-tokens", type=int, default=32, help="answer tokens (default %(default)s)")
    p.add_argument("--on-overflow", default="drop", help="drop (fewer demos) | error, when the budget is exceeded")
    p.add_argument("--obs", default="text", help="observation format: text | rgb | vector (default %(default)s)")
    p.add_argument("--image-tokens", type=int, default=300, help="token estimate per image (default %(default)s)")
    p.add_argument("--demos", type=int, nargs="+", default=[0, 1, 2, 4, 8], help="numbers of demonstrations")
    p.add_argument("--episodes", type=int, default=20, help="evaluation episodes per number of demos")
    p.add_argument("--first-seed", type=int, default=0, help="evaluation seeds FIRST_SEED.. (default %(default)s)")
    p.add_argument("--out", type=Path, default=Path("outputs/lmact"), help="results folder (default %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_command)


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="table and figure of the results in a folder",
                       description="Summarise every results file (*.jsonl) in DIR: normalised score (bootstrap "
                                   "95 % CI), success rate (Wilson 95 %), illegal replies, tokens; figure of "
                                   "normalised score vs demonstrations per environment.")
    p.add_argument("dir", type=Path)
    p.add_argument("--figure", type=Path, default=None, help="figure path (default DIR/lmact.png)")
    p.add_argument("--json", type=Path, default=None, help="also write the summary rows as JSON")
    p.set_defaults(func=report_command)


def _add_demos(sub) -> None:
    p = sub.add_parser("demos", help="record expert demonstrations to a file (for lmact_agent_node)",
                       description="Record COUNT expert episodes of ENV (seeds FIRST_SEED..) with their vector "
                                   "observations to a JSON file: the demonstrations lmact_agent_node puts in "
                                   "its model's context (docs/lmact.md, \"On the robot\").",
                       epilog="example:\n  brs lmact demos --env robot_reach --count 8 --out outputs/lmact/robot_reach_demos.json",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", required=True, help="an env with vector observations, e.g. robot_reach")
    p.add_argument("--count", type=int, default=8, help="episodes (default %(default)s)")
    p.add_argument("--first-seed", type=int, default=None,
                   help="seed of the first episode (default: the benchmark's demo seeds, 1000000..)")
    p.add_argument("--out", type=Path, required=True, help="JSON file to write")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=demos_command)


def _value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_options(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"expected KEY=VALUE, got {item!r}")
        out[key] = _value(value)
    return out


def make_model(args):
    """The model the arguments name."""
    if args.model not in MODELS:
        raise ValueError(f"unknown model {args.model!r}; choose from {', '.join(MODELS)}")
    if args.model in ("random", "expert", "nn"):
        from .models import ExpertModel, NearestNeighbourModel, RandomModel

        return {"random": RandomModel, "expert": ExpertModel, "nn": NearestNeighbourModel}[args.model]()
    if args.model == "openai":
        from .openai_backend import OpenAIChatModel

        return OpenAIChatModel(args.model_name, args.base_url, args.api_key, timeout=args.timeout, max_retries=args.max_retries,
                               max_output_tokens=args.max_output_tokens, max_context_tokens=args.max_context_tokens)
    if not args.model_name:
        raise ValueError("--model hf needs --model-name (a Hugging Face model id or folder)")
    from .hf_backend import HFModel

    return HFModel(args.model_name, max_output_tokens=args.max_output_tokens,
                   max_context_tokens=args.max_context_tokens)


def results_path(out: Path, env: str, model: str, obs: str) -> Path:
    return out / f"{env}_{re.sub(r'[^A-Za-z0-9._-]+', '-', model)}_{obs}.jsonl"


def run_command(args) -> int:
    from .envs import make_env
    from .models import BackendError
    from .report import format_table, summarize
    from .runner import load_results, run

    if args.episodes < 1:
        raise ValueError(f"--episodes must be at least 1, got {args.episodes}")
    if min(args.demos) < 0:
        raise ValueError(f"--demos must be >= 0, got {min(args.demos)}")
    if args.on_overflow not in ("drop", "error"):
        raise ValueError(f"--on-overflow must be drop or error, not {args.on_overflow!r}")
    if args.env not in ENVS:
        raise ValueError(f"unknown environment {args.env!r}; choose from {', '.join(ENVS)}")
    options = parse_options(args.env_option)
    try:
        env = make_env(args.env, **options)
    except TypeError as exc:  # an option the env does not take
        raise ValueError(f"bad --env-option for {args.env}: {exc}") from exc
    if args.obs not in env.formats:
        raise ValueError(f"{args.env} renders {', '.join(env.formats)} observations, not {args.obs!r}")
    model = make_model(args)
    path = results_path(args.out, args.env, model.name, args.obs)
    seeds = range(args.first_seed, args.first_seed + args.episodes)
    try:
        run(env, model, args.demos, seeds=seeds, path=path, obs_format=args.obs, env_options=options,
            drop_demos=args.on_overflow == "drop", image_tokens=args.image_tokens, progress=not args.no_progress)
    except BackendError as exc:
        print(f"brs lmact: error: {exc}; finished episodes are in {path}, rerun to resume", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ninterrupted; finished episodes are in {path}, rerun the same command to resume", file=sys.stderr)
        return 130
    finally:
        env.close()
    rows = [r for r in summarize(load_results(path)) if r["num_demos"] in set(args.demos)]
    print(format_table(rows))
    print(f"results: {path}")
    return 0


def report_command(args) -> int:
    from .report import format_table, plot, summarize_dir

    rows = summarize_dir(args.dir)
    print(format_table(rows))
    figure = args.figure or args.dir / "lmact.png"
    plot(rows, figure)
    print(f"figure: {figure}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
        print(f"summary: {args.json}")
    return 0


def demos_command(args) -> int:
    from tqdm import tqdm

    from .demos import DEMO_SEED_OFFSET, record_expert, save_demos
    from .envs import make_env

    if args.env not in ENVS:
        raise ValueError(f"unknown environment {args.env!r}; choose from {', '.join(ENVS)}")
    if args.count < 1:
        raise ValueError(f"--count must be at least 1, got {args.count}")
    env = make_env(args.env)
    try:
        if "vector" not in env.formats or not hasattr(env, "from_vector"):
            raise ValueError(f"{args.env} has no vector observations to store; demo files need them")
        first = DEMO_SEED_OFFSET if args.first_seed is None else args.first_seed
        episodes = [record_expert(env, s) for s in tqdm(range(first, first + args.count), desc=f"{args.env} demos",
                                                        unit="episode", disable=args.no_progress)]
    finally:
        env.close()
    save_demos(args.out, env, episodes)
    steps = sum(len(ep) for ep in episodes)
    print(f"{len(episodes)} expert episodes ({steps} steps, {sum(ep.success for ep in episodes)} successes) -> {args.out}")
    return 0
