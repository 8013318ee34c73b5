"""MR.Q (Fujimoto et al., 2025, "Towards General-Purpose Model-Free RL"): agent, replay buffer, networks."""

from .agent import MRQAgent, multi_step_return
from .buffer import ReplayBuffer
from .config import MRQConfig
from .two_hot import TwoHot, symexp, symlog

__all__ = ["MRQAgent", "MRQConfig", "ReplayBuffer", "TwoHot", "multi_step_return", "symexp", "symlog"]
