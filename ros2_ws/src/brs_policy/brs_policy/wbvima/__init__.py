"""WB-VIMA (BRS whole-body visuomotor attention policy): model, diffusion heads, normaliser, EMA,
checkpoint I/O. See docs/wbvima.md."""

from .checkpoint import CheckpointError, export_policy, load_policy, read_checkpoint, save_checkpoint
from .config import WBVIMAConfig
from .ema import EMA
from .normalizer import Normalizer
from .policy import WBVIMAPolicy, count_parameters, pick_device

__all__ = ["WBVIMAConfig", "WBVIMAPolicy", "EMA", "Normalizer", "CheckpointError", "save_checkpoint",
           "read_checkpoint", "load_policy", "export_policy", "count_parameters", "pick_device"]
