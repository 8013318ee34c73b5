"""PLDM (Sobal et al., 2025): planning with a latent dynamics model learned from reward-free data.

Encoder + action-conditioned latent predictor trained JEPA-style (multi-step latent prediction,
VICReg variance/covariance, inverse dynamics, temporal smoothness); MPPI in latent space toward
the encoded goal. See docs/pldm.md.
"""

import importlib

# name -> submodule; imported on first use (PEP 562), so `brs plan --help` and the brs CLI do not
# pay for torch. The training function is `rl_agents.pldm.train.train` (`train` here is the module)
_EXPORTS = {"PLDM": "model", "PLDMConfig": "model", "pldm_loss": "model", "MPPI": "planner",
            "MPPIConfig": "planner", "plan_unbatched": "planner", "PLDMAgent": "train",
            "SequenceSampler": "train", "TrainConfig": "train", "evaluate": "train",
            "load_checkpoint": "train", "save_checkpoint": "train"}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
