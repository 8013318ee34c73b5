"""`brs rl eval`: success rate of a trained MR.Q policy run by rl_agent_node in the real-time sim graph.

The graph is the `mode:=rl` bringup (sim node at speed_factor 1 with cameras off, whole-body
controller, rl_agent_node with the checkpoint, autostart false) on a private ROS domain. Per
episode (seed = --seed + episode): the sim is paused, reset and the controller re-initialised
(RosSimEnv.reset in attach mode, which also draws the episode's target from the seed), the
target goes to the agent on /rl_agent/goal, /rl_agent/start, then the sim runs in real time and
the agent acts on its own sim-time timer (not lock-stepped). The episode is judged from
/joint_states + /odom with the task's predicate (rl_agents/ros_tasks.py) over the whole time
limit (sim time): `reached` when the gripper came within the success radius, success when it is
still within it at the time limit (reached and held). Writes eval_node.json (per-episode success,
reached, time to reach, final and closest distance) to --out.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np


def evaluate_node(checkpoint: str, task: str = "reach", episodes: int = 10, seed: int = 0,
                  out: str | None = None, log_dir: str | None = None, speed_factor: float = 1.0,
                  verbose: bool = True) -> dict:
    from geometry_msgs.msg import PointStamped
    from std_srvs.srv import SetBool, Trigger

    from brs_common import domains, qos

    from .ros_env import RosSimEnv, SimGraph

    domain = domains.claim(domains.JOBS)
    log_dir = Path(log_dir or (Path(out) / "logs" if out else Path("/tmp") / f"rl_eval_{domain}"))
    graph = SimGraph(domain, log_dir, with_agent=True, checkpoint=str(checkpoint), autostart=False,
                     speed_factor=float(speed_factor), **{"rl_agent.task": task})
    env = None
    results = []
    try:
        env = RosSimEnv(task, attach=True, domain_id=domain)
        env.graph = graph  # its logs in timeout errors; closed with the env
        node = env.ros.node
        goal_pub = node.create_publisher(PointStamped, "/rl_agent/goal", qos.COMMAND)
        start = node.create_client(Trigger, "/rl_agent/start")
        stop = node.create_client(Trigger, "/rl_agent/stop")
        env._wait(lambda: graph.check() is None and start.service_is_ready() and stop.service_is_ready()
                  and goal_pub.get_subscription_count() > 0, 120.0, "rl_agent_node")  # check(): raises on an exit
        t = env.task
        horizon = t.max_steps * t.agent_period
        for ep in range(episodes):
            _, info = env.reset(seed=seed + ep)
            target = info["target"]
            msg = PointStamped()
            msg.header.frame_id = "odom"
            msg.point.x, msg.point.y, msg.point.z = (float(v) for v in target)
            goal_pub.publish(msg)
            res = env._call(start, Trigger.Request())
            if not res.success or not np.allclose(json.loads(res.message.split("target ", 1)[1]), target, atol=1e-4):
                raise RuntimeError(f"rl_agent did not take the goal: {res.message}")
            with env._cond:
                t0 = max(env._js)  # sim time (ns) of the reset state
                n0 = env._counts["js"]
            env._call(env.pause_client, SetBool.Request(data=False))
            wall0 = time.monotonic()
            best, reached_at, seen = np.inf, None, n0
            while True:
                env._wait(lambda: env._counts["js"] > seen, 30.0, "/joint_states while running")
                with env._cond:
                    seen = env._counts["js"]
                    stamp = max(env._js)
                    q, pose = env._js[stamp], env._last_odom
                elapsed = (stamp - t0) * 1e-9
                if elapsed > horizon:
                    break
                d = t.distance(q, pose, target)
                best = min(best, d)
                if reached_at is None and t.success(d):
                    reached_at = elapsed
            env._call(env.pause_client, SetBool.Request(data=True))
            env._call(stop, Trigger.Request())
            wall = time.monotonic() - wall0
            start_d = t.distance(env.q, env.pose, target)
            results.append({"episode": ep, "seed": seed + ep, "success": bool(t.success(d)),
                            "reached": reached_at is not None, "time_to_reach_s": reached_at,
                            "start_distance": round(start_d, 4),
                            "final_distance": round(float(d), 4), "closest_distance": round(float(best), 4),
                            "wall_s": round(wall, 2), "sim_s": round(elapsed, 2)})
            if verbose:
                r = results[-1]
                print(f"episode {ep} (seed {seed + ep}): {'success' if r['success'] else 'failure'}, "
                      f"distance {start_d:.3f} -> {r['final_distance']:.3f} m (closest {r['closest_distance']:.3f})"
                      + (f", reached after {reached_at:.2f} s" if reached_at is not None else ""), flush=True)
    finally:
        if env is not None:
            env.close()
        graph.close()
        domains.release(domain)
    summary = {"checkpoint": str(checkpoint), "task": task, "episodes": episodes, "seed": seed,
               "speed_factor": speed_factor, "success_rate": float(np.mean([r["success"] for r in results])),
               "reach_rate": float(np.mean([r["reached"] for r in results])),
               "mean_time_to_reach_s": float(np.mean([r["time_to_reach_s"] for r in results if r["reached"]]))
               if any(r["reached"] for r in results) else None,
               "mean_final_distance": float(np.mean([r["final_distance"] for r in results])),
               "mean_closest_distance": float(np.mean([r["closest_distance"] for r in results])),
               "results": results}
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "eval_node.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def add_eval_parser(sub) -> None:
    p = sub.add_parser("eval", help="success rate of a trained MR.Q policy (rl_agent_node) in the real-time sim graph",
                       description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="policy.pt from `brs rl train --env ros/<task>`")
    p.add_argument("--task", default="reach")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seed", type=int, default=1000, help="episode k uses seed + k (training used 0, 10000, ...)")
    p.add_argument("--speed-factor", type=float, default=1.0, help="sim time / wall time while the agent acts")
    p.add_argument("--out", default=None, help="folder for eval_node.json and the node logs")
    p.set_defaults(func=_run)


def _run(args) -> int:
    import sys

    from .ros_env import GraphError

    try:
        s = evaluate_node(args.checkpoint, args.task, args.episodes, args.seed, args.out,
                          speed_factor=args.speed_factor)
    except GraphError as exc:
        print(f"brs rl eval: error: {exc}", file=sys.stderr)
        return 2
    n = sum(r["success"] for r in s["results"])
    m = sum(r["reached"] for r in s["results"])
    print(f"success rate {s['success_rate']:.2f} ({n}/{s['episodes']} episodes within the radius at the time "
          f"limit; {m} reached it at some point; task {s['task']}, real-time graph)")
    return 0
