"""AmodalDatasetMapper: dataset dict -> model input with semantic, visible and amodal targets.

Training augmentation follows the authors' pipeline of pseudo-labelled crops (resize, random crop
with the ``cat_max_ratio`` re-draw, horizontal flip; docs/method.md "The authors' code"), applied
identically to the image, the semantic map, every visible and amodal mask and the uncertainty
maps of OPLL (paper Sec. 3.2).
"""

import copy
import logging
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from detectron2.config import configurable
from detectron2.data import transforms as T
from detectron2.utils.logger import log_first_n

from unlock.class_table import ClassTable, class_table_from_config

from .detection_utils import (
    annotations_to_objects,
    append_uncertain_boxes,
    build_amodal_instances,
    read_panoptic_ids,
    read_uncertainty_map,
    semantic_from_panoptic,
    transform_uncertain_boxes,
)
from .seam_split import shows_full_panorama, split_seam_objects
from .validation import DatasetFormatError, check_same_size, read_image_checked, read_label_png

logger = logging.getLogger(__name__)

__all__ = ["CategoryRatioRandomCrop", "AmodalDatasetMapper", "build_amodal_augmentation"]


class CategoryRatioRandomCrop(T.Augmentation):
    """Random crop re-drawn until no semantic class dominates (authors' mmseg ``RandomCrop`` with
    ``cat_max_ratio``; docs/method.md "The authors' code").

    Up to ``max_tries`` windows are drawn; the first whose labelled pixels (label != ignore) hold
    at least two classes and no class with ``cat_max_ratio`` or more of them is taken, else the
    last draw. A crop larger than the image is clipped to the image. Unlike detectron2's
    ``RandomCrop_CategoryAreaConstraint`` the number of tries is configurable.
    """

    def __init__(
        self,
        crop_size: Tuple[int, int],
        cat_max_ratio: float = 0.75,
        max_tries: int = 10,
        ignore_label: int = 255,
    ):
        super().__init__()
        self._init(locals())

    def get_transform(self, image, sem_seg):
        h, w = image.shape[:2]
        ch, cw = min(int(self.crop_size[0]), h), min(int(self.crop_size[1]), w)
        for _ in range(max(1, int(self.max_tries))):
            y0 = np.random.randint(h - ch + 1)
            x0 = np.random.randint(w - cw + 1)
            if sem_seg is None or self.cat_max_ratio >= 1.0:
                break
            labels, cnt = np.unique(sem_seg[y0 : y0 + ch, x0 : x0 + cw], return_counts=True)
            cnt = cnt[labels != self.ignore_label]
            if len(cnt) > 1 and cnt.max() < self.cat_max_ratio * cnt.sum():
                break
        return T.CropTransform(x0, y0, cw, ch)


def build_amodal_augmentation(cfg, is_train: bool) -> List[T.Augmentation]:
    """Resize (INPUT.MIN_SIZE_*), then in training the UNLOCK.DATA crop (skipped for (0, 0)) and
    horizontal flip (skipped for FLIP_PROB 0). The crop's unlabelled value is
    MODEL.SEM_SEG_HEAD.IGNORE_VALUE, as for detectron2's semantic crop; the model checks it
    against the dataset's class table."""
    if not is_train:
        return [T.ResizeShortestEdge(cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST, "choice")]
    augs = [
        T.ResizeShortestEdge(
            cfg.INPUT.MIN_SIZE_TRAIN, cfg.INPUT.MAX_SIZE_TRAIN, cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING
        )
    ]
    crop = tuple(int(x) for x in cfg.UNLOCK.DATA.CROP_SIZE)
    if crop != (0, 0):
        augs.append(
            CategoryRatioRandomCrop(
                crop,
                cfg.UNLOCK.DATA.CROP_CAT_MAX_RATIO,
                cfg.UNLOCK.DATA.CROP_MAX_TRIES,
                ignore_label=cfg.MODEL.SEM_SEG_HEAD.IGNORE_VALUE,
            )
        )
    if cfg.UNLOCK.DATA.FLIP_PROB > 0:
        augs.append(T.RandomFlip(prob=cfg.UNLOCK.DATA.FLIP_PROB, horizontal=True, vertical=False))
    return augs


def _transform_mask(transforms: T.TransformList, mask: Optional[np.ndarray]):
    if mask is None:
        return None
    return transforms.apply_segmentation(mask.astype(np.uint8)) > 0


class AmodalDatasetMapper:
    """Maps a design.md dataset dict to the model input of design.md "Instances produced by the
    mapper".

    Files are checked at map time: a missing, truncated or corrupt image or label PNG, or one
    whose size differs from the dict's height/width, raises DatasetFormatError naming the file.

    Subclass hook (ADCL's ``ObjectPasteDatasetMapper``): ``__call__`` runs
    ``_augment`` -> ``_post_augment`` -> (``_split_at_seam`` with PANORAMA_WRAP) ->
    ``_build_instances``. Override ``_post_augment`` to edit the augmented sample before
    Instances are built. Its arguments are

    * ``image``: (H, W, 3) uint8 in ``image_format``;
    * ``sem_seg``: (H, W) uint8 trainIds (``class_table.ignore_label`` where unlabelled) or None
      (unlabelled image);
    * ``objects``: list of ``{"category_id": detector class, "segment_id", "mask": (H, W) bool or None,
      "amodal_mask": (H, W) bool or None}`` (None = no label of that kind for the object);
    * ``ignore_maps``: ``{"visible": (H, W) bool or None, "amodal": (H, W) bool or None}``, the
      image-level uncertainty regions;
    * ``transforms``: the applied ``TransformList`` (crop offset, flip), e.g. for placement.

    All randomness uses ``np.random`` so detectron2's per-worker seeding makes it reproducible.
    """

    @configurable
    def __init__(
        self,
        *,
        is_train: bool = True,
        augmentations: Sequence[T.Augmentation],
        class_table: ClassTable,
        image_format: str = "BGR",
        repair_amodal: bool = True,
        uncertain_boxes: bool = False,
        panorama_wrap: bool = False,
    ):
        """
        Args:
            is_train: training (targets + augmentation) or inference (resize only, no instances).
            augmentations: applied in order to image, semantics, masks and ignore maps.
            class_table: the dataset's classes (ignore label; thing ids for subclasses).
            image_format: ``read_image`` format, cfg.INPUT.FORMAT.
            repair_amodal: amodal := amodal | visible where a visible mask sticks out (counted
                and logged); False raises DatasetFormatError instead.
            uncertain_boxes: add the dict's ``uncertain_boxes`` (OPLL's dropped detections) to
                the instances as ``UNCERTAIN_CLASS`` entries (UNLOCK.OPLL.UNCERTAIN_BOXES).
            panorama_wrap: the images are 360° panoramas (cfg.INPUT.PANORAMA_WRAP): in training,
                an object crossing the seam of a sample that shows the full panorama width is
                split into its flat pieces, one instance each (``seam_split.py``).
        """
        self.is_train = is_train
        self.augmentations = T.AugmentationList(list(augmentations))
        self.class_table = class_table
        self.image_format = image_format
        self.repair_amodal = repair_amodal
        self.uncertain_boxes = uncertain_boxes
        self.panorama_wrap = bool(panorama_wrap)
        self.num_repaired = 0
        mode = "training" if is_train else "inference"
        logger.info(f"[AmodalDatasetMapper] Augmentations used in {mode}: {self.augmentations}")

    @classmethod
    def from_config(cls, cfg, is_train: bool = True) -> Dict:
        return {
            "is_train": is_train,
            "augmentations": build_amodal_augmentation(cfg, is_train),
            "class_table": class_table_from_config(
                cfg, cfg.DATASETS.TRAIN if is_train else cfg.DATASETS.TEST
            ),
            "image_format": cfg.INPUT.FORMAT,
            "repair_amodal": cfg.UNLOCK.DATA.REPAIR_AMODAL,
            "uncertain_boxes": cfg.UNLOCK.OPLL.UNCERTAIN_BOXES,
            "panorama_wrap": cfg.INPUT.PANORAMA_WRAP,
        }

    def __call__(self, dataset_dict: Dict) -> Dict:
        """
        Returns:
            dict with ``image`` (3, H, W) uint8, ``sem_seg`` (H, W) long (always in training,
            the ignore label where unlabelled; in inference only for labelled images), ``instances``
            (training only), and the dict's ``height``, ``width``, ``file_name``, ``image_id``.
        """
        dataset_dict = copy.deepcopy(dataset_dict)
        image, sem_seg, objects, ignore_maps, transforms = self._augment(dataset_dict)
        image, sem_seg, objects, ignore_maps = self._post_augment(
            dataset_dict, image, sem_seg, objects, ignore_maps, transforms
        )
        image_shape = image.shape[:2]
        dataset_dict["image"] = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
        if sem_seg is None and self.is_train:
            sem_seg = np.full(image_shape, self.class_table.ignore_label, dtype=np.uint8)
        if sem_seg is not None:
            dataset_dict["sem_seg"] = torch.as_tensor(sem_seg.astype(np.int64))
        if self.is_train:
            if self.panorama_wrap:
                # After pasting, so that pasted objects across the seam are split as well.
                objects = self._split_at_seam(dataset_dict, objects, transforms, image_shape)
            instances = self._build_instances(objects, ignore_maps, image_shape)
            boxes = dataset_dict.pop("uncertain_boxes", [])
            if self.uncertain_boxes:
                boxes = transform_uncertain_boxes(boxes, transforms, image_shape)
                instances = append_uncertain_boxes(instances, boxes)
            dataset_dict["instances"] = instances
        return dataset_dict

    # ------------------------------------------------------------------------------ steps
    def _augment(self, dataset_dict: Dict):
        """Reads image and targets and applies ``self.augmentations`` to all of them.

        Pops ``annotations``. Returns ``(image, sem_seg, objects, ignore_maps, transforms)`` as
        described in the class docstring.
        """
        file_name = dataset_dict["file_name"]
        image = read_image_checked(file_name, self.image_format)
        height, width = image.shape[:2]
        if "height" in dataset_dict and "width" in dataset_dict:
            expected = (dataset_dict["height"], dataset_dict["width"])
            if expected != (height, width):
                raise DatasetFormatError(
                    f"{file_name}: image is (H, W)={(height, width)}, the dataset dict says "
                    f"{expected}"
                )
        sem_seg = self._read_semantic(dataset_dict, (height, width))
        annotations = dataset_dict.pop("annotations", [])
        objects, ignore_maps = [], {"visible": None, "amodal": None}
        if self.is_train:
            objects = annotations_to_objects(annotations, height, width, file_name)
            self._check_containment(objects, file_name)
            fields = (("visible", "uncertain_file_name"), ("amodal", "amodal_uncertain_file_name"))
            for key, field in fields:
                if dataset_dict.get(field):
                    ignore_maps[key] = read_uncertainty_map(dataset_dict[field], height, width)

        aug_input = T.AugInput(image, sem_seg=sem_seg)
        transforms = self.augmentations(aug_input)
        for obj in objects:
            obj["mask"] = _transform_mask(transforms, obj["mask"])
            obj["amodal_mask"] = _transform_mask(transforms, obj["amodal_mask"])
        ignore_maps = {k: _transform_mask(transforms, v) for k, v in ignore_maps.items()}
        return aug_input.image, aug_input.sem_seg, objects, ignore_maps, transforms

    def _post_augment(self, dataset_dict, image, sem_seg, objects, ignore_maps, transforms):
        """Hook for subclasses (object pasting); the base mapper changes nothing.

        Returns:
            (image, sem_seg, objects, ignore_maps), possibly modified.
        """
        return image, sem_seg, objects, ignore_maps

    def _split_at_seam(self, dataset_dict, objects, transforms, image_shape):
        """Objects across the seam -> their flat pieces, when the sample shows the whole
        panorama width (a crop has no seam inside it; seam_split.py)."""
        if "width" not in dataset_dict:
            raise DatasetFormatError(
                f"{dataset_dict['file_name']}: INPUT.PANORAMA_WRAP needs the dataset dict's "
                "'width' (to tell a full panorama from a crop)"
            )
        if not shows_full_panorama(transforms, int(dataset_dict["width"]), image_shape[1]):
            return objects
        return split_seam_objects(objects)

    def _build_instances(self, objects, ignore_maps, image_shape):
        """Instances from augmented objects; see ``detection_utils.build_amodal_instances``."""
        return build_amodal_instances(objects, ignore_maps, image_shape)

    # ------------------------------------------------------------------------------ helpers
    def _read_semantic(self, dataset_dict: Dict, hw: Tuple[int, int]) -> Optional[np.ndarray]:
        """(H, W) uint8 trainIds from ``sem_seg_file_name``, else derived from the panoptic PNG
        (crowd and void -> the ignore label), else None."""
        file_name = dataset_dict["file_name"]
        if dataset_dict.get("sem_seg_file_name"):
            path = dataset_dict["sem_seg_file_name"]
            sem = read_label_png(path, "semantic PNG")
            if sem.ndim != 2:
                raise DatasetFormatError(f"{path}: semantic PNG must be single-channel")
            check_same_size(file_name, hw, path, sem.shape)
            return sem.astype(np.uint8)
        if dataset_dict.get("pan_seg_file_name"):
            path = dataset_dict["pan_seg_file_name"]
            pan_ids = read_panoptic_ids(path)
            check_same_size(file_name, hw, path, pan_ids.shape)
            return semantic_from_panoptic(
                pan_ids,
                dataset_dict.get("segments_info", []),
                ignore_label=self.class_table.ignore_label,
            )
        return None

    def _check_containment(self, objects: List[Dict], file_name: str) -> None:
        """Visible must lie inside amodal: repair (counted, logged) or raise."""
        for obj in objects:
            repaired_at_load = obj.pop("amodal_repaired", False)
            vis, amo = obj["mask"], obj["amodal_mask"]
            if vis is None or amo is None:
                continue
            outside = repaired_at_load or bool((vis & ~amo).any())
            if not outside:
                continue
            if not self.repair_amodal:
                raise DatasetFormatError(
                    f"{file_name}: visible mask of object {obj.get('segment_id')} is not inside "
                    "its amodal mask (UNLOCK.DATA.REPAIR_AMODAL=False)"
                )
            obj["amodal_mask"] = amo | vis
            self.num_repaired += 1
            log_first_n(
                logging.WARNING,
                f"{file_name}: visible mask outside its amodal mask, repaired "
                "(amodal := amodal | visible); further cases are only counted in num_repaired",
                n=5,
                name=__name__,
            )
