"""`brs eval`: closed-loop evaluation of a WB-VIMA checkpoint in the sim, through the full graph.

The graph is `brs bringup use_sim:=true mode:=policy task:=TASK checkpoint:=PATH` (sim with the
task, whole-body controller with the policy as active source, perception cropped to the task's
box, the policy node with autostart off), plus the episode recorder with --record-failures. For
every episode this tool, like `brs collect` does with the expert: homes the robot through the
policy node's ~/home, reseeds and resets the sim, starts the recorder (if recording), calls
/policy/start, waits until the sim's task status (topics.SIM_TASK_STATUS) says success or the
task's time limit passed, calls /policy/stop and keeps the recording of a failed episode (with a
camera video, brs_teleop.episode_video) or discards a successful one. It prints the success rate
with a Wilson 95 % confidence interval and writes summary.json.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from std_srvs.srv import Trigger

from brs_bringup import graph
from brs_bringup.episodes import EpisodeDriver
from brs_common import topics
from brs_common.stats import wilson_interval
from brs_teleop.episode_video import episode_video

SIM_TASK_STATUS = topics.SIM_TASK_STATUS
POLICY = "policy"
POLICY_STATUS = f"{POLICY}: policy"
RECORDER = topics.RECORDER_NODE


@dataclass
class EvalOutcome:
    episode: int
    seed: int
    success: bool
    sim_seconds: float
    wall_seconds: float
    chunks: int = 0
    # how the graph ran (a policy that fails only under load shows it here): clouds the policy
    # received and its perception stalls (between the policy status read before the start and
    # after the stop: each may be up to one diagnostics period old), its inference time and
    # observation age (medians over its recent predictions, at the end), the 1-min load average
    clouds: int = 0
    stale_events: int = 0
    inference_ms_p50: float | None = None
    observation_age_ms_p50: float | None = None
    load_1min: float = 0.0
    file: str = ""
    video: str = ""


class Evaluator(EpisodeDriver):
    """Drives a running policy graph through episodes (see the module doc)."""

    agent, agent_status, source = POLICY, POLICY_STATUS, "policy"

    def __init__(self, client, task: str, output_dir: Path, record_failures: bool, speed_factor: float,
                 stop: threading.Event, time_limit: float | None = None, video: bool = True,
                 keep_successes: bool = False):
        super().__init__(client, task, output_dir, record_failures, episode_video if video else None,
                         speed_factor, stop)
        self.time_limit = float(time_limit) if time_limit else float(self.task.time_limit)
        self.keep_successes = keep_successes

    COUNTS = ("chunks_published", "clouds_received", "stale_events")  # policy status counters

    def _policy_status(self) -> dict:
        """The policy node's last status values (one snapshot: its counters are consistent)."""
        entry = self.client.status(POLICY_STATUS)
        return entry[1] if entry else {}

    @staticmethod
    def _ms(values: dict, key: str) -> float | None:
        value = float(values.get(key, "nan"))
        return None if value != value else value  # "nan" before the first prediction

    def run_episode(self, episode: int, seed: int) -> EvalOutcome:
        wall0 = time.monotonic()
        self.begin_episode(seed)
        before = self._policy_status()
        self._trigger(f"/{POLICY}/start")
        deadline = time.monotonic() + self._wall(self.time_limit)
        success, status = False, {}
        while time.monotonic() < deadline and not self.stop.is_set():
            entry = self.client.status(SIM_TASK_STATUS)
            status = entry[1] if entry else {}
            success = status.get("success") == "True"
            if success or float(status.get("elapsed", 0.0)) >= self.time_limit:
                break
            time.sleep(0.05)
        self._trigger(f"/{POLICY}/stop")
        after = self._policy_status()
        chunks, clouds, stalls = (int(after.get(key, 0)) - int(before.get(key, 0)) for key in self.COUNTS)
        outcome = EvalOutcome(episode, seed, success, float(status.get("elapsed", 0.0)),
                              time.monotonic() - wall0, chunks, clouds, stalls, self._ms(after, "inference_ms_p50"),
                              self._ms(after, "observation_age_ms_p50"), round(os.getloadavg()[0], 2))
        if self.record:
            if success and not self.keep_successes:
                self.client.call(Trigger, topics.RECORDER_DISCARD)
            else:
                self.save_episode(outcome, episode)
        return outcome


def check_checkpoint(path: str | Path) -> Path:
    """The checkpoint's absolute path; ValueError saying why it is unusable (before any node starts)."""
    from .wbvima import CheckpointError, read_checkpoint

    path = Path(path).expanduser().resolve()
    try:
        read_checkpoint(path)
    except CheckpointError as exc:
        raise ValueError(str(exc)) from None
    return path


def eval_nodes(task: str, checkpoint: Path, speed_factor: float, record_dir: Path | None,
               arguments: dict[str, str] | None = None):
    """The node descriptions: the policy graph for `task` (+ the episode recorder)."""
    arguments = dict(arguments or {})
    recorder_overrides = {k.split(".", 1)[1]: v for k, v in arguments.items() if k.startswith(f"{RECORDER}.")}
    arguments = {k: v for k, v in arguments.items() if not k.startswith(f"{RECORDER}.")}
    for key in ("use_sim", "mode"):
        if key in arguments and arguments[key] != {"use_sim": "true", "mode": "policy"}[key]:
            raise ValueError(f"brs eval always runs use_sim:=true mode:=policy (got {key}:={arguments[key]})")
    args = {"perception.crop": task, **arguments, "use_sim": "true", "mode": "policy", "task": task,
            "checkpoint": str(checkpoint), "policy.autostart": "false", "speed_factor": str(speed_factor)}
    nodes = graph.describe_from_arguments(args)
    if record_dir is not None:
        params = {**graph.load_parameters().get(RECORDER, {}), "output_dir": str(record_dir), "task": task}
        for key, value in recorder_overrides.items():
            if key not in params:
                raise ValueError(f"unknown argument {RECORDER}.{key}: the recorder has no such parameter")
            params[key] = graph._coerce(f"{RECORDER}.{key}", params[key], value)
        params["use_sim_time"] = True
        nodes.append(replace(graph.RECORDER, parameters=params))
    elif recorder_overrides:
        raise ValueError("episode_recorder.* arguments need --record-failures")
    return nodes


def evaluate(task: str, episodes: int, checkpoint: str | Path, first_seed: int = 0,
             output_dir: Path = Path("outputs/eval"), record_failures: bool = False,
             speed_factor: float = 1.0, time_limit: float | None = None, video: bool = True,
             arguments: dict[str, str] | None = None, progress: bool = True, keep_successes: bool = False) -> dict:
    """Bring up the policy graph, run the episodes, shut the graph down; returns the summary
    (also written to OUTPUT_DIR/TASK/summary.json). With `record_failures` every episode is
    recorded and the failed ones kept; `keep_successes` keeps the successful ones too."""
    from brs_bringup.episodes import drive_episodes

    if episodes < 1:
        raise ValueError("--episodes must be at least 1")
    checkpoint = check_checkpoint(checkpoint)
    out = Path(output_dir).resolve() / task
    out.mkdir(parents=True, exist_ok=True)
    nodes = eval_nodes(task, checkpoint, speed_factor, out / "episodes" if record_failures else None, arguments)
    evaluator_box: list[Evaluator] = []

    def make_evaluator(client, stop):
        evaluator_box.append(Evaluator(client, task, out, record_failures, speed_factor, stop, time_limit, video,
                                       keep_successes))
        return evaluator_box[-1]

    outcomes, errors, rc = drive_episodes(nodes, out, "brs_eval", make_evaluator, episodes, first_seed,
                                          f"eval {task}", progress)
    wins, n = sum(o.success for o in outcomes), len(outcomes)
    lo, hi = wilson_interval(wins, n)
    summary = {
        "task": task, "checkpoint": str(checkpoint), "first_seed": first_seed,
        "time_limit": evaluator_box[0].time_limit if evaluator_box else time_limit,
        "episodes_run": n, "successes": wins, "success_rate": wins / n if n else None,
        "wilson_95": [lo, hi] if n else None,
        "homing_resets": evaluator_box[0].homing_resets if evaluator_box else 0,
        "episodes": [asdict(o) for o in outcomes],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if errors:
        graph_state = f"; the graph exited with code {rc}" if rc else ""
        raise RuntimeError(f"eval stopped: {errors[0]}{graph_state} (node logs: {out / 'logs'})") from errors[0]
    if rc not in (0, None) and n < episodes:
        raise RuntimeError(f"the graph stopped with exit code {rc} (node logs: {out / 'logs'})")
    return summary


def format_summary(summary: dict) -> str:
    n, wins = summary["episodes_run"], summary["successes"]
    if not n:
        return f"{summary['task']}: no episode finished"
    lo, hi = summary["wilson_95"]
    return (f"{summary['task']}: {wins}/{n} successful = {100 * wins / n:.1f} % "
            f"(Wilson 95 % CI {100 * lo:.1f}-{100 * hi:.1f} %)")
