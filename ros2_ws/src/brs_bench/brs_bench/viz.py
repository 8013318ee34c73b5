"""Foxglove bridge benchmark (registered in brs_bench): the CPU viz_bridge adds to the sim graph.

The graph is `mode:=policy` without the policy node (no checkpoint): sim (3 RGB-D cameras 320x240
at 10 Hz, speed 1, bimanual_box), whole_body_controller, robot_description and perception, which
fuses the cameras into a 4096-point cloud at 10 Hz. Blocks of BLOCK_SECONDS alternate between the
graph alone (A) and the graph with viz_bridge (parameters from config/viz.yaml, `viz:=true`) and a
Foxglove WebSocket client (subprotocol foxglove.sdk.v1, as tests/test_viz_bridge.py speaks it)
subscribed to /perception/points, the head colour image and /tf (B), in the order A B, B A, A B, ...
viz_bridge is started for every B block and stopped after it; a block starts once the client
receives all three channels and the start-up has settled.

viz_bridge_cpu_overhead_pct: extra CPU of the graph's processes (psutil user + system) as % of the
graph's own: 100 * (viz_bridge + max(0, the others' B - A)) / A, medians of CPU seconds per second
of sim time (/clock); the others' change counts only when it is an increase (more DDS work to one
more subscriber): on a loaded machine perception drops clouds beside the bridge, which would
make the bridge look free. Per sim second: the graph's work is fixed per sim second (100 physics ticks, 10
renders and clouds), so a starved graph running below real time on a shared machine does not look
cheaper, nor a bridge that slows it (the per-wall-second figure is in the note). The client runs in
this benchmark's process (the Foxglove app runs on the viewer's machine) and is not counted.
Baseline: the spread of the A blocks, 100 * (max A - min A) / median A: how far the graph alone
moves from block to block in this run, the noise the overhead stands against.
"""

from __future__ import annotations

TITLE = "Foxglove bridge: CPU added to the sim graph with 10 Hz clouds"  # make bench's heading of this module

import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .procs import check_alive, spawn, stop_graph, use_domain

BLOCK_SECONDS = 15.0  # wall seconds of CPU measurement per block
SETTLE_SECONDS = 3.0  # after a start (the graph's, the bridge's) before a block measures
GRAPH_NODES = ("sim", "whole_body_controller", "robot_description_publisher", "perception")
SUBPROTOCOL = "foxglove.sdk.v1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FoxgloveClient(threading.Thread):
    """A Foxglove WebSocket client that subscribes to `want` and counts the messages per topic
    (payloads are received, not decoded: the app's decoding runs on the viewer's machine)."""

    def __init__(self, url: str, want: list[str], timeout: float = 60.0):
        super().__init__(name="foxglove_client", daemon=True)
        self.url, self.want, self.timeout = url, want, timeout
        self.counts = dict.fromkeys(want, 0)
        self.bytes = 0
        self.error: BaseException | None = None
        self._halt = threading.Event()
        self._lock = threading.Lock()

    def snapshot(self) -> tuple[dict[str, int], int]:
        with self._lock:
            return dict(self.counts), self.bytes

    def stop(self) -> None:
        self._halt.set()
        self.join(10)

    def run(self):
        from websockets.sync.client import connect

        deadline = time.monotonic() + self.timeout
        try:
            while True:  # the server comes up a moment after the process
                try:
                    ws = connect(self.url, subprotocols=[SUBPROTOCOL], max_size=None, open_timeout=5)
                    break
                except OSError:
                    if time.monotonic() > deadline or self._halt.is_set():
                        raise
                    time.sleep(0.2)
            with ws:
                self._serve(ws)
        except BaseException as exc:  # told to the benchmark's thread
            self.error = exc

    def _serve(self, ws):
        channels, by_sub = {}, {}
        while not self._halt.is_set():
            try:
                frame = ws.recv(timeout=0.2)
            except TimeoutError:
                continue
            if isinstance(frame, str):
                msg = json.loads(frame)
                if msg.get("op") == "advertise":
                    channels.update({c["topic"]: c for c in msg["channels"]})
                if not by_sub and all(t in channels for t in self.want):
                    by_sub = dict(enumerate(self.want))
                    ws.send(json.dumps({"op": "subscribe", "subscriptions": [
                        {"id": i, "channelId": channels[t]["id"]} for i, t in by_sub.items()]}))
            elif frame[0] == 1:  # message data: subscription id u32, log time u64, payload
                (sub,) = struct.unpack_from("<I", frame, 1)
                with self._lock:
                    self.counts[by_sub[sub]] += 1
                    self.bytes += len(frame)


class _Cpu:
    """CPU time (user + system) of some processes between start() and stop(), seconds."""

    def __init__(self, procs: dict[str, subprocess.Popen]):
        import psutil

        self.procs = {name: psutil.Process(p.pid) for name, p in procs.items()}

    def _times(self) -> dict[str, float]:
        return {name: sum(p.cpu_times()[:2]) for name, p in self.procs.items()}

    def start(self):
        self.t0, self.c0 = time.monotonic(), self._times()

    def stop(self) -> tuple[dict[str, float], float]:
        """({process: CPU seconds}, wall seconds)."""
        wall, c1 = time.monotonic() - self.t0, self._times()
        return {name: c1[name] - self.c0[name] for name in c1}, wall


def run(repeats: int = 3):
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import PointCloud2

    from brs_bringup import graph
    from brs_bringup.runner import command_line
    from brs_bench.result import Result
    from brs_common import domains, qos, topics
    from brs_common.background import BackgroundNode
    from brs_common.convert import stamp_to_sec
    from brs_common.process import stop_process

    domain = domains.claim(domains.JOBS)  # a private graph: no other one on this domain
    saved_domain = use_domain(domain)
    bin_dir = Path(sys.executable).parent
    port = _free_port()
    want = [topics.POINTS, topics.camera_topic("head", "color"), topics.TF]
    procs, bench, bridge, client = {}, None, None, None
    blocks = {"A": [], "B": []}  # {"cpu": {process: %}, "clouds": /s, "client": {topic: /s}}
    load = [os.getloadavg()[0]]
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench_viz_") as tmp:
        logs = Path(tmp)
        try:
            nodes = {n.name: n for n in graph.describe(True, "policy", viz=True, speed_factor=1.0, task="bimanual_box",
                                                       **{"viz_bridge.port": port})}
            argv = {name: command_line(n, str(bin_dir / n.executable)) for name, n in nodes.items()}
            procs = {name: spawn(argv[name], logs / f"{name}.log") for name in GRAPH_NODES}
            bench = BackgroundNode("bench_viz", domain)
            clouds: list[float] = []
            sim_now = [0.0]
            lock = threading.Lock()

            def on_cloud(_msg):
                with lock:
                    clouds.append(time.monotonic())

            def on_clock(msg):
                with lock:
                    sim_now[0] = stamp_to_sec(msg.clock)
            bench.node.create_subscription(PointCloud2, topics.POINTS, on_cloud, qos.SENSOR)
            bench.node.create_subscription(Clock, topics.CLOCK, on_clock, qos.CLOCK)
            deadline = time.monotonic() + 180
            while not clouds:  # the sim renders, perception fuses
                check_alive(procs, logs)
                if time.monotonic() > deadline:
                    raise RuntimeError("no point cloud from the graph after 180 s")
                time.sleep(0.2)
            time.sleep(SETTLE_SECONDS)

            def measure(kind: str) -> None:
                running = {**procs, **({"viz_bridge": bridge} if kind == "B" else {})}
                cpu = _Cpu(running)
                with lock:
                    n0, sim0 = len(clouds), sim_now[0]
                got0 = client.snapshot()[0] if kind == "B" else {}
                cpu.start()
                time.sleep(BLOCK_SECONDS)
                used, wall = cpu.stop()
                check_alive(running, logs)
                with lock:
                    n1, sim1 = len(clouds), sim_now[0]
                # per sim second: the graph's work (10 clouds, 100 physics ticks) is fixed per sim
                # second, so a starved graph that runs slower does not look cheaper
                block = {"cpu": {n: 100.0 * c / (sim1 - sim0) for n, c in used.items()},
                         "wall_cpu": {n: 100.0 * c / wall for n, c in used.items()},
                         "clouds": (n1 - n0) / wall, "rtf": (sim1 - sim0) / wall}
                if kind == "B":
                    if client.error is not None:
                        raise RuntimeError(f"the Foxglove client failed: {client.error!r}")
                    got1 = client.snapshot()[0]
                    block["client"] = {t: (got1[t] - got0[t]) / BLOCK_SECONDS for t in want}
                blocks[kind].append(block)

            def with_bridge() -> None:
                nonlocal bridge, client
                bridge = spawn(argv["viz_bridge"], logs / "viz_bridge.log")
                client = FoxgloveClient(f"ws://127.0.0.1:{port}", want)
                client.start()
                deadline = time.monotonic() + 120
                while not all(client.snapshot()[0].values()):  # every channel flows
                    check_alive({**procs, "viz_bridge": bridge}, logs)
                    if client.error is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"the Foxglove client got {client.snapshot()[0]} "
                                           f"({client.error!r})")
                    time.sleep(0.1)
                time.sleep(SETTLE_SECONDS)
                try:
                    measure("B")
                finally:
                    client.stop()
                    stop_process(bridge, 10)
                    bridge = None
                time.sleep(SETTLE_SECONDS)  # the others forget its subscriptions

            for i in range(repeats):
                for kind in ("AB" if i % 2 == 0 else "BA"):
                    measure("A") if kind == "A" else with_bridge()
            load.append(os.getloadavg()[0])
        finally:
            if client is not None:
                client.stop()
            if bench is not None:
                bench.close()
            stop_graph(([bridge] if bridge is not None else []) + list(reversed(procs.values())), saved_domain)
            domains.release(domain)

    def total(block, key="cpu"):
        return sum(block[key].values())  # the graph's processes, viz_bridge too in B

    def med(kind, f):
        return statistics.median(f(blk) for blk in blocks[kind])

    a = [total(blk) for blk in blocks["A"]]
    b = [total(blk) for blk in blocks["B"]]
    med_a, med_b = statistics.median(a), statistics.median(b)
    own = med("B", lambda blk: blk["cpu"]["viz_bridge"])
    # the bridge's own CPU plus what the others spent more with it; never less than its own: on a
    # starved machine perception drops clouds beside the bridge and the others' CPU falls
    others = med_b - own - med_a
    value = 100.0 * (own + max(0.0, others)) / med_a
    spread = 100.0 * (max(a) - min(a)) / med_a
    wall_a, wall_b = med("A", lambda blk: total(blk, "wall_cpu")), med("B", lambda blk: total(blk, "wall_cpu"))
    per_node = ", ".join(f"{n} {med('A', lambda blk: blk['cpu'][n]):.0f} -> {med('B', lambda blk: blk['cpu'][n]):.0f}"
                         for n in GRAPH_NODES)
    client_rates = ", ".join(f"{t} {med('B', lambda blk: blk['client'][t]):.1f}/s" for t in want)
    note = (f"CPU per sim second (% of a core at real time; psutil user + system): graph {med_a:.0f}% alone, "
            f"{med_b:.0f}% with the bridge (viz_bridge itself {own:.1f}%, the others {others:+.1f}%; "
            f"{per_node}); blocks A {', '.join(f'{x:.0f}' for x in a)}, B {', '.join(f'{x:.0f}' for x in b)}; "
            f"per wall second {wall_a:.0f}% -> {wall_b:.0f}% ({100 * (wall_b - wall_a) / wall_a:+.1f}%); "
            f"sim at {med('A', lambda blk: blk['rtf']):.2f} / {med('B', lambda blk: blk['rtf']):.2f} x real time, "
            f"clouds {med('A', lambda blk: blk['clouds']):.1f} / {med('B', lambda blk: blk['clouds']):.1f} per wall s "
            f"(alone / with; the bridge's rate limits are wall time, so below real time the per-sim-s overhead "
            f"is the larger one); client received {client_rates}; {repeats} x {BLOCK_SECONDS:g} s per kind, "
            f"alternating; load average {load[0]:.1f} -> {load[-1]:.1f} (1 min) on {os.cpu_count()} cores "
            f"(shared); {time.monotonic() - t_start:.0f} s")
    return [
        Result("viz_bridge_cpu_overhead_pct", value, "%", spread,
               "the graph without the bridge: spread of its blocks, (max - min) / median", "<= 5",
               higher_is_better=False, note=note),
    ]

if __name__ == "__main__":
    for result in run(int(sys.argv[1]) if len(sys.argv) > 1 else 1):
        print(f"{result.name}: {result.value:.3g} {result.unit} (baseline {result.baseline:.3g}, "
              f"{result.ratio:.2f}x, target {result.target}) - {result.note}")
