"""Training and inference entry points: UnlockTrainer (OPLL + ADCL training), UnlockPredictor."""

from .predictor import UnlockPredictor
from .trainer import UnlockTrainer

__all__ = ["UnlockTrainer", "UnlockPredictor"]
