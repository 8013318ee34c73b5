"""Scripted-expert episodes, recorded through the full sim graph (`brs collect` is its front-end in
brs.cli; brs_bench.task_success runs it as the expert baseline).

The graph is `brs bringup use_sim:=true mode:=collect`: sim (with the task), whole-body
controller, episode recorder and the task's expert node, one process each. For every episode
this tool, like an operator with a Joy-Con, homes the robot, reseeds and resets the sim, starts
the recorder, starts the expert, waits for it to finish (or the task's time limit), reads the
outcome from the sim's task status, saves the episode and, given a renderer (`video`, e.g.
brs_teleop.episode_video.episode_video), renders a camera video of it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from brs_bringup import graph
from brs_bringup.episodes import SIM_TASK_STATUS, EpisodeDriver, VideoRenderer, drive_episodes

EXPERT = graph.EXPERT.name
EXPERT_STATUS = f"{EXPERT}: expert"


@dataclass
class EpisodeOutcome:
    episode: int
    seed: int
    success: bool
    sim_seconds: float
    wall_seconds: float
    phase: str
    file: str = ""
    video: str = ""


class Collector(EpisodeDriver):
    """Drives a running collect graph through `episodes` episodes (see module doc)."""

    agent, agent_status, source = EXPERT, EXPERT_STATUS, "expert"

    def run_episode(self, episode: int, seed: int) -> EpisodeOutcome:
        wall0 = time.monotonic()
        self.begin_episode(seed)
        self._trigger(f"/{EXPERT}/start")
        limit = self.task.time_limit
        deadline = time.monotonic() + self._wall(limit)
        success, status, done_at = False, {}, None
        while time.monotonic() < deadline and not self.stop.is_set():
            entry = self.client.status(SIM_TASK_STATUS)
            status = entry[1] if entry else {}
            expert = (self.client.status(EXPERT_STATUS) or ("", {}))[1]
            success = status.get("success") == "True"
            if expert.get("state") == "done":
                done_at = done_at or time.monotonic()
            # done: success is judged once things came to rest (the sim reports at 1 Hz sim time)
            if done_at and (success or time.monotonic() - done_at > 3.0 / self.speed + 2.0):
                break
            if float(status.get("elapsed", 0.0)) > limit:
                break
            time.sleep(0.05)
        expert = (self.client.status(EXPERT_STATUS) or ("", {}))[1]
        self._trigger(f"/{EXPERT}/stop")
        outcome = EpisodeOutcome(episode, seed, success, float(status.get("elapsed", 0.0)),
                                 time.monotonic() - wall0, expert.get("phase", ""))
        if self.record:
            self.save_episode(outcome, episode)
        return outcome


def collect(task: str, episodes: int, first_seed: int = 0, output_dir: Path = Path("outputs/collect"),
            speed_factor: float = 1.0, record: bool = True, video: VideoRenderer | None = None,
            arguments: dict[str, str] | None = None, progress: bool = True) -> list[EpisodeOutcome]:
    """Bring up the collect graph, run the episodes, shut the graph down; returns the outcomes.
    `video`: renders each recorded episode into OUTPUT_DIR/TASK/videos (None: no videos)."""
    out = output_dir.resolve() / task
    out.mkdir(parents=True, exist_ok=True)
    args = {**(arguments or {}), "use_sim": "true", "mode": "collect", "task": task,
            "speed_factor": str(speed_factor)}
    if record:
        args["output_dir"] = str(out / "episodes")
    nodes = graph.describe_from_arguments(args)
    outcomes, errors, rc = drive_episodes(
        nodes, out, "brs_collect",
        lambda client, stop: Collector(client, task, out, record, video, speed_factor, stop),
        episodes, first_seed, f"collect {task}", progress)
    summary = {"task": task, "episodes": [asdict(o) for o in outcomes],
               "success_rate": (sum(o.success for o in outcomes) / len(outcomes)) if outcomes else None}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if errors:
        graph_state = f"; the graph exited with code {rc}" if rc else ""
        raise RuntimeError(f"collect stopped: {errors[0]}{graph_state} (node logs: {out / 'logs'})") from errors[0]
    if rc not in (0, None) and len(outcomes) < episodes:
        raise RuntimeError(f"the graph stopped with exit code {rc} (node logs: {out / 'logs'})")
    return outcomes
