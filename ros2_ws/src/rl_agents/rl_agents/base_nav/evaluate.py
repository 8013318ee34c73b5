"""Success rate of the PLDM base planner on goals in the other room.

Graph mode (default): brings up the real sim graph in mode plan (sim node, whole-body controller,
planner_node: the same description as `brs bringup use_sim:=true mode:=plan`), then, goal after
goal, publishes a goal pose in the room the robot is NOT in (so every goal needs the doorway),
waits for the planner to report `reached` (checked against /odom) or for the time limit, and
writes a summary. After a failure the sim is reset (robot back at the origin in room A).

    python -m rl_agents.base_nav.evaluate --checkpoint ros2_ws/src/rl_agents/checkpoints/pldm_base.pt --goals 10

`--in-process` runs the same goals on SimCore + the controller's base limiter without ROS (fast
sweeps while tuning; the planner is called synchronously every action period).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

STATUS = "planner: planner"


@dataclass
class GoalOutcome:
    index: int
    start: list
    goal: list
    success: bool
    sim_seconds: float
    final_distance: float
    final_yaw_error: float
    plan_ms_p50: float


def goal_in_other_room(apt, rng, pose, clearance: float = 0.55, min_door_distance: float = 1.0):
    """A free goal pose in the room the robot is not in, at least `min_door_distance` from the
    doorway (so the goal is really inside the other room)."""
    other = 1 - int(apt.room(np.asarray(pose[:2])))
    door = np.array([np.mean(apt.door_x), apt.door_y])
    while True:
        g = apt.sample_free(rng, 1, room=other, clearance=clearance)[0]
        if np.linalg.norm(g[:2] - door) >= min_door_distance:
            return g


class GoalDriver:
    """Drives a running plan-mode graph: goals on /planner/goal, outcome from diagnostics + /odom."""

    def __init__(self, client, stop: threading.Event, seed: int, time_limit: float, tol):
        from geometry_msgs.msg import PoseStamped
        from nav_msgs.msg import Odometry
        from rosgraph_msgs.msg import Clock

        from brs_common import qos, topics
        from rl_agents.base_nav.apartment import Apartment

        self.client, self.stop, self.time_limit, self.tol = client, stop, time_limit, tol
        self.rng = np.random.default_rng(seed)
        self.apt = Apartment.from_model()
        self.lock = threading.Lock()
        self.pose = None
        self.sim_time = 0.0
        self.topics = topics
        self.goal_pub = client.node.create_publisher(PoseStamped, topics.PLANNER_GOAL, qos.COMMAND)
        client.node.create_subscription(Odometry, topics.ODOM, self._on_odom, qos.STATE)
        client.node.create_subscription(Clock, topics.CLOCK, self._on_clock, qos.CLOCK)
        self.PoseStamped = PoseStamped
        self.seq = 0

    def _on_odom(self, msg):
        from brs_common.convert import odom_pose

        with self.lock:
            self.pose = odom_pose(msg)

    def _on_clock(self, msg):
        with self.lock:
            self.sim_time = msg.clock.sec + msg.clock.nanosec * 1e-9

    def now(self):
        with self.lock:
            return self.sim_time, None if self.pose is None else self.pose.copy()

    def wait_for_graph(self, timeout: float = 120.0) -> None:
        self.client.wait_status(STATUS, lambda v: v.get("state") == "idle", timeout, "planner idle")
        deadline = time.monotonic() + timeout
        while self.now()[1] is None:
            if time.monotonic() > deadline:
                raise TimeoutError("no /odom")
            time.sleep(0.05)

    def send_goal(self, goal) -> None:
        msg = self.PoseStamped()
        msg.header.frame_id = "odom"
        msg.pose.position.x, msg.pose.position.y = float(goal[0]), float(goal[1])
        msg.pose.orientation.z, msg.pose.orientation.w = float(np.sin(goal[2] / 2)), float(np.cos(goal[2] / 2))
        self.goal_pub.publish(msg)

    def run_episode(self, index: int, seed: int) -> GoalOutcome:
        from std_srvs.srv import Trigger

        from brs_common.planar import wrap_angle

        t0, start = self.now()
        goal = goal_in_other_room(self.apt, self.rng, start)
        key = f"{goal[0]:.3f} {goal[1]:.3f} {goal[2]:.3f}"
        # the goal topic is not latched: resend until the planner reports it
        deadline = time.monotonic() + 10.0
        while True:
            self.send_goal(goal)
            st = self.client.status(STATUS)
            if st and st[1].get("goal") == key and st[1].get("state") in ("moving", "reached"):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"planner did not take goal {key} (status {st})")
            time.sleep(0.1)
        success = False
        while not self.stop.is_set():
            t, pose = self.now()
            st = self.client.status(STATUS)
            if st and st[1].get("state") == "reached" and st[1].get("goal") == key and self.tol.reached(pose, goal):
                success = True
                break
            if t - t0 > self.time_limit:
                break
            time.sleep(0.05)
        t, pose = self.now()
        st = self.client.status(STATUS)
        out = GoalOutcome(index, start.round(3).tolist(), goal.round(3).tolist(), success, round(t - t0, 2),
                          float(np.hypot(*(pose[:2] - goal[:2]))), float(abs(wrap_angle(pose[2] - goal[2]))),
                          float(st[1].get("plan_ms_p50", "nan")) if st else float("nan"))
        if not success:  # stop, and start the next goal from a known state (robot at the origin)
            self.client.call(Trigger, f"/{self.topics.PLANNER_NODE}/cancel", Trigger.Request())
            self.client.call(Trigger, self.topics.SIM_RESET, Trigger.Request())
            time.sleep(0.5)
        return out


def evaluate_graph(checkpoint: str, goals: int, seed: int, time_limit: float, out_dir: Path,
                   speed_factor: float = 1.0, extra_args: dict | None = None) -> dict:
    from brs_bringup import graph
    from brs_bringup.episodes import drive_episodes
    from rl_agents.base_nav.agent import Tolerance

    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    args = {"use_sim": "true", "mode": "plan", "checkpoint": str(Path(checkpoint).resolve()),
            "cameras_enabled": "false", "speed_factor": str(speed_factor), **(extra_args or {})}
    nodes = graph.describe_from_arguments(args)
    planner = next(n for n in nodes if n.name == "planner")
    tol = Tolerance(float(planner.parameters["position_tolerance"]), float(planner.parameters["yaw_tolerance"]))
    t0 = time.monotonic()
    outcomes, errors, rc = drive_episodes(
        nodes, out_dir, "base_planner_eval",
        lambda client, stop: GoalDriver(client, stop, seed, time_limit, tol), goals, 0, "plan goals")
    if errors:
        raise RuntimeError(f"evaluation failed: {errors[0]!r} (graph exit code {rc}; logs in {out_dir})")
    return summarise(outcomes, {"mode": "graph", "checkpoint": checkpoint, "seed": seed,
                                "time_limit": time_limit, "wall_seconds": time.monotonic() - t0,
                                "tolerance": asdict(tol)})


def evaluate_in_process(checkpoint: str, goals: int, seed: int, time_limit: float, **mppi) -> dict:
    from brs_common.planar import wrap_angle
    from rl_agents.base_nav.agent import BasePlanner, Tolerance, rollout
    from rl_agents.base_nav.apartment import Apartment
    from rl_agents.base_nav.data import BaseMotionConfig, BaseSim

    planner = BasePlanner.from_checkpoint(checkpoint, **mppi)
    m = planner.motion
    env = BaseSim(BaseMotionConfig(m["dt"], m["v_max"], m["w_max"]))
    apt = Apartment.from_model(env.sim.model, env.sim.data)
    rng = np.random.default_rng(seed)
    tol = Tolerance()
    start = np.zeros(3)
    outcomes = []
    t0 = time.monotonic()
    for i in range(goals):
        goal = goal_in_other_room(apt, rng, start)
        planner.plan_ms.clear()
        r = rollout(planner, start, goal, time_limit, tol, seed=i, sim=env)
        end = r["path"][-1]
        outcomes.append(GoalOutcome(i, np.round(start, 3).tolist(), goal.round(3).tolist(), r["success"],
                                    round(r["time"], 2), r["final_distance"], float(abs(wrap_angle(end[2] - goal[2]))),
                                    float(np.median(planner.plan_ms))))
        print(json.dumps(asdict(outcomes[-1])), flush=True)
        start = end if r["success"] else np.zeros(3)
    return summarise(outcomes, {"mode": "in_process", "checkpoint": checkpoint, "seed": seed,
                                "time_limit": time_limit, "wall_seconds": time.monotonic() - t0,
                                "mppi": mppi})


def summarise(outcomes, info: dict) -> dict:
    ok = [o for o in outcomes if o.success]
    return {**info, "goals": len(outcomes), "successes": len(ok),
            "success_rate": len(ok) / len(outcomes) if outcomes else None,
            "mean_time_to_goal": float(np.mean([o.sim_seconds for o in ok])) if ok else None,
            "median_plan_ms": float(np.nanmedian([o.plan_ms_p50 for o in outcomes])) if outcomes else None,
            "outcomes": [asdict(o) for o in outcomes]}


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(description="Success rate of the PLDM base planner on goals in the other room.")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--goals", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-limit", type=float, default=60.0, help="sim seconds per goal")
    p.add_argument("--out", default="outputs/base_nav/eval", help="folder for summary.json and graph logs")
    p.add_argument("--speed-factor", type=float, default=1.0)
    p.add_argument("--in-process", action="store_true", help="SimCore without ROS (fast sweeps)")
    p.add_argument("--horizon", type=int, default=None)
    p.add_argument("--samples", type=int, default=None)
    p.add_argument("--iterations", type=int, default=None)
    p.add_argument("--temperature", type=float, default=None)
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    mppi = {k: v for k, v in (("horizon", a.horizon), ("samples", a.samples), ("iterations", a.iterations),
                                         ("temperature", a.temperature)) if v}
    out = Path(a.out)
    if a.in_process:
        res = evaluate_in_process(a.checkpoint, a.goals, a.seed, a.time_limit, **mppi)
    else:
        res = evaluate_graph(a.checkpoint, a.goals, a.seed, a.time_limit, out, a.speed_factor,
                             {f"planner.{k}": str(v) for k, v in mppi.items()})
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(res, indent=2) + "\n")
    short = {k: v for k, v in res.items() if k != "outcomes"}
    print(json.dumps(short, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
