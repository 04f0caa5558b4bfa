"""Evaluation ground truth of the splits that carry half of the labels.

**Amodal instance splits** (KINS / COCOA style, no stuff classes) have no panoptic PNG and no Cityscapes instance map; its objects are a list of
visible and amodal masks (``unlock.data.datasets.amodal_instance``). AP then matches predictions
against the visible mask list and AAP against the amodal one, with the same rules as the
panoptic splits (docs/evaluation.md "Ground truth"): crowd annotations are void, and an object
enters when both its masks pass the 2-px box filter. Visible masks of one image are disjoint in
these datasets, so matching against the list gives what the instance-id map gives elsewhere.
There is no repaired-mask distinction, so both protocols score the same objects.

**Semantic-only splits** (DensePASS style, no things) have a label PNG of semantic ids per image
and are scored with mIoU alone.
"""

from typing import Dict

import numpy as np

from unlock.class_table import ClassTable
from unlock.data.amodal_segmentation import decode_checked

from unlock.data.validation import check_same_size, read_label_png

from .ground_truth import AmodalGroundTruth, _stack, _valid_inclusive_box

__all__ = [
    "InstanceGroundTruth",
    "SemanticGroundTruth",
    "build_instance_ground_truth",
    "build_semantic_ground_truth",
]


class InstanceGroundTruth:
    """GT of one image of an instance-only split.

    Attributes:
        image_id: str.
        visible: AmodalGroundTruth of the visible masks (masks, annotation ids, semantic ids).
        void: (H, W) bool, the crowd regions.
        class_table: the split's classes.
    """

    def __init__(self, image_id: str, visible: AmodalGroundTruth, amodal: AmodalGroundTruth,
                 void: np.ndarray, *, class_table: ClassTable):
        self.image_id = image_id
        self.visible = visible
        self._amodal = amodal
        self.void = void
        self.class_table = class_table

    def amodal(self, protocol: str) -> AmodalGroundTruth:
        """The AAP ground truth; one object for every protocol (no mask is repaired)."""
        if protocol not in ("oass", "strict"):
            raise ValueError(f"Unknown protocol {protocol!r}")
        return self._amodal


def build_instance_ground_truth(dataset_dict: Dict, class_table: ClassTable) -> InstanceGroundTruth:
    """Decodes the annotations of one instance-only dataset dict.

    Raises:
        ValueError naming the image when the dict has no annotations list or a mask is malformed.
    """
    name = dataset_dict.get("file_name", "<dataset dict>")
    for key in ("annotations", "height", "width"):
        if key not in dataset_dict:
            raise ValueError(f"{name}: dataset dict has no {key!r}; is this a labelled split?")
    h, w = int(dataset_dict["height"]), int(dataset_dict["width"])
    void = np.zeros((h, w), dtype=bool)
    visible, amodal = ([], [], []), ([], [], [])
    for ann in dataset_dict["annotations"]:
        where = f"{name}: annotation {ann.get('segment_id')}"
        vis = decode_checked(ann["segmentation"], h, w, f"{where} visible mask")
        if ann.get("iscrowd", 0):
            void |= vis
            continue
        amo = decode_checked(ann["amodal_segmentation"], h, w, f"{where} amodal mask")
        if not (_valid_inclusive_box(vis) and _valid_inclusive_box(amo)):
            continue
        values = (int(ann.get("segment_id", 0)), class_table.semantic_id(int(ann["category_id"])))
        for out, mask in ((visible, vis), (amodal, amo)):
            out[0].append(mask)
            out[1].append(values[0])
            out[2].append(values[1])
    return InstanceGroundTruth(
        str(dataset_dict.get("image_id", name)), _stack(*visible, h, w), _stack(*amodal, h, w),
        void, class_table=class_table,
    )


class SemanticGroundTruth:
    """GT of one image of a semantic-only split: ``semantic`` (H, W) uint8 semantic ids, the
    table's ignore label where unlabelled."""

    def __init__(self, image_id: str, semantic: np.ndarray, *, class_table: ClassTable):
        self.image_id = image_id
        self.semantic = semantic
        self.class_table = class_table


def build_semantic_ground_truth(dataset_dict: Dict, class_table: ClassTable) -> SemanticGroundTruth:
    """Reads the label PNG of one semantic-only dataset dict.

    Raises:
        ValueError naming the file when the PNG is missing, not single-channel, of another size
        than the image, or holds values that are neither classes nor the ignore label.
    """
    name = dataset_dict.get("file_name", "<dataset dict>")
    path = dataset_dict.get("sem_seg_file_name")
    if not path:
        raise ValueError(f"{name}: dataset dict has no 'sem_seg_file_name'; is this a labelled split?")
    sem = read_label_png(path, "semantic label PNG")
    if sem.ndim != 2:
        raise ValueError(f"{path}: semantic label PNG must be single-channel")
    check_same_size(name, (int(dataset_dict["height"]), int(dataset_dict["width"])), path, sem.shape)
    n, ignore = class_table.num_classes, class_table.ignore_label
    bad = (sem >= n) & (sem != ignore)
    if bad.any():
        raise ValueError(f"{path}: values {sorted(set(sem[bad].tolist()))[:5]} are neither "
                         f"classes 0..{n - 1} of class table {class_table.name!r} nor {ignore}")
    return SemanticGroundTruth(str(dataset_dict.get("image_id", name)), sem.astype(np.uint8),
                               class_table=class_table)
