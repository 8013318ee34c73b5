"""Embedded launcher: runs a graph description one OS process per node, like `ros2 launch`.

Each node runs as `<executable> --ros-args -r __node:=<name> -p key:=value ... -r from:=to` in its
own session (so a terminal Ctrl-C reaches only the runner, which then stops the nodes in order).
Output lines are prefixed with `[name]` (and copied to `<log_dir>/<name>.log`); on a TTY a live
status table (pid, state, uptime, CPU, RSS) sits below them.

Shutdown (Ctrl-C, SIGTERM, SIGHUP, or a `required` node exiting): SIGINT to every node, SIGTERM
after its `stop_timeout`, SIGKILL to its whole process group after `kill_timeout`. Children also
get PR_SET_PDEATHSIG=SIGKILL, so even a SIGKILLed runner leaves no orphans. Exit code: 0, or the
code of the first node that crashed (128+N for a node killed by signal N).
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psutil

from brs_bringup.graph import NodeDescription
from brs_common.dds import configure_dds
from brs_common.rate_limit import ChangeLimiter

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
# Exit codes of a node we asked to stop that do not count as a crash.
_STOPPED_CODES = (0, -signal.SIGINT, -signal.SIGTERM, -signal.SIGKILL)
HEALTH_PERIOD = 0.2  # s between looks at the nodes' diagnostics
STARTUP_GRACE = 5.0  # s after a node starts in which its WARNs (waiting for inputs) are not printed
# s: a component's WARN <-> OK changes within this of its last console line are folded into one
# line with a count; entering or leaving ERROR (or STALE) is printed at once
CONSOLE_WINDOW = 2.0
# s: new messages of a lasting ERROR (or STALE) within this of its last line are folded (a driver's
# reconnect countdown: <= 2 lines/s); with the HEALTH_PERIOD look every ERROR text shows within 1 s
ERROR_WINDOW = 0.5
LEVEL_NAMES = {0: "OK", 1: "WARN", 2: "ERROR", 3: "STALE"}
# brs_common.diagnostics' levels, not imported from there: it pulls in rclpy, which the runner
# module does not need
OK_LEVEL, WARN_LEVEL, ERROR_LEVEL, STALE_LEVEL = 0, 1, 2, 3
_SUMMARY = ("operator summary",)  # the operator line's stream in the console's ChangeLimiter


class RunnerError(RuntimeError):
    """The graph cannot be started (e.g. an executable is missing)."""


# ---- command lines -----------------------------------------------------------------------------

def find_executable(node: NodeDescription) -> str:
    """The node's console script: next to this Python, on PATH, or in `<prefix>/lib/<package>/`."""
    beside = Path(sys.executable).parent / node.executable
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(node.executable)
    if found:
        return found
    try:
        from ament_index_python.packages import get_package_prefix

        installed = Path(get_package_prefix(node.package)) / "lib" / node.package / node.executable
        if installed.is_file():
            return str(installed)
    except (ImportError, LookupError, OSError, ValueError):
        pass
    raise RunnerError(
        f"node {node.name!r}: executable {node.executable!r} of package {node.package!r} not found "
        f"in {beside.parent}, on PATH or in the ament index; is {node.package} installed "
        f"(`make venv` / pip install -e)?"
    )


def format_value(value: Any) -> str:
    """A parameter value as `-p key:=<value>` text (YAML, parsed by rcl like ROS does)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a double-quoted YAML scalar: always a string
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError("an empty list parameter has no ROS type; give it at least one element")
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    raise ValueError(f"unsupported parameter value {value!r} ({type(value).__name__})")


def command_line(node: NodeDescription, executable: str | None = None) -> list[str]:
    """argv that starts `node` the way launch_ros does."""
    argv = [executable or node.executable, "--ros-args", "-r", f"__node:={node.name}"]
    for key, value in node.parameters.items():
        try:
            argv += ["-p", f"{key}:={format_value(value)}"]
        except ValueError as exc:
            raise ValueError(f"{node.name}.{key}: {exc}") from None
    for src, dst in node.remappings:
        argv += ["-r", f"{src}:={dst}"]
    return argv


def _child_setup(parent_pid: int):
    """preexec_fn: die with the runner (PR_SET_PDEATHSIG), even if it is SIGKILLed."""
    def setup():
        if _LIBC is not None:
            _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the runner died before prctl took effect
            os._exit(1)
    return setup


def spawn_node(node: NodeDescription, env: dict[str, str], stdout=subprocess.DEVNULL, executable: str | None = None) -> subprocess.Popen:
    """Start one node of a graph description (brs_bringup.graph) as a child process in its own session
    that dies with this process, even if this process is SIGKILLed. `stdout` takes stderr too."""
    argv = command_line(node, executable or find_executable(node))
    return subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=_child_setup(os.getpid()))


def _exit_status(rc: int) -> int:
    return rc if rc >= 0 else 128 - rc


# ---- processes ---------------------------------------------------------------------------------

@dataclass
class _Proc:
    node: NodeDescription
    executable: str
    popen: subprocess.Popen | None = None
    ps: psutil.Process | None = None
    started: float = 0.0
    state: str = "pending"  # running | exited(rc) | restarting | stopping
    returncode: int | None = None
    restarts: int = 0
    restart_at: float | None = None
    stop_stage: int = 0  # 0 none, 1 SIGINT sent, 2 SIGTERM sent, 3 SIGKILL sent
    deadline: float = 0.0
    pump: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.returncode is None


class Runner:
    """Runs `nodes` until they all exit, a required node exits, or the runner is signalled."""

    def __init__(self, nodes: Sequence[NodeDescription], *, log_dir: Path | str | None = None,
                 live: bool | None = None, kill_timeout: float = 3.0,
                 env: dict[str, str] | None = None, out: IO[str] | None = None,
                 health: Callable[[], dict[str, tuple[int, str]]] | None = None,
                 summary: Callable[[], str] | None = None,
                 components: Callable[[], dict[str, tuple[int, str]]] | None = None):
        """`health()`: {node name: (worst diagnostic level, "component: message")}, e.g.
        GraphClient.node_health; shown in the table. `components()`: {"node: component":
        (level, message)} of every /diagnostics status (GraphClient.component_health): the
        console prints each component's changes to WARN or ERROR and back to OK (without it,
        each node's worst component from `health`), see `_check_health`. `summary()`: one
        operator line (e.g. GraphClient.operator_summary: command source, e-stop, recorder),
        under the table and printed when it changes (`_check_summary`)."""
        self.nodes = list(nodes)
        self.health = health
        self.components = components
        self.summary = summary
        self._summary = ""
        self._health: dict[str, tuple[int, str]] = {}
        # console lines per stream (a component, or a node without `components`): its level ...
        self._lines = ChangeLimiter(CONSOLE_WINDOW)
        # ... and, while it is ERROR or STALE, its message (else None), folded over ERROR_WINDOW only
        self._errors = ChangeLimiter(ERROR_WINDOW)
        self._nodes: dict[str, str] = {}  # stream -> its node
        self._texts: dict[tuple[str, int], str] = {}  # (stream, level) -> its latest "component: message"
        self.log_dir = Path(log_dir) if log_dir else None
        self.out = out or sys.stdout
        self.live = self.out.isatty() if live is None else live
        self.kill_timeout = kill_timeout
        configure_dds()  # the graph's DDS defaults reach every node, the user's exports win
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.procs: list[_Proc] = []
        self._signals: list[int] = []
        self._stopping = False
        self._failure: int | None = None
        self._lock = threading.Lock()
        self._console = None
        self._logs: dict[str, IO[bytes]] = {}

    # -- public ----------------------------------------------------------------------------------
    def run(self) -> int:
        """Start every node, supervise, shut down; returns the exit code."""
        self.procs = [_Proc(n, find_executable(n)) for n in self.nodes]
        for proc in self.procs:  # every parameter formats before any node starts (drivers torque on)
            try:
                command_line(proc.node, proc.executable)
            except ValueError as exc:
                raise RunnerError(f"{exc}; nothing was started") from None
        if not self.procs:
            self._say("nothing to run: the described graph is empty")
            return 0
        handlers = self._install_signal_handlers()
        live = self._open_display()
        try:
            for proc in self.procs:
                self._start(proc)
            self._supervise(live)
        finally:
            self._kill_groups()
            if live is not None:
                live.update(self._table(), refresh=True)
                live.stop()
            for proc in self.procs:
                if proc.pump is not None:
                    proc.pump.join(timeout=2.0)
            for log in self._logs.values():
                log.close()
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
        if live is None:
            for proc in self.procs:
                self._say(f"{proc.node.name}: {proc.state}, {proc.restarts} restarts")
        return self._failure or 0

    def stop(self, signum: int = signal.SIGINT) -> None:
        """Ask for a clean shutdown (what a Ctrl-C does); safe from any thread."""
        self._signals.append(signum)

    @property
    def stopping(self) -> bool:
        """A shutdown has begun (a signal, `stop()`, or a required node's exit)."""
        return self._stopping

    # -- supervision -----------------------------------------------------------------------------
    def _supervise(self, live) -> None:
        handled = 0
        last_refresh = last_health = 0.0
        while True:
            now = time.monotonic()
            for proc in self.procs:
                self._poll(proc, now)
            if len(self._signals) > handled:
                name = signal.Signals(self._signals[-1]).name
                if not self._stopping:
                    self._begin_shutdown(f"received {name}")
                else:  # a second Ctrl-C: escalate now
                    self._say(f"received {name} again: escalating")
                    for proc in self.procs:
                        proc.deadline = now
                handled = len(self._signals)
            if self._stopping:
                self._escalate(now)
                if not any(p.alive for p in self.procs):
                    return
            elif not any(p.alive or p.restart_at is not None for p in self.procs):
                self._say("all nodes exited")
                return
            if now - last_health >= HEALTH_PERIOD:
                self._check_health()
                self._check_summary()
                self._say_folded()
                last_health = now
            if live is not None and now - last_refresh >= 0.5:
                live.update(self._table(), refresh=True)
                last_refresh = now
            time.sleep(0.05)

    def _start(self, proc: _Proc) -> None:
        try:
            proc.popen = spawn_node(proc.node, self.env, subprocess.PIPE, proc.executable)
        except OSError as exc:
            raise RunnerError(f"cannot start node {proc.node.name!r} ({proc.executable}): {exc}") from exc
        proc.started = time.monotonic()
        proc.state, proc.returncode, proc.restart_at = "running", None, None
        try:
            proc.ps = psutil.Process(proc.popen.pid)
            proc.ps.cpu_percent(None)
        except psutil.Error:
            proc.ps = None
        proc.pump = threading.Thread(target=self._pump, args=(proc, proc.popen.stdout), daemon=True)
        proc.pump.start()
        self._say(f"started {proc.node.name} (pid {proc.popen.pid}): {' '.join(proc.popen.args)}")

    def _poll(self, proc: _Proc, now: float) -> None:
        if proc.restart_at is not None and now >= proc.restart_at and not self._stopping:
            self._signal(proc, signal.SIGKILL, group=True)  # leftovers of the previous run
            proc.restarts += 1
            self._start(proc)
            return
        if not proc.alive or proc.popen.poll() is None:
            return
        rc = proc.returncode = proc.popen.returncode
        proc.state = f"exited({rc})"
        node = proc.node
        if proc.stop_stage:
            if rc not in _STOPPED_CODES:
                self._fail(node, rc, "while stopping")
            else:
                self._say(f"{node.name} stopped (exit code {rc})")
            return
        if rc != 0:
            self._fail(node, rc, "crashed")
        else:
            self._say(f"{node.name} exited (exit code 0)")
        if node.required and not self._stopping:
            done = "finished" if rc == 0 else "failed"
            self._begin_shutdown(f"required node {node.name} {done}")
        elif node.respawn and not self._stopping:
            proc.restart_at = now + node.respawn_delay
            proc.state = "restarting"
            self._say(f"restarting {node.name} in {node.respawn_delay:.1f} s")

    def _fail(self, node: NodeDescription, rc: int, how: str) -> None:
        self._say(f"{node.name} {how} (exit code {rc})", error=True)
        if self._failure is None:
            self._failure = _exit_status(rc) or 1

    def _begin_shutdown(self, reason: str) -> None:
        self._stopping = True
        self._say(f"{reason}: shutting down")
        now = time.monotonic()
        for proc in self.procs:
            proc.restart_at = None
            if proc.alive:
                self._signal(proc, signal.SIGINT)
                proc.stop_stage, proc.deadline, proc.state = 1, now + proc.node.stop_timeout, "stopping"

    def _escalate(self, now: float) -> None:
        for proc in self.procs:
            if not proc.alive or now < proc.deadline or proc.stop_stage >= 3:
                continue
            if proc.stop_stage == 1:
                self._say(f"{proc.node.name} ignored SIGINT for {proc.node.stop_timeout:.1f} s: SIGTERM",
                          error=True)
                self._signal(proc, signal.SIGTERM)
                proc.stop_stage, proc.deadline = 2, now + self.kill_timeout
            else:
                self._say(f"{proc.node.name} ignored SIGTERM: SIGKILL", error=True)
                self._signal(proc, signal.SIGKILL, group=True)
                proc.stop_stage = 3

    @staticmethod
    def _signal(proc: _Proc, signum: int, group: bool = False) -> None:
        """SIGINT/SIGTERM go to the node only (its helpers, e.g. ffmpeg, finish through it);
        SIGKILL goes to its whole process group."""
        try:
            if group:
                os.killpg(proc.popen.pid, signum)
            else:
                proc.popen.send_signal(signum)
        except (ProcessLookupError, PermissionError):
            pass

    def _kill_groups(self) -> None:
        """Last line: SIGKILL every node's process group (leftover helpers), reap the nodes."""
        for proc in self.procs:
            if proc.popen is None:
                continue
            self._signal(proc, signal.SIGKILL, group=True)
            if proc.returncode is None:
                proc.returncode = proc.popen.wait()
                proc.state = f"exited({proc.returncode})"

    def _install_signal_handlers(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}  # embedded use: the caller stops us with stop()
        previous = {}
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            previous[signum] = signal.signal(signum, lambda s, _f: self._signals.append(s))
        return previous

    # -- output ----------------------------------------------------------------------------------
    def _pump(self, proc: _Proc, stream: IO[bytes]) -> None:
        name = proc.node.name
        if self.log_dir is not None and name not in self._logs:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self._logs[name] = open(self.log_dir / f"{name}.log", "wb")
        log = self._logs.get(name)
        for raw in iter(stream.readline, b""):
            if log is not None:
                log.write(raw)
                log.flush()
            self._emit(name, raw.decode(errors="replace").rstrip("\n"))
        stream.close()

    def _check_health(self) -> None:
        """Print the diagnostic level changes of each component (each node without a
        `components` source): WARN or ERROR with the message, and the way back to OK.

        - A WARN or STALE in a node's first STARTUP_GRACE s (e.g. waiting for its first input, a
          merger's "no message yet") is not news, so neither it nor the OK after it is printed.
        - Entering ERROR (or STALE) and leaving it are printed at once, also when another
          component of the node is still WARN (a leader that is read again says so).
        - WARN <-> OK changes within CONSOLE_WINDOW s of the component's last line are folded:
          where the component ended up is printed when the window runs out, with the number of
          changes (a flapping component: one line per window).
        - New messages of a lasting ERROR are folded the same way over ERROR_WINDOW s only, so
          each reaches the console within 1 s of its arrival.
        """
        procs = {p.node.name: p for p in self.procs}
        health = self._ask("health", "diagnostics")
        if health is not None:
            self._health = {k: v for k, v in health.items() if k in procs}
        components = self._ask("components", "component diagnostics")
        if components is not None:
            streams = [(name, name.partition(": ")[0], level,
                        f"{name.partition(': ')[2]}: {message}" if ": " in name else message)
                       for name, (level, message) in components.items()]
        elif health is not None:
            streams = [(node, node, level, message) for node, (level, message) in health.items()]
        else:
            return
        now = time.monotonic()
        for key, node, level, text in sorted(streams):
            proc = procs.get(node)
            if proc is None:
                continue
            self._nodes[key], self._texts[key, level] = node, text
            before = self._lines.state(key, OK_LEVEL)
            if level in (WARN_LEVEL, STALE_LEVEL) and before == OK_LEVEL and now - proc.started < STARTUP_GRACE:
                continue
            urgent = level != before and max(level, before) >= ERROR_LEVEL
            error = text if level >= ERROR_LEVEL else None
            report = self._lines.offer(key, level, now, initial=OK_LEVEL, force=urgent)
            if report is not None:
                self._print_level(node, level, text + report.suffix())
                self._errors.offer(key, error, now, force=True)  # the message said is the one to fold from
            elif error is not None:  # a lasting ERROR (entering one is urgent): a new message?
                report = self._errors.offer(key, error, now)
                if report is not None:
                    self._print_level(node, level, text + report.suffix())

    def _say_folded(self) -> None:
        """Where a folded component (or the operator line) ended up, once its window ran out."""
        now = time.monotonic()
        for key, state, report in self._lines.due(now):
            if key == _SUMMARY:
                self._say(state + report.suffix())
            else:
                self._print_level(self._nodes[key], state, self._texts[key, state] + report.suffix())
        for key, text, report in self._errors.due(now):
            level = self._lines.state(key, OK_LEVEL)
            if text is not None and level >= ERROR_LEVEL:
                self._print_level(self._nodes[key], level, text + report.suffix())

    def _print_level(self, node: str, level: int, text: str) -> None:
        self._emit(node, f"{LEVEL_NAMES.get(level, str(level))}: {text}",
                   style="bold red" if level >= ERROR_LEVEL else "bold yellow" if level == WARN_LEVEL else "bold green")

    def _check_summary(self) -> None:
        """Print the operator line when it changes; a change of the e-stop part at once, others
        (the command source going idle / in control under load) folded like a WARN <-> OK flap."""
        line = self._ask("summary", "operator summary")
        if line is None:
            return
        now = time.monotonic()
        if line:
            said = self._lines.state(_SUMMARY, "")
            urgent = _part(line, "e-stop") != _part(said, "e-stop")
            report = self._lines.offer(_SUMMARY, line, now, initial="", force=urgent)
            if report is not None:
                self._say(line + report.suffix())
        self._summary = line

    def _ask(self, attr: str, what: str):
        """The value of the console source `self.<attr>()`, or None when there is none; one that
        raises is reported and dropped (the console must not take the bringup down)."""
        source = getattr(self, attr)
        if source is None:
            return None
        try:
            return source()
        except Exception as exc:
            self._say(f"{what} unavailable: {exc!r}", error=True)
            setattr(self, attr, None)
            return None

    def _say(self, text: str, error: bool = False) -> None:
        self._emit("brs", text, style="bold red" if error else "bold")

    def _emit(self, name: str, line: str, style: str | None = None) -> None:
        if self._console is not None:
            from rich.text import Text

            self._console.print(Text.assemble((f"[{name}] ", style or _color(name)), line),
                                soft_wrap=True)
            return
        with self._lock:
            self.out.write(f"[{name}] {line}\n")
            self.out.flush()

    def _open_display(self):
        if not self.live:
            return None
        from rich.console import Console
        from rich.live import Live

        self._console = Console(file=self.out)
        live = Live(self._table(), console=self._console, auto_refresh=False,
                    redirect_stdout=False, redirect_stderr=False)
        live.start()
        return live

    def _table(self):
        from rich.markup import escape
        from rich.table import Table

        table = Table(title="brs bringup", title_justify="left", caption=self._summary or None,
                      caption_justify="left")
        columns = ("node", "pid", "state", "restarts", "uptime", "CPU %", "RSS MiB")
        columns += ("diagnostics",) if self.health is not None else ()
        for column in columns:
            table.add_column(column, justify="left" if column in ("node", "state", "diagnostics") else "right",
                             overflow="ellipsis", no_wrap=column == "diagnostics", max_width=60)
        now = time.monotonic()
        for proc in self.procs:
            cpu = rss = ""
            if proc.alive and proc.ps is not None:
                try:
                    cpu = f"{proc.ps.cpu_percent(None):.0f}"
                    rss = f"{proc.ps.memory_info().rss / 2**20:.0f}"
                except psutil.Error:
                    pass
            state = proc.state
            style = "green" if state == "running" else "yellow" if state in ("restarting", "stopping") \
                else "red" if proc.returncode not in (None, 0) else "dim"
            row = [proc.node.name, str(proc.popen.pid) if proc.popen else "-", f"[{style}]{state}[/]",
                   str(proc.restarts), f"{now - proc.started:.0f} s" if proc.alive else "", cpu, rss]
            if self.health is not None:
                level, message = self._health.get(proc.node.name, (None, ""))
                colour = {0: "green", 1: "yellow"}.get(level, "red")
                row.append("" if level is None else f"[{colour}]{LEVEL_NAMES.get(level, level)}[/] {escape(message)}")
            table.add_row(*row)
        return table


def _part(line: str, name: str) -> str:
    """The "name: ..." part of an operator line ("command source: ... | e-stop: off | ...")."""
    return next((p.strip() for p in line.split("|") if p.strip().startswith(f"{name}:")), "")


_COLORS = ("cyan", "magenta", "green", "blue", "yellow", "bright_cyan", "bright_magenta")


def _color(name: str) -> str:
    return _COLORS[sum(name.encode()) % len(_COLORS)]
