"""Scripted experts, one per sim task. Each drives the robot only through whole-body targets, the
way an operator does with JoyLo; `common.rollout` runs one in-process, `expert_node` in the graph."""

from __future__ import annotations

import importlib

# task name -> "module:Class" (imported lazily: mink and each expert load only when used)
EXPERTS = {
    "bimanual_box": "brs_sim.experts.bimanual_box:BimanualBoxExpert",
    "trash_to_spot": "brs_sim.experts.trash_to_spot:TrashToSpotExpert",
    "floor_to_top_shelf": "brs_sim.experts.floor_to_top_shelf:FloorToTopShelfExpert",
}


def expert_class(task: str) -> type:
    """The expert class of `task` (ValueError for a task without one)."""
    if task not in EXPERTS:
        raise ValueError(f"no scripted expert for task {task!r}; experts: {', '.join(EXPERTS)}")
    module, _, cls = EXPERTS[task].partition(":")
    return getattr(importlib.import_module(module), cls)


def make_expert(task: str):
    """A fresh expert for `task` (ValueError for a task without one)."""
    return expert_class(task)()
