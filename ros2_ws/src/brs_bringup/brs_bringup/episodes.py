"""The episode driver shared by `brs collect` (brs_bringup.collect), `brs eval` (brs_policy.evaluate)
and the base planner's graph evaluation (rl_agents.base_nav.evaluate).

`drive_episodes` runs a graph description in this thread (brs_bringup.runner) while a worker
thread drives it through episodes over a GraphClient. `EpisodeDriver` holds the chores around
each episode of a sim task: wait for the graph, home the robot through the agent node, reseed and
reset the sim, start the episode recorder, save the episode and (optionally) render its video.

Videos: the renderer is passed in (`video`, e.g. brs_teleop.episode_video.episode_video), since
reading episode files is brs_teleop's and brs_teleop sits above this package.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from std_srvs.srv import Trigger

from brs_common import topics

SIM_TASK_STATUS = topics.SIM_TASK_STATUS
RECORDER = topics.RECORDER_NODE

# (episode file, output folder) -> the video file written
VideoRenderer = Callable[[Path, Path], Path]


class EpisodeDriver:
    """What `brs collect` and `brs eval` share: a graph client, the task, wall-clock budgets, and
    the chores around each episode. `agent` is the node that drives the robot (services ~/home,
    ~/start, ~/stop; /diagnostics status `agent_status` with a `state` value). `video`: renders
    each saved episode into output_dir/videos, or None for no videos."""

    agent = ""
    agent_status = ""
    source = ""  # the recorder's `source` metadata for this driver's episodes
    home_sim_seconds = 10.0  # homing budget (sim s; see _wall) before the robot counts as stuck
    stuck_after: float | None = None  # wall s instead, for the homing before an episode (tests)

    def __init__(self, client, task: str, output_dir: Path, record: bool, video: VideoRenderer | None,
                 speed_factor: float, stop: threading.Event):
        from brs_sim.tasks import get_task

        if video is not None and not callable(video):
            raise TypeError(f"video must be a renderer (episode file, folder) -> video file, or None; got {video!r}")
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
        """Until the sim, the agent and (when recording) the recorder report on /diagnostics, the
        recorder with every camera's camera_info in (the sim's first frames come late when loaded)."""
        for name in (SIM_TASK_STATUS, self.agent_status):
            self.client.wait_status(name, lambda v: True, timeout, f"{name.split(':')[0]} to come up")
        if self.record:
            self.client.wait_status(f"{RECORDER}: recorder", lambda v: v.get("cameras_waiting") == "", timeout,
                                    "the recorder to come up with every camera's camera_info")

    def home(self, wall: float | None = None) -> None:
        """~/home, then wait `wall` s (default: the homing budget) for the agent to report it."""
        self._trigger(f"/{self.agent}/home")
        self.client.wait_status(self.agent_status, lambda v: v.get("state") == "home",
                                self._wall(self.home_sim_seconds) if wall is None else wall,
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
            self.home(self.stuck_after)
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
        if self.video is not None and outcome.file:
            outcome.video = str(self.video(Path(outcome.file), self.output_dir / "videos"))


def drive_episodes(nodes, out: Path, client_name: str, make_driver, episodes: int, first_seed: int,
                   desc: str, progress: bool = True):
    """Run the graph `nodes` (logs under `out`) in this thread while a worker thread drives it:
    `make_driver(client, stop)` gives an object with `wait_for_graph()` and
    `run_episode(index, seed) -> outcome` (with `.success`, `.sim_seconds`).
    Returns (outcomes, errors raised by the driver, the graph's exit code). An error raised
    while the graph was already shutting down (Ctrl-C, or a required node that exited, which the
    exit code tells) is that shutdown's consequence, not an error of its own: the finished
    episodes are returned without it."""
    from tqdm import tqdm

    from brs_bringup.graph_client import GraphClient
    from brs_bringup.runner import Runner

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
            if not runner.stopping:
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
