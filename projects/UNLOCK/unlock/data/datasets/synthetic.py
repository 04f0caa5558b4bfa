"""Registration of the procedural synthetic benchmark (generator: ``unlock.data.synthetic``,
``tools/make_synthetic_dataset.py``). It is written in the real datasets' layouts, so the real
loaders read it: the KITTI-360-APS loader for the source split and the BlendPASS loader for the
target splits, only with other roots.

Under ``<root>/unlock_synthetic/`` (or ``<root>/<prefix>/``): ``KITTI-360-APS/`` (pinhole,
labelled, K2B: train and the held-out val), ``BlendPASS/`` (panoramas: unlabelled train +
labelled val, K2B) and optionally ``AmodalSynthDrive/`` (native layout, A2B).
"""

import os
from typing import Dict

from .amodal_synth_drive import register_amodal_synth_drive_split
from .blendpass import register_blendpass_splits
from .kitti360_aps import register_kitti360_aps_split

__all__ = ["synthetic_split_names", "register_synthetic"]


def synthetic_split_names(prefix: str = "unlock_synthetic") -> Dict[str, str]:
    """Registered names of the synthetic splits for ``prefix``."""
    return {
        "source_train": f"{prefix}_source_train",
        "source_val": f"{prefix}_source_val",
        "target_train": f"{prefix}_target_train",
        "target_test": f"{prefix}_target_test",
        "asd_train": f"{prefix}_asd_train",
    }


def register_synthetic(root: str, prefix: str = "unlock_synthetic") -> Dict[str, str]:
    """Registers the synthetic splits found under ``<root>/<prefix>`` (lazy, idempotent).

    Args:
        root: dataset root (``$DETECTRON2_DATASETS``) or a temporary folder in tests.
        prefix: folder name under ``root`` and name prefix of the splits; tests pass a unique one.
    Returns:
        split key -> registered name (see ``synthetic_split_names``).
    """
    base = os.path.join(root, prefix)
    names = synthetic_split_names(prefix)
    register_kitti360_aps_split(names["source_train"], os.path.join(base, "KITTI-360-APS"), "train")
    register_kitti360_aps_split(names["source_val"], os.path.join(base, "KITTI-360-APS"), "val")
    register_blendpass_splits(
        os.path.join(base, "BlendPASS"), "k2b", names["target_test"], names["target_train"]
    )
    register_amodal_synth_drive_split(
        names["asd_train"], os.path.join(base, "AmodalSynthDrive"), "train"
    )
    return names
