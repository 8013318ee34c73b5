"""`brs collect`: a dataset of scripted-expert episodes, recorded through the full sim graph.

The graph is `brs bringup use_sim:=true mode:=collect`: sim (with the task), whole-body
controller, episode recorder and the task's expert node, one process each. For every episode
this tool, like an operator with a Joy-Con, homes the robot, reseeds and resets the sim, starts
the recorder, starts the expert, waits for it to finish (or the task's time limit), reads the
outcome from the sim's task status, saves the episode and renders a camera video of it.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from std_srvs.srv import Trigger

from brs import graph
from brs_common import topics

SIM_TASK_STATUS = topics.SIM_TASK_STATUS
EXPERT = graph.EXPERT.name
EXPERT_STATUS = f"{EXPERT}: expert"
RECORDER = topics.RECORDER_NODE


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


class EpisodeDriver:
    """What `brs collect` and `brs eval` share: a graph client, the task, wall-clock budgets, and
    the chores around each episode. `agent` is the node that drives the robot (services ~/home,
    ~/start, ~/stop; /diagnostics status `agent_status` with a `state` value)."""

    agent = ""
    agent_status = ""
    source = ""  # the recorder's `source` metadata for this driver's episodes
    home_sim_seconds = 10.0  # homing budget (sim s; see _wall) before the robot counts as stuck

    def __init__(self, client, task: str, output_dir: Path, record: bool, video: bool,
                 speed_factor: float, stop: threading.Event):
        from brs_sim.tasks import get_task

        self.client, self.task = client, get_task(task)
        self.output_dir, self.record, self.video = output_dir, record, video
        self.speed = speed_factor if speed_factor > 0 else 1.0
        self.stop = stop
        self.homing_resets = 0  # episodes begun by freeing a stuck robot (see begin_episode)

    def _wall(self, sim_seconds: float) -> float:
        return sim_seconds / self.speed * 3.0 + 20.0  # generous: slow machines run below speed

    def _trigger(self, service: str) -> str:
        response = self.client.call(Trigger, service)
        if not response.success:
            raise RuntimeError(f"{service} refused: {response.message}")
        return response.message

    def wait_for_graph(self, timeout: float = 120.0) -> None:
        """Until the sim, the agent and (when recording) the recorder report on /diagnostics."""
        names = [SIM_TASK_STATUS, self.agent_status] + ([f"{RECORDER}: recorder"] if self.record else [])
        for name in names:
            self.client.wait_status(name, lambda v: True, timeout, f"{name.split(':')[0]} to come up")

    def home(self) -> None:
        self._trigger(f"/{self.agent}/home")
        self.client.wait_status(self.agent_status, lambda v: v.get("state") == "home", self._wall(self.home_sim_seconds),
                                "the robot to reach its home pose")

    def reset_sim(self, seed: int) -> None:
        """Reseed and reset the sim; returns once the new episode's task status is in."""
        before = self.client.status(SIM_TASK_STATUS)
        before = int(before[1].get("resets", -1)) if before else -1
        self.client.set_parameters(topics.SIM_NODE, {"seed": seed})
        self._trigger(topics.SIM_RESET)  # returns once the sim has reset
        # the status counts resets (elapsed alone cannot tell two resets within a sim second apart)
        self.client.wait_status(SIM_TASK_STATUS, lambda v: int(v.get("resets", -1)) > before,
                                self._wall(5.0), "the sim task to restart")

    def begin_episode(self, seed: int) -> None:
        """Home the robot, reset the sim with `seed` and, when recording, start the recorder.

        A failed episode can leave the robot where it cannot drive home (caught against
        furniture): then the agent stops, the sim reset puts the robot home, the controller holds that
        pose (~/hold, so it does not pull the robot back) and the agent homes from there."""
        try:
            self.home()
        except TimeoutError as exc:
            from tqdm import tqdm

            tqdm.write(f"warning: {exc}; resetting the sim to free the robot")
            self.homing_resets += 1
            self._trigger(f"/{self.agent}/stop")
            self.reset_sim(seed)
            self._trigger(topics.CONTROLLER_HOLD)
            self.home()
        self.reset_sim(seed)
        if self.record:
            self.client.set_parameters(RECORDER, {"task": self.task.name, "seed": seed, "source": self.source})
            self._trigger(topics.RECORDER_START)

    def save_episode(self, outcome, episode: int) -> None:
        """Stop the recorder (it saves the episode); the file, and its camera video, go into `outcome`."""
        response = self.client.call(Trigger, topics.RECORDER_STOP)
        if not response.success:
            raise RuntimeError(f"the recorder could not save episode {episode}: {response.message}")
        outcome.file = response.message.rsplit(" ", 1)[-1]
        if self.video and outcome.file:
            outcome.video = str(episode_video(Path(outcome.file), self.output_dir / "videos"))


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


def episode_video(episode_file: Path, out_dir: Path) -> Path:
    """mp4 of an episode's cameras side by side (head, left wrist, right wrist) at the record rate."""
    import imageio.v2 as imageio
    import numpy as np

    from brs_teleop.episode import read_episode

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / (episode_file.name.split(".")[0] + ".mp4")
    with read_episode(episode_file) as ep:
        names = list(ep.cameras)
        rate = float(ep.metadata.get("rate_hz", 10.0))
        with imageio.get_writer(str(path), fps=rate, macro_block_size=8) as writer:
            for k in range(len(ep.time)):
                writer.append_data(np.hstack([np.asarray(ep.cameras[n].color[k]) for n in names]))
    return path


def drive_episodes(nodes, out: Path, client_name: str, make_driver, episodes: int, first_seed: int,
                   desc: str, progress: bool = True):
    """Run the graph `nodes` (logs under `out`) in this thread while a worker thread drives it:
    `make_driver(client, stop)` gives an object with `wait_for_graph()` and
    `run_episode(index, seed) -> outcome` (with `.success`, `.sim_seconds`).
    Returns (outcomes, errors raised by the driver, the graph's exit code)."""
    from tqdm import tqdm

    from brs.graph_client import GraphClient
    from brs.runner import Runner

    log = open(out / "graph.log", "w")
    runner = Runner(nodes, log_dir=out / "logs", live=False, out=log)
    outcomes: list = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def orchestrate():
        client = GraphClient(client_name)
        try:
            driver = make_driver(client, stop)
            driver.wait_for_graph()
            bar = tqdm(range(episodes), desc=desc, unit="ep", disable=not progress)
            for i in bar:
                if stop.is_set():
                    break
                outcomes.append(driver.run_episode(i, first_seed + i))
                wins = sum(o.success for o in outcomes)
                bar.set_postfix(success=f"{wins}/{len(outcomes)}", last=f"{outcomes[-1].sim_seconds:.0f}s")
        except BaseException as exc:  # reported by the caller after shutdown
            errors.append(exc)
        finally:
            client.close()
            runner.stop()

    worker = threading.Thread(target=orchestrate, daemon=True)
    worker.start()
    try:
        rc = runner.run()
    finally:
        stop.set()
        worker.join(timeout=30)
        log.close()
    return outcomes, errors, rc


def collect(task: str, episodes: int, first_seed: int = 0, output_dir: Path = Path("outputs/collect"),
            speed_factor: float = 1.0, record: bool = True, video: bool = True,
            arguments: dict[str, str] | None = None, progress: bool = True) -> list[EpisodeOutcome]:
    """Bring up the collect graph, run the episodes, shut the graph down; returns the outcomes."""
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
