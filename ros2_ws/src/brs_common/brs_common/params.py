"""Node parameters declared with a description (and a range where one applies), so that
`ros2 param describe <node> <name>` explains every parameter of the stack.

    p = params.declare(self, [
        ("rate_hz", 50.0, "publish rate, Hz"),
        ("compression_level", 4, "gzip level of the images, 0-9", (0, 9)),
    ])
    p["rate_hz"]  # the value: the override (-p rate_hz:=...) or the default

A row is `(name, default, description)` or `(name, default, description, (lo, hi))`. The
default sets the type as in `Node.declare_parameter`: a value (the parameter is statically
typed by it), or a `Parameter.Type` (typed, without a value: its value is None until one is
given). A range (inclusive) becomes a FloatingPointRange for a float default and an
IntegerRange for an int default, shown by `ros2 param describe`; `ros2 param set` refuses a value
outside it. Give one only where the node itself refuses the values outside it: an override outside
the range at startup is declared without the range and left to the node's check, so the node
reports it (exit code 2) with its own message.

`dynamic` names parameters declared with dynamic typing, e.g. a float parameter that also takes
an int (`rate_hz:=100`); the caller checks their values (rclpy applies no range to them).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterValueException

# rclpy declares these itself: not ours to describe
RCLPY_PARAMETERS = ("use_sim_time", "start_type_description_service")


def descriptor(name: str, default: Any, description: str, value_range: tuple | None = None,
               dynamic: bool = False) -> ParameterDescriptor:
    """The ParameterDescriptor of one row (see the module doc)."""
    if not description or not description.strip():
        raise ValueError(f"parameter {name}: no description")
    desc = ParameterDescriptor(description=description, dynamic_typing=dynamic)
    if value_range is None:
        return desc
    lo, hi = value_range
    if dynamic:
        raise ValueError(f"parameter {name}: a range needs a statically typed parameter")
    if isinstance(default, float):
        desc.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi))]
    elif isinstance(default, int) and not isinstance(default, bool):
        desc.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi))]
    else:
        raise ValueError(f"parameter {name}: a range needs a float or int default, got {default!r}")
    return desc


def declare(node, rows: Iterable[tuple], *, dynamic: Collection[str] = ()) -> dict[str, Any]:
    """Declare `rows` on `node` with descriptors; returns name -> value (None: typed, unset)."""
    rows = list(rows)
    unknown = set(dynamic) - {row[0] for row in rows}
    if unknown:
        raise ValueError(f"dynamic names no declared parameter: {sorted(unknown)}")
    values = {}
    for row in rows:
        if len(row) not in (3, 4):
            raise ValueError(f"parameter row {row!r}: expected (name, default, description[, (lo, hi)])")
        name, default, description = row[:3]
        value_range = row[3] if len(row) == 4 else None
        desc = descriptor(name, default, description, value_range, name in dynamic)
        try:
            values[name] = node.declare_parameter(name, default, desc).value
        except InvalidParameterValueException:
            if value_range is None:
                raise
            # An override outside the range: declared without it, so that the node's own check
            # (every range mirrors one) refuses the value with its own message.
            values[name] = node.declare_parameter(name, default, descriptor(name, default, description)).value
    return values
