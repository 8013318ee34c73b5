"""Joy-Con input through pygame/SDL2 joystick events.

The pure part (`load_config`, `state_from_events`, `to_joy_msg`) replays a recorded event log
(dicts or pygame events) into a `JoyConState`; `JoyConReader` is the thin live layer that opens the
combined L+R Joy-Con joystick and feeds its events through the same function.
Button and axis indices come from `config/joycon_sdl2.yaml` since they differ across SDL versions.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

DEFAULT_CONFIG = Path(__file__).parent / "config" / "joycon_sdl2.yaml"
STICKS = ("lx", "ly", "rx", "ry")
TRIGGERS = ("zl", "zr")
# Order of sensor_msgs/Joy axes published by `to_joy_msg`.
JOY_AXES = STICKS + TRIGGERS

AXIS, BUTTON_DOWN, BUTTON_UP = "JOYAXISMOTION", "JOYBUTTONDOWN", "JOYBUTTONUP"


@dataclass(frozen=True)
class JoyConConfig:
    buttons: dict[str, int]
    axes: dict[str, tuple[int, float]]  # name -> (index, sign)
    triggers: dict[str, tuple[str, int]]  # name -> ('axis' | 'button', index)
    deadzone: float = 0.12
    device_name_contains: str = "Joy-Con"

    @property
    def button_names(self) -> tuple[str, ...]:
        """Button order of the published sensor_msgs/Joy (the config's order)."""
        return tuple(self.buttons)


def config_from_dict(data: dict) -> JoyConConfig:
    buttons = {str(k): int(v) for k, v in (data.get("buttons") or {}).items()}
    axes = {}
    for name in STICKS:
        spec = (data.get("axes") or {}).get(name)
        if spec is None:
            raise ValueError(f"joycon config: axis {name!r} missing")
        if isinstance(spec, dict):
            axes[name] = (int(spec["index"]), float(spec.get("sign", 1.0)))
        else:
            axes[name] = (int(spec), 1.0)
    triggers = {}
    for name in TRIGGERS:
        spec = (data.get("triggers") or {}).get(name)
        if spec is None:
            raise ValueError(f"joycon config: trigger {name!r} missing")
        if "axis" in spec:
            triggers[name] = ("axis", int(spec["axis"]))
        elif "button" in spec:
            triggers[name] = ("button", int(spec["button"]))
        else:
            raise ValueError(f"joycon config: trigger {name!r} needs 'axis' or 'button'")
    deadzone = float(data.get("deadzone", 0.12))
    if not 0.0 <= deadzone < 1.0:
        raise ValueError(f"joycon config: deadzone {deadzone} not in [0, 1)")
    return JoyConConfig(buttons, axes, triggers, deadzone,
                        str(data.get("device_name_contains", "Joy-Con")))


PRESS_ALIASES = {"+": "plus", "-": "minus"}


def press_button(name: str, config: JoyConConfig) -> tuple[str, int]:
    """(button name, SDL index) of a button named on the command line (`brs joylo press Y`, "+",
    "plus"; joylo's ~/press); ValueError naming the config's buttons when it has no such one."""
    key = str(name).strip().lower()
    key = PRESS_ALIASES.get(key, key)
    if key not in config.buttons:
        raise ValueError(f"unknown button {name!r}; buttons: {', '.join(config.button_names)} "
                         f"(+ and - for plus and minus)")
    return key, config.buttons[key]


def load_config(path: str | Path | None = None) -> JoyConConfig:
    with open(path or DEFAULT_CONFIG) as f:
        return config_from_dict(yaml.safe_load(f) or {})


@dataclass
class JoyConState:
    """Semantic Joy-Con state: sticks after deadzone + rescale (up / right positive, in [-1, 1]),
    triggers in [0, 1], named buttons; plus the raw indexed values the next update starts from."""

    lx: float = 0.0
    ly: float = 0.0
    rx: float = 0.0
    ry: float = 0.0
    zl: float = 0.0
    zr: float = 0.0
    buttons: dict[str, bool] = field(default_factory=dict)
    raw_axes: dict[int, float] = field(default_factory=dict)
    raw_buttons: dict[int, bool] = field(default_factory=dict)

    def pressed(self, name: str) -> bool:
        return bool(self.buttons.get(name, False))


def apply_deadzone(x: float, y: float, deadzone: float) -> tuple[float, float]:
    """Radial deadzone; the magnitude from `deadzone` to 1 is rescaled to 0..1 (clipped at 1)."""
    mag = math.hypot(x, y)
    if mag <= deadzone or mag == 0.0:
        return 0.0, 0.0
    scale = (min(mag, 1.0) - deadzone) / (1.0 - deadzone) / mag
    return x * scale, y * scale


def _event_fields(event) -> tuple[str, dict]:
    """(type name, fields) of a dict event or a pygame event."""
    if isinstance(event, dict):
        etype, fields = event.get("type"), event
    else:
        etype, fields = getattr(event, "type", None), getattr(event, "dict", {})
    if not isinstance(etype, str):
        import pygame  # only a live pygame event has an int type

        etype = {pygame.JOYAXISMOTION: AXIS, pygame.JOYBUTTONDOWN: BUTTON_DOWN,
                 pygame.JOYBUTTONUP: BUTTON_UP}.get(etype, str(etype))
    return etype, fields


def event_dict(event) -> dict:
    """A joystick event (pygame or dict) as a JSON-able dict: type name, joy, axis/button, value."""
    etype, f = _event_fields(event)
    out: dict = {"type": etype}
    who = f.get("instance_id", f.get("joy"))
    if who is not None:
        out["joy"] = int(who)
    for key in ("axis", "button"):
        if key in f:
            out[key] = int(f[key])
    if "value" in f:
        out["value"] = float(f["value"])
    return out


def state_from_events(events, config: JoyConConfig, prev: JoyConState | None = None,
                      joy: int | None = None) -> JoyConState:
    """Fold joystick events into a new state (prev is not modified). Other event types are
    ignored; `joy` set -> events of other joystick instances are ignored too."""
    raw_axes = dict(prev.raw_axes) if prev else {}
    raw_buttons = dict(prev.raw_buttons) if prev else {}
    for event in events:
        etype, f = _event_fields(event)
        if joy is not None:
            who = f.get("instance_id", f.get("joy"))
            if who is not None and int(who) != joy:
                continue
        if etype == AXIS:
            raw_axes[int(f["axis"])] = max(-1.0, min(1.0, float(f["value"])))
        elif etype == BUTTON_DOWN:
            raw_buttons[int(f["button"])] = True
        elif etype == BUTTON_UP:
            raw_buttons[int(f["button"])] = False
    return derive_state(raw_axes, raw_buttons, config)


def derive_state(raw_axes: dict[int, float], raw_buttons: dict[int, bool],
                 config: JoyConConfig) -> JoyConState:
    sticks = {}
    for name in STICKS:
        index, sign = config.axes[name]
        sticks[name] = sign * raw_axes.get(index, 0.0)
    lx, ly = apply_deadzone(sticks["lx"], sticks["ly"], config.deadzone)
    rx, ry = apply_deadzone(sticks["rx"], sticks["ry"], config.deadzone)
    trig = {}
    for name in TRIGGERS:
        kind, index = config.triggers[name]
        if kind == "axis":  # -1 released .. +1 pressed; never touched -> released
            trig[name] = (raw_axes.get(index, -1.0) + 1.0) / 2.0
        else:
            trig[name] = 1.0 if raw_buttons.get(index, False) else 0.0
    buttons = {name: bool(raw_buttons.get(index, False)) for name, index in config.buttons.items()}
    return JoyConState(lx, ly, rx, ry, trig["zl"], trig["zr"], buttons, raw_axes, raw_buttons)


def to_joy_msg(state: JoyConState, config: JoyConConfig | None = None, stamp=None):
    """sensor_msgs/Joy: axes (lx, ly, rx, ry, zl, zr), buttons in the config's button order
    (sorted by name when no config is given)."""
    from sensor_msgs.msg import Joy

    from brs_common.convert import to_stamp

    msg = Joy()
    if stamp is not None:
        msg.header.stamp = to_stamp(stamp)
    msg.axes = [float(getattr(state, name)) for name in JOY_AXES]
    names = config.button_names if config else tuple(sorted(state.buttons))
    msg.buttons = [int(state.pressed(n)) for n in names]
    return msg


class JoyConReader:
    """Live reader: opens the combined Joy-Con joystick through pygame and polls its events."""

    def __init__(self, config: JoyConConfig | None = None):
        self.config = config or load_config()
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        os.environ["SDL_JOYSTICK_HIDAPI_COMBINE_JOY_CONS"] = "1"  # must precede SDL init
        os.environ.setdefault("SDL_JOYSTICK_ALLOW_BACKGROUND_EVENTS", "1")
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        import pygame

        self._pygame = pygame
        pygame.display.init()  # the event queue needs the video subsystem (dummy driver)
        pygame.joystick.init()
        self.joystick = None
        want = self.config.device_name_contains.lower()
        for i in range(pygame.joystick.get_count()):
            js = pygame.joystick.Joystick(i)
            if want in js.get_name().lower():
                self.joystick = js
                break
        if self.joystick is None:
            names = [pygame.joystick.Joystick(i).get_name()
                     for i in range(pygame.joystick.get_count())]
            raise RuntimeError(f"no joystick whose name contains {want!r}; found {names}")
        self.state = JoyConState()
        self.connected = True

    def poll(self) -> JoyConState:
        return self.poll_events()[0]

    def poll_events(self) -> tuple[JoyConState, list[dict]]:
        """New state plus this joystick's events as dicts (what a log stores and replays).
        Drains the whole SDL queue (so nothing piles up); the joystick's removal clears
        `connected`."""
        pg = self._pygame
        joy = self.joystick.get_instance_id()
        events = []
        for e in pg.event.get():
            if e.type == pg.JOYDEVICEREMOVED and e.dict.get("instance_id") == joy:
                self.connected = False
            elif e.type in (pg.JOYAXISMOTION, pg.JOYBUTTONDOWN, pg.JOYBUTTONUP):
                d = event_dict(e)
                if d.get("joy", joy) == joy:
                    events.append(d)
        self.state = state_from_events(events, self.config, self.state)
        return self.state, events

    def close(self):
        self._pygame.joystick.quit()
        self._pygame.display.quit()
