"""Wheel driver under bus faults: retries, safe stop, reconnect, no stale command after recovery."""

from __future__ import annotations

import math
import os
import signal
import time

import pytest
from std_srvs.srv import Trigger

from brs_control.odrive.protocol import AXIS_ERROR_MOTOR_FAILED, AXIS_ERROR_WATCHDOG_TIMER_EXPIRED, AxisState
from rosutil import wait_for
from test_wheel_driver import Rig, expected_turns, rig  # noqa: F401  (rig is a fixture)

OK, WARN, ERROR = 0, 1, 2
FORWARD = (0.2, 0.0, 0.0)


def _moving(rig, twist=FORWARD):
    return rig.wheels_at(expected_turns(twist), 1e-5)


def _stopped(rig):
    return rig.wheels_at([0.0, 0.0, 0.0], 0.0)


def _arm_time(emu, since: float) -> float | None:
    """When the board was last put into closed loop after `since` (from its command log)."""
    arms = [r.t for r in emu.odrive.commands("w axis0.requested_state 8") if r.t >= since]
    return arms[-1] if arms else None


def test_transient_faults_are_retried_without_stopping(rig):
    rig.start_stream(FORWARD)
    wait_for(lambda: _moving(rig), 2, message="moving")
    t0 = time.monotonic()
    a, b = rig.a, rig.b
    injections = [
        (lambda: a.device.drop_next(1), lambda: a.device.stats["dropped"] >= 1),
        (lambda: a.odrive.corrupt_next(1), lambda: a.odrive.stats["corrupted"] >= 1),
        (lambda: b.device.corrupt_next(1), lambda: b.device.stats["corrupted"] >= 1),
        (lambda: a.device.garbage_next(1, size=24), lambda: a.device.stats["garbage"] >= 1),
        (lambda: b.device.garbage_next(1, size=8, replace=True), lambda: b.device.stats["garbage"] >= 1),
        (lambda: a.device.inject_garbage(32), lambda: a.device.stats["garbage"] >= 2),
    ]
    for inject, consumed in injections:
        inject()
        wait_for(consumed, 2, message="fault consumed")
    n = len(rig.commands(2, t0))
    wait_for(lambda: len(rig.commands(2, t0)) > n + 10, 2, message="10 more cycles")
    # every fault was absorbed by a retry inside one cycle: the wheels never stopped
    for w in (1, 2):
        assert all(v != 0.0 for _, v in rig.commands(w, t0)), f"wheel {w} stopped during faults"
    wait_for(lambda: int(rig.value(rig.board(a), "retries", 0)) >= 3
             and int(rig.value(rig.board(b), "retries", 0)) >= 2, 5, message="retries on /diagnostics")
    assert int(rig.value(rig.board(a), "timeouts")) >= 1
    assert int(rig.value(rig.board(a), "checksum_errors")) >= 1
    assert int(rig.value(rig.board(a), "malformed")) + int(rig.value(rig.board(b), "malformed")) >= 1
    for emu in (a, b):
        st = rig.status(rig.board(emu))
        assert st.level[0] != ERROR, f"{st.message}; emulator stats {emu.device.stats} {emu.odrive.stats}"
    assert rig.alive()


def test_silent_board_stops_the_base_then_recovers(rig):
    rig.start_stream(FORWARD)
    wait_for(lambda: _moving(rig), 2, message="moving")
    t_mute = time.monotonic()
    rig.b.device.mute(True)  # board B stops answering (cable half out, firmware hang...)
    # the healthy board A is stopped too: one undriven omni wheel would make the base skid
    wait_for(lambda: rig.last_command(1) == 0.0, 2, message="board A zeroed")
    t_zero = next(t for t, v in rig.commands(1, t_mute) if v == 0.0)
    print(f"base stopped {1e3 * (t_zero - t_mute):.0f} ms after board B went silent")
    assert t_zero - t_mute < 3 * 0.03 + 0.05  # (retries + 1) * serial_timeout + a cycle or so
    wait_for(lambda: rig.level(rig.board(rig.b)) == ERROR, 3, message="board B ERROR")
    wait_for(lambda: rig.level(": base") == ERROR, 3, message="base ERROR")
    assert rig.alive()
    # it answers again: reconnect, re-arm, then the (still streaming) commands drive again
    t_back = time.monotonic()
    rig.b.device.mute(False)
    wait_for(lambda: _moving(rig), 5, message="moving again")
    t_arm = _arm_time(rig.b, t_back)
    assert t_arm is not None
    first_moving = min(t for w in (1, 2) for t, v in rig.commands(w, t_zero) if v != 0.0)
    assert first_moving > t_arm  # from the stop on, nothing but zeros until B was re-armed
    wait_for(lambda: rig.level(rig.board(rig.b)) == OK and rig.level(": base") == OK, 3,
             message="diagnostics OK again")
    assert int(rig.value(rig.board(rig.b), "failed_cycles")) >= 1


@pytest.fixture
def slow_watchdog_rig(ros, tmp_path):
    # a long cmd_vel timeout, so only the recovery rule can stop the old command from running
    r = Rig(ros, tmp_path, cmd_vel_timeout=5.0)
    try:
        yield r
    finally:
        r.close()


def test_vanish_and_come_back_executes_no_stale_command(slow_watchdog_rig, ros):
    rig = slow_watchdog_rig
    rig.send(*FORWARD)  # one command, valid for 5 s
    wait_for(lambda: _moving(rig), 2, message="moving")
    wait_for(lambda: rig.b.odrive.snapshot()[0]["vel"] > 0.9 * expected_turns(FORWARD)[2], 2,
             message="wheel 2 up to speed")
    t_gone = time.monotonic()
    rig.b.vanish()  # USB unplugged
    wait_for(lambda: rig.last_command(1) == 0.0, 2, message="board A zeroed")
    t_zero = next(t for t, v in rig.commands(1, t_gone) if v == 0.0)
    assert t_zero - t_gone < 0.05
    wait_for(lambda: rig.level(rig.board(rig.b)) == ERROR, 3, message="board B ERROR")
    assert "port" in rig.status(rig.board(rig.b)).message or "connect" in rig.status(rig.board(rig.b)).message
    assert rig.alive()
    t_back = time.monotonic()
    rig.b.reappear()  # plugged back in; the board rebooted (encoder counts restart at 0)
    wait_for(rig.armed, 5, message="board B re-armed")
    t_arm = _arm_time(rig.b, t_back)
    # the old command is still younger than cmd_vel_timeout, yet it must not run again
    wait_for(lambda: len(rig.commands(2, t_arm)) >= 30, 3, message="30 cycles after the reconnect")
    for w in range(2):
        assert all(v == 0.0 for _, v in rig.commands(w, t_zero)), f"wheel {w} got a stale command"
    assert all(v == 0.0 for _, v in rig.commands(2, t_back)), "wheel 2 got a stale command"
    wait_for(lambda: rig.level(": base") == OK, 3, message="base OK")
    assert "waiting" in rig.status(": base").message
    # a fresh command runs
    rig.send(0.0, 0.1, 0.0)
    wait_for(lambda: _moving(rig, (0.0, 0.1, 0.0)), 2, message="fresh command executed")
    rig.send(0.0)
    # odometry did not jump when the rebooted board's encoder restarted at zero
    odom = ros.last("/odom").pose.pose
    assert abs(odom.orientation.z) < 0.01 and odom.position.x < 0.2 * (t_gone - t_back + 10)
    assert int(rig.value(rig.board(rig.b), "reconnects", 0)) >= 1


def test_axis_faults_rearm_or_latch_until_reset(rig, ros):
    axis = rig.a.odrive.axes[0]
    # (1) the board watchdog expired (e.g. a long USB stall): re-armed automatically
    with rig.a.odrive.lock:
        axis.state, axis.error = AxisState.IDLE, AXIS_ERROR_WATCHDOG_TIMER_EXPIRED
    t_fault = time.monotonic()
    wait_for(lambda: _arm_time(rig.a, t_fault) is not None and rig.armed(), 3, message="re-armed")
    wait_for(lambda: int(rig.value(rig.board(rig.a), "watchdog_recoveries", 0)) >= 1, 3,
             message="recovery counted")
    assert rig.a.odrive.snapshot()[0]["error"] == 0
    # (2) a real motor fault latches: base stopped, ERROR until ~/reset
    rig.start_stream(FORWARD)
    wait_for(lambda: _moving(rig), 2, message="moving")
    with rig.a.odrive.lock:
        axis.state, axis.error = AxisState.IDLE, AXIS_ERROR_MOTOR_FAILED
    t_fault = time.monotonic()
    wait_for(lambda: _stopped(rig), 2, message="stopped on the motor fault")
    wait_for(lambda: rig.level(rig.board(rig.a)) == ERROR, 3, message="board A ERROR")
    assert "latched" in rig.status(rig.board(rig.a)).message
    n = len(rig.commands(2, t_fault))
    wait_for(lambda: len(rig.commands(2, t_fault)) >= n + 20, 3, message="20 more cycles")
    assert rig.a.odrive.snapshot()[0]["state"] == AxisState.IDLE  # not re-armed on its own
    assert _stopped(rig)
    rig.stop_stream()
    response = ros.call(Trigger, "/wheel_driver/reset", Trigger.Request())
    assert response.success
    wait_for(rig.armed, 3, message="re-armed after ~/reset")
    wait_for(lambda: rig.level(rig.board(rig.a)) == OK, 3, message="board A OK")
    # a fresh stream after the reset drives again (one command could race the reset's re-arm)
    wait_for(lambda: (rig.send(*FORWARD), _moving(rig))[1], 5, interval=0.02, message="moving after reset")
    rig.send(0.0)
    assert rig.alive() and not math.isnan(ros.last("/odom").pose.pose.position.x)


def test_killed_driver_is_stopped_by_the_board_watchdog(rig):
    rig.start_stream(FORWARD)
    wait_for(lambda: _moving(rig), 2, message="moving")
    wait_for(lambda: rig.b.odrive.snapshot()[0]["vel"] > 0.9 * expected_turns(FORWARD)[2], 2,
             message="wheel 2 up to speed")
    t_kill = time.monotonic()
    os.killpg(rig.proc.proc.pid, signal.SIGKILL)  # no shutdown code runs
    rig.proc.proc.wait()
    wait_for(lambda: all(s["state"] == AxisState.IDLE for e in (rig.a, rig.b) for s in e.odrive.snapshot()),
             2, message="board watchdog idles every axis")
    for emu in (rig.a, rig.b):
        for ax in emu.odrive.axes:
            assert ax.error & AXIS_ERROR_WATCHDOG_TIMER_EXPIRED
            t_idle = ax.history[-1][0]
            assert t_idle - t_kill <= 0.25 + 0.03
