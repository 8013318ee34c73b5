"""MR.Q (Fujimoto et al., 2025, "Towards General-Purpose Model-Free RL"): agent, replay buffer, networks."""

import importlib

# name -> submodule; imported on first use (PEP 562), so `brs rl --help` and the brs CLI do not
# pay for torch
_EXPORTS = {"MRQAgent": "agent", "export_policy": "agent", "multi_step_return": "agent", "ReplayBuffer": "buffer",
            "MRQConfig": "config", "TwoHot": "two_hot", "symexp": "two_hot", "symlog": "two_hot"}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
