"""The one description of the BRS node graph, shared by `brs bringup` and bringup.launch.py.

`describe(use_sim, mode, **overrides)` returns the nodes to run: which packages and executables,
under which names, with which parameters (from the brs package's config/*.yaml, ROS 2 param-file
format, merged with overrides) and remappings. The embedded runner (brs_bringup/runner.py) and the
launch file (brs/launch/bringup.launch.py) only translate this list; neither knows anything about
the graph. Nodes are named by package and executable: nothing here imports the packages they run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from brs_common import topics

MODES = ("idle", "teleop", "policy", "rl", "record", "demo", "collect", "plan", "lmact")


@dataclass(frozen=True)
class LaunchArgument:
    """A bringup argument (`name:=value`) exposed by both the CLI and the launch file."""

    name: str
    default: str
    description: str
    choices: tuple[str, ...] | None = None


LAUNCH_ARGUMENTS: tuple[LaunchArgument, ...] = (
    LaunchArgument(
        "use_sim", "true",
        "true: MuJoCo sim node stands in for drivers and cameras (use_sim_time); "
        "false: real hardware drivers",
        ("true", "false"),
    ),
    LaunchArgument(
        "mode", "idle",
        "which command sources and tools run on top of the hardware layer: "
        "idle (hardware layer only), teleop (JoyLo), policy (WB-VIMA), rl (RL/planning agent), "
        "plan (PLDM base planner: PoseStamped goals -> base commands), "
        "lmact (a model imitating the expert demos in its context: the right gripper to a goal), "
        "record (teleop + episode recorder), demo (scripted sim demo with video and plot), "
        "collect (scripted task expert + episode recorder; driven by `brs collect`)",
        MODES,
    ),
    LaunchArgument(
        "teleop", "joylo",
        "the operator's input in teleop and record modes: joylo (Joy-Cons + leader arms, started "
        "here) or keyboard (no JoyLo node; run `keyboard_teleop` in a terminal of its own, and "
        "recorded episodes say source=keyboard)",
        ("joylo", "keyboard"),
    ),
    LaunchArgument(
        "viz", "false",
        "true: also start viz_bridge, the Foxglove WebSocket bridge (ws://127.0.0.1:8765; robot, "
        "frames, cloud, cameras and joints in a browser; docs/viz.md)",
        ("true", "false"),
    ),
)


@dataclass(frozen=True)
class NodeDescription:
    """One node of the graph, as `ros2 launch` would start it (launch_ros.actions.Node)."""

    package: str
    executable: str
    name: str
    parameters: dict[str, Any] = field(default_factory=dict)
    remappings: tuple[tuple[str, str], ...] = ()
    required: bool = False  # its exit ends the whole bringup (exit code 0 = finished)
    respawn: bool = False  # restart it after respawn_delay seconds when it exits
    respawn_delay: float = 1.0
    stop_timeout: float = 5.0  # seconds between SIGINT and SIGTERM at shutdown
    description: str = ""


# ---- the graph: hardware layer (by use_sim), nodes of every mode, nodes per mode ---------------

SIM = NodeDescription(
    "brs_sim", "sim_node", "sim", required=True,
    description="MuJoCo physics and cameras; serves the hardware-layer topics and /clock",
)

# Real hardware: one Dynamixel driver per chain, the wheel driver, and the merge of their joint
# states into /joint_states. Cameras come from the vendors' ROS drivers (docs/bringup.md).
DRIVERS = tuple(
    NodeDescription("brs_control", "dynamixel_driver", f"{chain}_driver", respawn=True,
                    description=f"Dynamixel {chain} chain: commands -> bus, ~/joint_states")
    for chain in ("torso", "left_arm", "right_arm")
) + (
    NodeDescription("brs_control", "wheel_driver", "wheel_driver", respawn=True,
                    description="ODrive wheel boards: cmd_vel -> wheels, /odom"),
    NodeDescription("brs_control", "joint_state_merger", "joint_state_merger",
                    description="union of the drivers' joint states on /joint_states at 100 Hz"),
)

# The hardware layer: the sim, or the base/torso/arm/gripper drivers and camera drivers.
HARDWARE_LAYER: dict[bool, tuple[NodeDescription, ...]] = {
    True: (SIM,),
    False: DRIVERS,
}

CONTROLLER = NodeDescription(
    "brs_control", "whole_body_controller", "whole_body_controller",
    description="arbitrates command sources, enforces limits, watchdog and e-stop; 100 Hz",
)

ROBOT_DESCRIPTION = NodeDescription(
    "brs_sim", "robot_description_node", topics.ROBOT_DESCRIPTION_NODE,
    description="URDF generated from the MuJoCo model, latched on /robot_description",
)

# Nodes that run in every mode on top of the hardware layer.
COMMON_NODES: tuple[NodeDescription, ...] = (CONTROLLER, ROBOT_DESCRIPTION)

# Which command source the controller executes in each mode (higher-priority sources preempt).
ACTIVE_SOURCE = {"idle": "teleop", "teleop": "teleop", "record": "teleop", "policy": "policy",
                 "rl": "rl", "demo": "demo", "collect": "teleop", "plan": "rl", "lmact": "rl"}

# Modes whose episodes are judged by the sim task's time limit (brs eval: policy, brs collect):
# there the sim reports an exceeded limit as a WARN; elsewhere (hand teleop) as an OK-level note.
EVALUATING_MODES = ("policy", "collect")

# A scripted task expert: drives the robot through the teleop command, like an operator.
EXPERT = NodeDescription(
    "brs_sim", "expert_node", "expert",
    description="scripted expert of the sim task: /joint_states, /odom, /sim/objects -> teleop command",
)

JOYLO = NodeDescription(
    "brs_teleop", "joylo", "joylo",
    description="JoyLo: Joy-Cons + leader arms -> teleop command, /joy, e-stop; haptics; 100 Hz",
)

# Point-cloud perception (config/perception.yaml, docs/perception.md). Runs in policy mode only:
# at 10 Hz it costs ~20-40 % of a core here, which the sim demo and teleop modes do not need.
PERCEPTION = NodeDescription(
    "brs_policy", "perception_node", "perception",
    description="3 RGB-D cameras + /joint_states -> fused 4096-point cloud in base_link on /perception/points",
)

# The WB-VIMA policy (config/policy.yaml, docs/wbvima.md): clouds + proprio -> action chunks on the
# policy command. Needs checkpoint:=PATH; without a usable one it exits with code 2 and says why.
POLICY = NodeDescription(
    "brs_policy", "policy_node", "policy",
    description="WB-VIMA: /perception/points + /joint_states + /odom -> 8-action chunks on /whole_body/policy/command",
)

# Episode recorder (config/recorder.yaml): saves the current episode on Ctrl-C, hence the time.
RECORDER = NodeDescription(
    "brs_teleop", "episode_recorder", "episode_recorder", stop_timeout=30.0,
    description="synchronised frames -> HDF5 episodes; ~/start, ~/stop, ~/discard, Joy-Con +/-/capture",
)

# The PLDM base planner (config/planner.yaml, docs/base_planner.md): goal poses on /planner/goal ->
# base-only commands on the rl command source. Needs checkpoint:=PATH (else exit code 2).
PLANNER = NodeDescription(
    "rl_agents", "planner_node", "planner",
    description="PLDM latent MPPI: /planner/goal + /odom -> base velocities on /whole_body/rl/command",
)

# A trained MR.Q policy on a ROS task (config/rl.yaml, docs/mrq.md "MR.Q in the ROS graph"): /joint_states +
# /odom + goal -> whole-body commands on /whole_body/rl/command. Needs checkpoint:=PATH (exit 2 without).
RL_AGENT = NodeDescription(
    "rl_agents", "rl_agent_node", "rl_agent",
    description="MR.Q policy: /joint_states + /odom + ~/goal -> /whole_body/rl/command at the task rate",
)

# LMAct in-context imitation (config/rl.yaml, docs/lmact.md "On the robot"): a model (nearest-neighbour
# baseline, an OpenAI-compatible endpoint, a local HF model) with expert demos in its context ->
# whole-body commands on /whole_body/rl/command. A bad demo file or model: exit code 2.
LMACT_AGENT = NodeDescription(
    "rl_agents", "lmact_agent_node", "lmact_agent",
    description="LMAct: demos in context + /joint_states + /odom + ~/goal -> /whole_body/rl/command, one model call per action",
)

# The Foxglove WebSocket bridge (config/viz.yaml, docs/viz.md), with viz:=true in any mode.
VIZ = NodeDescription(
    "brs", "viz_bridge", "viz_bridge",
    description="Foxglove WebSocket bridge: /tf (URDF), joints, command, odom, cloud, cameras -> ws://:8765",
)

MODE_NODES: dict[str, tuple[NodeDescription, ...]] = {
    "idle": (),
    "teleop": (JOYLO,),
    "policy": (PERCEPTION, POLICY),
    "rl": (RL_AGENT,),
    "record": (JOYLO, RECORDER),
    "collect": (EXPERT, RECORDER),
    "plan": (PLANNER,),
    "lmact": (LMACT_AGENT,),
    "demo": (
        NodeDescription(
            "brs", "demo_source", "demo_source", required=True,
            description="scripted whole-body motion (~14 s); exits 0 when done",
        ),
        NodeDescription(
            "brs", "demo_recorder", "demo_recorder", stop_timeout=20.0,
            description="records head camera + joint tracking; writes mp4/png on shutdown",
        ),
    ),
}


# ---- parameters --------------------------------------------------------------------------------

CONFIG_PACKAGE = "brs"  # the parameter files stay with the launch file in the top package


def default_config_dir() -> Path:
    """`<share of brs>/config`: the brs source tree (editable install) or the ament index
    (`share/brs/config`, installed by brs's setup.py). Found by package name, not imported."""
    from brs_common.paths import config_dir

    return config_dir(CONFIG_PACKAGE)


def load_parameters(config_dir: Path | str | None = None) -> dict[str, dict[str, Any]]:
    """Parameters per node name from every `*.yaml` in `config_dir` (ROS 2 param-file format).

    Nested dictionaries under `ros__parameters` become dotted names, as in ROS.
    """
    directory = Path(config_dir) if config_dir is not None else default_config_dir()
    params: dict[str, dict[str, Any]] = {}
    owner: dict[str, Path] = {}
    for path in sorted(directory.glob("*.yaml")):
        content = yaml.safe_load(path.read_text()) or {}
        if not isinstance(content, dict):
            raise ValueError(f"{path}: expected a mapping of node names to {{ros__parameters: ...}}")
        for node, body in content.items():
            name = str(node).lstrip("/")
            if not isinstance(body, dict) or set(body) != {"ros__parameters"}:
                raise ValueError(f"{path}: node {node!r} must contain exactly 'ros__parameters'")
            if name in owner:
                raise ValueError(f"{path}: parameters of node {name!r} already come from {owner[name]}")
            owner[name] = path
            params[name] = _flatten(body["ros__parameters"] or {})
    return params


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def parse_bool(name: str, value: bool | str) -> bool:
    """Launch-style booleans: true/false (also 1/0, yes/no, on/off), case-insensitive."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"{name} must be true or false, got {value!r}")


def _coerce(key: str, default: Any, value: Any) -> Any:
    """Convert an override (a typed value, or a launch-argument string) to the default's ROS type."""
    if isinstance(value, str) and not isinstance(default, str):
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ValueError(f"{key}: cannot parse {value!r}: {exc}") from None
    expected = type(default).__name__
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, list):
        ok = isinstance(value, list)
        if ok and not value:
            # ROS has no empty untyped array: a string list's "none" is [""] (the nodes skip empty
            # names); other lists need an element
            if default and isinstance(default[0], str):
                return [""]
            raise ValueError(f"{key}: an empty list cannot be a ROS parameter (its element type is "
                             f"unknown); give at least one element (default {default!r})")
        if ok and default:
            value = [_coerce(key, default[0], v) for v in value]
        expected = f"list of {type(default[0]).__name__}" if default else "list"
    else:
        ok = False
    if not ok:
        raise ValueError(f"{key} expects a {expected} (default {default!r}), got {value!r}")
    return value


# ---- the description ---------------------------------------------------------------------------

def describe(use_sim: bool | str = True, mode: str = "idle", teleop: str = "joylo", viz: bool | str = False,
             **overrides: Any) -> list[NodeDescription]:
    """The nodes to run for `use_sim` and `mode`, with config parameters merged with `overrides`.

    `teleop="keyboard"` leaves JoyLo out (keyboard_teleop needs a terminal of its own) and labels
    recorded episodes `source=keyboard`.

    An override `key=value` sets parameter `key` on every node of this graph that declares it in
    config/*.yaml, `node.key=value` only on that node; string values are parsed like launch
    arguments (`"3.0"`, `"true"`, `"[1, 2]"`).
    Raises ValueError for an unknown mode, an unknown parameter or a value of the wrong type.
    """
    use_sim = parse_bool("use_sim", use_sim)
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; valid modes: {', '.join(MODES)}")
    if teleop not in ("joylo", "keyboard"):
        raise ValueError(f"unknown teleop {teleop!r}; valid values: joylo, keyboard")
    templates = HARDWARE_LAYER[use_sim] + COMMON_NODES + MODE_NODES[mode]
    if teleop == "keyboard":
        templates = tuple(t for t in templates if t is not JOYLO)
    if parse_bool("viz", viz):
        templates += (VIZ,)
    config = load_parameters()
    nodes = []
    for template in templates:
        params = {**template.parameters, **config.get(template.name, {})}
        if template is CONTROLLER:
            params["active_source"] = ACTIVE_SOURCE[mode]
        if template is SIM:
            params["time_limit_warn"] = mode in EVALUATING_MODES
        if template is RECORDER and mode == "record" and teleop == "keyboard":
            params["source"] = "keyboard"
        params["use_sim_time"] = use_sim
        nodes.append(replace(template, parameters=params))
    names = [n.name for n in nodes]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate node names in the graph: {names}")

    for key, value in overrides.items():
        if key == "use_sim_time":
            raise ValueError("use_sim_time follows use_sim; set use_sim:=true|false instead")
        given = key
        node_name, _, node_key = key.partition(".")
        if any(n.name == node_name for n in nodes) and node_key:
            targets, key = [n for n in nodes if n.name == node_name and node_key in n.parameters], node_key
        else:
            targets = [n for n in nodes if key in n.parameters]
        if not targets:
            known = sorted({k for n in nodes for k in n.parameters} - {"use_sim_time"})
            raise ValueError(
                f"unknown argument {given!r}: no node of this graph (use_sim={str(use_sim).lower()}, "
                f"mode={mode}) has such a parameter; bringup arguments: "
                f"{', '.join(a.name for a in LAUNCH_ARGUMENTS)}; parameters: "
                f"{', '.join(known) or '(none)'}"
            )
        for node in targets:
            node.parameters[key] = _coerce(f"{node.name}.{key}", node.parameters[key], value)
    return nodes


def parse_launch_arguments(items: list[str]) -> dict[str, str]:
    """['use_sim:=true', 'speed_factor:=3'] -> {'use_sim': 'true', 'speed_factor': '3'}."""
    arguments = {}
    for item in items:
        key, sep, value = item.partition(":=")
        if not sep or not key:
            k, eq, v = item.partition("=")
            hint = f" (did you mean {k.rstrip(':')}:={v}?)" if eq and k.rstrip(":") else ""
            raise ValueError(f"expected key:=value, got {item!r}{hint}")
        arguments[key] = value
    return arguments


def describe_from_arguments(arguments: Mapping[str, str]) -> list[NodeDescription]:
    """`describe` from launch-style string arguments: LAUNCH_ARGUMENTS (defaults filled in,
    choices enforced as `ros2 launch` does), everything else is a parameter override."""
    core = {a.name: a.default for a in LAUNCH_ARGUMENTS}
    overrides = {}
    for key, value in arguments.items():
        (core if key in core else overrides)[key] = value
    for a in LAUNCH_ARGUMENTS:
        if a.choices and core[a.name] not in a.choices:
            raise ValueError(f"unknown {a.name} {core[a.name]!r}; valid values: {', '.join(a.choices)}")
    return describe(**core, **overrides)
