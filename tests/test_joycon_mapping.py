"""Joy-Con: recorded SDL event stream -> state -> whole-body targets (pure, no hardware)."""

from __future__ import annotations

import numpy as np
import pytest

from brs_common import robot_spec as spec
from brs_teleop import joycon
from brs_teleop import teleop_mapping as tm

CONFIG = joycon.load_config()
B = CONFIG.buttons


def axis(i, v):
    return {"type": "JOYAXISMOTION", "joy": 0, "axis": i, "value": v}


def down(i):
    return {"type": "JOYBUTTONDOWN", "joy": 0, "button": i}


def up(i):
    return {"type": "JOYBUTTONUP", "joy": 0, "button": i}


# A small recorded log: left stick pushed up-left, right stick up, ZL pressed, home pressed.
LOG = [
    axis(0, -0.5), axis(1, -1.0),  # left stick: left + up (SDL: up is negative y)
    axis(3, -1.0),  # right stick fully up
    axis(4, 1.0),  # ZL pressed
    down(B["home"]),
    {"type": "VIDEORESIZE", "w": 1, "h": 2},  # ignored
]


def test_recorded_stream_to_state():
    s = joycon.state_from_events(LOG, CONFIG)
    assert s.ly > 0.8 and s.lx < 0 and s.ry == pytest.approx(1.0)
    assert np.hypot(s.lx, s.ly) <= 1.0 + 1e-9
    assert s.zl == 1.0 and s.zr == 0.0
    assert s.pressed("home") and not s.pressed("plus")
    s2 = joycon.state_from_events([up(B["home"]), axis(3, 0.0)], CONFIG, s)
    assert not s2.pressed("home") and s2.ry == 0.0 and s2.ly == s.ly  # incremental
    assert s.pressed("home")  # prev untouched
    msg = joycon.to_joy_msg(s, CONFIG)
    assert len(msg.axes) == 6 and msg.axes[4] == 1.0
    assert msg.buttons[CONFIG.button_names.index("home")] == 1


def test_deadzone():
    s = joycon.state_from_events([axis(0, 0.05), axis(1, -0.08), axis(2, 0.11)], CONFIG)
    assert (s.lx, s.ly, s.rx) == (0.0, 0.0, 0.0)
    s = joycon.state_from_events([axis(2, 1.0)], CONFIG)
    assert s.rx == pytest.approx(1.0)
    dz = CONFIG.deadzone
    s = joycon.state_from_events([axis(2, (1 + dz) / 2)], CONFIG)
    assert s.rx == pytest.approx(0.5)  # rescaled: halfway between deadzone and full


def test_config_driven_indices():
    # Same physical input through an SDL version with other indices -> same semantic state.
    other = joycon.config_from_dict({
        "deadzone": CONFIG.deadzone,
        "buttons": {name: 30 - i for name, i in B.items()},
        "axes": {"lx": {"index": 5, "sign": 1}, "ly": {"index": 4, "sign": 1},
                 "rx": {"index": 3, "sign": 1}, "ry": {"index": 2, "sign": -1}},
        "triggers": {"zl": {"button": 40}, "zr": {"button": 41}},
    })
    log_other = [axis(5, -0.5), axis(4, 1.0), axis(2, -1.0), down(40), down(30 - B["home"])]
    a = joycon.state_from_events(LOG, CONFIG)
    b = joycon.state_from_events(log_other, other)
    for name in ("lx", "ly", "rx", "ry", "zl", "zr"):
        assert getattr(a, name) == pytest.approx(getattr(b, name)), name
    assert a.buttons == b.buttons


def test_mapping_base_torso_grippers_estop():
    cfg = tm.MappingConfig()
    targets = tm.initial_targets({"torso_joint1": 1.7})
    s = joycon.state_from_events(LOG, CONFIG)
    out, events = tm.joycon_targets(targets, s, None, 0.02, config=cfg)
    vel = out[tm.BASE]
    assert vel[0] > 0 and vel[1] > 0  # forward + left
    assert np.all(np.abs(vel) <= np.minimum(cfg.base_max, spec.MAX_VELOCITY[tm.BASE]) + 1e-12)
    assert out[spec.ACTION_JOINTS.index("torso_joint1")] == pytest.approx(1.7 + 0.5 * 0.02)
    assert out[tm.LEFT_GRIPPER] == spec.LOWER[tm.LEFT_GRIPPER]  # ZL -> closed
    assert out[tm.RIGHT_GRIPPER] == spec.UPPER[tm.RIGHT_GRIPPER]  # ZR released -> open
    assert events == [tm.ESTOP]
    # Holding: no new e-stop edge; torso integrates and clamps at the spec limit.
    prev = s
    for _ in range(50):
        out, events = tm.joycon_targets(out, s, prev, 0.02, config=cfg)
        assert events == []
    j1 = spec.ACTION_JOINTS.index("torso_joint1")
    assert out[j1] == spec.UPPER[j1]
    # Leader arms None -> held; given -> copied.
    np.testing.assert_array_equal(out[tm.ARMS], targets[tm.ARMS])
    arms = np.linspace(-0.5, 0.5, 12)
    out2, _ = tm.joycon_targets(out, s, prev, 0.02, leader_arms=arms, config=cfg)
    np.testing.assert_allclose(out2[tm.ARMS], np.clip(arms, spec.LOWER[tm.ARMS],
                                                      spec.UPPER[tm.ARMS]))


def test_episode_and_yaw_buttons():
    s0 = joycon.state_from_events([], CONFIG)
    s1 = joycon.state_from_events([down(B["plus"]), down(B["l"])], CONFIG, s0)
    out, events = tm.joycon_targets(tm.initial_targets(), s1, s0, 0.02)
    assert events == [tm.START_EPISODE] and out[2] > 0
    s2 = joycon.state_from_events([up(B["plus"]), down(B["minus"]), down(B["capture"])],
                                  CONFIG, s1)
    _, events = tm.joycon_targets(out, s2, s1, 0.02)
    assert events == [tm.STOP_EPISODE, tm.DISCARD_EPISODE]


def test_pygame_events_replay_like_dicts():
    pygame = pytest.importorskip("pygame")
    types = {"JOYAXISMOTION": pygame.JOYAXISMOTION, "JOYBUTTONDOWN": pygame.JOYBUTTONDOWN,
             "JOYBUTTONUP": pygame.JOYBUTTONUP}
    events = [pygame.event.Event(types[e["type"]], {k: v for k, v in e.items() if k != "type"})
              for e in LOG if e["type"] in types]
    events.append(pygame.event.Event(pygame.JOYBUTTONDOWN, joy=1, button=B["plus"]))  # other pad
    a = joycon.state_from_events(LOG, CONFIG, joy=0)
    b = joycon.state_from_events(events, CONFIG, joy=0)
    assert a.buttons == b.buttons and (a.lx, a.ly, a.zl) == (b.lx, b.ly, b.zl)
