"""Exporting one image's predictions in standard formats (used by tools/demo.py --export).

Formats (ids are trainIds of the class table, as in the BlendPASS GT JSON, fmt §1.1):

* ``panoptic.json`` + ``panoptic/<image_id>.png``: COCO panoptic. The PNG stores the segment id
  as ``R + 256 G + 256^2 B`` (0 = void); ``segments_info`` entries carry ``id``, ``category_id``
  (trainId), ``iscrowd`` 0, ``area``, ``bbox`` (XYWH) and ``score`` for things.
* ``instances.json`` / ``amodal_instances.json``: COCO results lists, one entry per detection
  (``image_id``, ``category_id`` trainId, ``score``, ``bbox`` XYWH of the detector's amodal box,
  ``segmentation`` compressed RLE of the visible resp. amodal mask, ``instance_id`` = index of the
  detection, which pairs a visible entry with its amodal entry).
* ``semantic/<image_id>.png``: uint8 argmax trainIds.

Images are written as they come (atomically); the JSON files are written by ``finalize``.
"""
import os
from typing import Dict, List, Mapping, Tuple

import numpy as np
import torch

from unlock.utils.file_io import atomic_write_image, atomic_write_json
from unlock.utils.masks import encode_rle, mask_to_box

__all__ = [
    "coco_panoptic_categories",
    "id_map_to_rgb",
    "panoptic_to_coco",
    "instances_to_coco_results",
    "PredictionExporter",
    "export_paths",
]


def _get(metadata, key):
    return metadata[key] if isinstance(metadata, Mapping) else getattr(metadata, key)


def _thing_train_ids(metadata) -> Dict[int, int]:
    """Contiguous thing id (0..6) -> trainId."""
    return {v: k for k, v in _get(metadata, "thing_dataset_id_to_contiguous_id").items()}


def _xywh(mask: np.ndarray) -> List[float]:
    box = mask_to_box(mask)
    return [box[0], box[1], box[2] - box[0], box[3] - box[1]] if box else [0.0, 0.0, 0.0, 0.0]


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def coco_panoptic_categories(metadata) -> List[Dict]:
    """COCO panoptic ``categories`` (id = trainId) from class metadata."""
    things = set(_thing_train_ids(metadata).values())
    colors = _get(metadata, "stuff_colors")
    return [
        {
            "id": train_id,
            "name": name,
            "isthing": int(train_id in things),
            "color": list(colors[train_id]),
            "supercategory": "thing" if train_id in things else "stuff",
        }
        for train_id, name in enumerate(_get(metadata, "stuff_classes"))
    ]


def id_map_to_rgb(ids: np.ndarray) -> np.ndarray:
    """Encodes (H, W) non-negative ids < 256^3 as an (H, W, 3) uint8 RGB id image."""
    ids = np.asarray(ids, dtype=np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= 256**3):
        raise ValueError(f"panoptic ids must lie in [0, 256^3), got [{ids.min()}, {ids.max()}]")
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536], axis=-1).astype(np.uint8)


def panoptic_to_coco(
    panoptic_seg, segments_info: List[Dict], metadata, image_id: str, file_name: str
) -> Tuple[np.ndarray, Dict]:
    """Converts a model's ``panoptic_seg`` to a COCO panoptic PNG and annotation.

    Args:
        panoptic_seg: (H, W) int ids, 0 = void (docs/design.md "Model outputs").
        segments_info: entries {id, isthing, category_id (thing 0..6; stuff trainId), score?}.
        metadata: class metadata (``unlock.classes.class_metadata``).
        image_id: id written into the annotation.
        file_name: PNG file name written into the annotation.

    Returns:
        ((H, W, 3) uint8 RGB id image, annotation dict). Segments absent from the map are dropped,
        pixels of ids without a ``segments_info`` entry become void (0).
    """
    ids = _numpy(panoptic_seg).astype(np.int64)
    to_train = _thing_train_ids(metadata)
    known = np.zeros(ids.shape, dtype=bool)
    segments = []
    for seg in segments_info:
        mask = ids == seg["id"]
        area = int(mask.sum())
        if area == 0:
            continue
        known |= mask
        cat = to_train[seg["category_id"]] if seg.get("isthing") else int(seg["category_id"])
        entry = {
            "id": int(seg["id"]),
            "category_id": int(cat),
            "iscrowd": 0,
            "area": area,
            "bbox": _xywh(mask),
        }
        if "score" in seg:
            entry["score"] = float(seg["score"])
        segments.append(entry)
    ids = np.where(known, ids, 0)
    return id_map_to_rgb(ids), {
        "image_id": image_id,
        "file_name": file_name,
        "segments_info": segments,
    }


def instances_to_coco_results(
    instances, metadata, image_id: str, mask_field: str = "pred_masks"
) -> List[Dict]:
    """COCO result entries (RLE masks) of one image's detections.

    Args:
        instances: ``Instances`` with pred_boxes, scores, pred_classes (0..6) and ``mask_field``.
        metadata: class metadata (for contiguous id -> trainId).
        image_id: written into every entry.
        mask_field: "pred_masks" (visible) or "pred_amodal_masks".

    Returns:
        One dict per detection, in detection order.
    """
    if not instances.get_fields() or len(instances) == 0:  # fieldless Instances has no len
        return []
    if not instances.has(mask_field):
        raise ValueError(f"instances have no field {mask_field!r}")
    instances = instances.to("cpu")
    masks = _numpy(instances.get(mask_field)).astype(bool)
    boxes = _numpy(instances.pred_boxes.tensor)
    to_train = _thing_train_ids(metadata)
    results = []
    for i, (cls, score) in enumerate(zip(instances.pred_classes.tolist(), instances.scores.tolist())):
        x0, y0, x1, y1 = (float(v) for v in boxes[i])
        results.append(
            {
                "image_id": image_id,
                "instance_id": i,
                "category_id": int(to_train[cls]),
                "score": float(score),
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "segmentation": encode_rle(masks[i]),
            }
        )
    return results


class PredictionExporter:
    """Writes predictions of a stream of images under ``output_dir`` (formats: module doc).

    Args:
        output_dir: destination folder (created).
        metadata: class metadata of the model's class table.
    """

    def __init__(self, output_dir: str, metadata):
        self.output_dir = output_dir
        self.metadata = metadata
        self._images: List[Dict] = []
        self._panoptic: List[Dict] = []
        self._instances: List[Dict] = []
        self._amodal: List[Dict] = []

    def add(self, image_id: str, file_name: str, outputs: Dict) -> None:
        """Exports one image's outputs (keys that are absent are skipped).

        Args:
            image_id: unique id (the demo uses the file stem); names the PNG files.
            file_name: input image path, recorded in ``images``.
            outputs: model outputs for the image, at its original size.
        """
        height = width = None
        if "sem_seg" in outputs:
            sem = _numpy(outputs["sem_seg"])
            labels = sem.argmax(axis=0) if sem.ndim == 3 else sem
            height, width = labels.shape
            path = os.path.join(self.output_dir, "semantic", f"{image_id}.png")
            atomic_write_image(path, labels.astype(np.uint8))
        if outputs.get("panoptic_seg") is not None:
            pan_ids, segments_info = outputs["panoptic_seg"]
            png_name = f"{image_id}.png"
            rgb, ann = panoptic_to_coco(pan_ids, segments_info, self.metadata, image_id, png_name)
            height, width = rgb.shape[:2]
            atomic_write_image(os.path.join(self.output_dir, "panoptic", png_name), rgb)
            self._panoptic.append(ann)
        instances = outputs.get("instances")
        if instances is not None:
            height, width = instances.image_size
            self._instances += instances_to_coco_results(instances, self.metadata, image_id)
            if instances.has("pred_amodal_masks") or not instances.get_fields():
                self._amodal += instances_to_coco_results(
                    instances, self.metadata, image_id, "pred_amodal_masks"
                )
        self._images.append(
            {"id": image_id, "file_name": file_name, "height": height, "width": width}
        )

    def finalize(self) -> Dict[str, str]:
        """Writes the JSON files; returns {kind: path} of what was written."""
        categories = coco_panoptic_categories(self.metadata)
        written: Dict[str, str] = {}
        if self._panoptic:
            written["panoptic"] = os.path.join(self.output_dir, "panoptic.json")
            atomic_write_json(
                written["panoptic"],
                {"images": self._images, "annotations": self._panoptic, "categories": categories},
            )
        for kind, entries in (("instances", self._instances), ("amodal_instances", self._amodal)):
            path = os.path.join(self.output_dir, f"{kind}.json")
            atomic_write_json(path, entries)
            written[kind] = path
        return written


def export_paths(output_dir: str, image_id: str) -> Dict[str, str]:
    """Where :class:`PredictionExporter` writes the per-image files of ``image_id``."""
    return {
        "semantic": os.path.join(output_dir, "semantic", f"{image_id}.png"),
        "panoptic": os.path.join(output_dir, "panoptic", f"{image_id}.png"),
    }
