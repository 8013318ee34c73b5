"""PLDM (Sobal et al., 2025): planning with a latent dynamics model learned from reward-free data.

Encoder + action-conditioned latent predictor trained JEPA-style (multi-step latent prediction,
VICReg variance/covariance, inverse dynamics, temporal smoothness); MPPI in latent space toward
the encoded goal. See docs/pldm.md.
"""

from rl_agents.pldm.model import PLDM, PLDMConfig, pldm_loss
from rl_agents.pldm.planner import MPPI, MPPIConfig, plan_unbatched
from rl_agents.pldm.train import (PLDMAgent, SequenceSampler, TrainConfig, evaluate, load_checkpoint,
                                  save_checkpoint, train)

__all__ = ["PLDM", "PLDMConfig", "pldm_loss", "MPPI", "MPPIConfig", "plan_unbatched", "PLDMAgent",
           "SequenceSampler", "TrainConfig", "evaluate", "load_checkpoint", "save_checkpoint", "train"]
