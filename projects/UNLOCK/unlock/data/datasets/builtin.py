"""Registers every UNLOCK dataset under ``$DETECTRON2_DATASETS`` (default ``datasets``) at import,
like ``detectron2.data.datasets.builtin``. Registration is lazy: a dataset that is not on disk
only fails when it is loaded, with an error naming the missing folder (see datasets/README.md).
"""

import os
from typing import Optional

from .amodal_synth_drive import register_amodal_synth_drive
from .blendpass import register_blendpass
from .kitti360_aps import register_kitti360_aps
from .synthetic import register_synthetic

__all__ = ["register_all_unlock"]


def register_all_unlock(root: Optional[str] = None) -> None:
    """Registers BlendPASS (K2B/A2B, val/train), KITTI-360-APS, AmodalSynthDrive and the
    synthetic splits under ``root`` (default ``$DETECTRON2_DATASETS`` or ``datasets``).
    Idempotent: names already registered are skipped."""
    if root is None:
        root = os.getenv("DETECTRON2_DATASETS", "datasets")
    register_blendpass(root)
    register_kitti360_aps(root)
    register_amodal_synth_drive(root)
    register_synthetic(root)


# Guarded like detectron2's builtin: only when imported as part of the package.
if __name__.endswith(".builtin"):
    register_all_unlock()
