"""Export of predictions in standard formats, for outside tools (all writes are atomic).

Layout under ``output_dir``:
  panoptic/<image_id>.png + panoptic.json        COCO panoptic (RGB ids, 0 = void as panopticapi)
  cityscapes/visible/<image_id>_pred.txt + mask/  Cityscapes instance txt + 0/255 PNG masks
  cityscapes/amodal/<image_id>_pred.txt + mask/   the same for amodal masks
  coco_instances_results.json                     COCO results with RLE (visible masks)
  coco_amodal_instances_results.json              COCO results with RLE (amodal masks)
Category ids are the class table's trainIds (semantic ids), the dataset id space of
docs/design.md.
"""

import itertools
import logging
import os
from typing import Dict, List, Sequence

import numpy as np
from detectron2.evaluation import DatasetEvaluator
from detectron2.utils import comm

from unlock.class_table import ClassTable
from unlock.utils.file_io import atomic_write_bytes, atomic_write_image, atomic_write_json
from unlock.utils.masks import encode_rle, mask_to_box

from .panoptic import _to_numpy

__all__ = [
    "PredictionExporter",
    "export_panoptic",
    "export_cityscapes_instances",
    "coco_instance_results",
]

logger = logging.getLogger(__name__)

def export_panoptic(
    image_id: str, pan: np.ndarray, segments_info: List[Dict], out_dir: str, *,
    class_table: ClassTable,
) -> Dict:
    """Writes ``panoptic/<image_id>.png`` (id = R + 256 G + 256^2 B) and returns its JSON entry."""
    pan = np.asarray(pan, dtype=np.uint32)
    rgb = np.stack([pan % 256, pan // 256 % 256, pan // 65536 % 256], axis=-1).astype(np.uint8)
    file_name = f"{image_id}.png"
    atomic_write_image(os.path.join(out_dir, "panoptic", file_name), rgb)
    areas = np.bincount(pan.reshape(-1))
    segs = []
    for s in segments_info:
        area = int(areas[s["id"]]) if s["id"] < len(areas) else 0
        if area == 0:
            continue
        cat = int(s["category_id"])
        if s.get("isthing"):
            cat = class_table.semantic_id(cat)
        segs.append(
            {
                "id": int(s["id"]),
                "category_id": cat,
                "iscrowd": 0,
                "area": area,
                "isthing": int(bool(s.get("isthing"))),
            }
        )
    return {"image_id": image_id, "file_name": file_name, "segments_info": segs}


def export_cityscapes_instances(
    image_id: str, masks: np.ndarray, scores: Sequence[float], classes: Sequence[int],
    out_dir: str, *, class_table: ClassTable,
) -> str:
    """Writes ``<image_id>_pred.txt`` with lines ``mask/<png> <trainId> <score>`` and the masks."""
    lines = []
    for i, (m, s, c) in enumerate(zip(masks, scores, classes)):
        tid = class_table.semantic_id(int(c))
        rel = f"mask/{image_id}_{i}_{tid}.png"
        atomic_write_image(os.path.join(out_dir, rel), (np.asarray(m, bool) * 255).astype(np.uint8))
        lines.append(f"{rel} {tid} {float(s):.6f}\n")
    path = os.path.join(out_dir, f"{image_id}_pred.txt")
    atomic_write_bytes(path, "".join(lines).encode())
    return path


def coco_instance_results(
    image_id: str, masks: np.ndarray, scores: Sequence[float], classes: Sequence[int], *,
    class_table: ClassTable,
) -> List[Dict]:
    """COCO detection-results entries with RLE masks (str counts) and XYWH boxes of the mask."""
    out = []
    for m, s, c in zip(masks, scores, classes):
        box = mask_to_box(np.asarray(m, bool)) or [0.0, 0.0, 0.0, 0.0]
        out.append(
            {
                "image_id": image_id,
                "category_id": class_table.semantic_id(int(c)),
                "segmentation": encode_rle(m),
                "score": float(s),
                "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
            }
        )
    return out


class PredictionExporter(DatasetEvaluator):
    """Writes every prediction in the formats above; ``evaluate`` writes the JSON files."""

    def __init__(self, output_dir: str, class_table: ClassTable):
        self._dir = output_dir
        self._class_table = class_table
        self.reset()

    def reset(self) -> None:
        self._panoptic: List[Dict] = []
        self._coco: List[Dict] = []
        self._coco_amodal: List[Dict] = []

    def process(self, inputs, outputs) -> None:
        for inp, out in zip(inputs, outputs):
            image_id = str(
                inp.get("image_id", os.path.splitext(os.path.basename(inp["file_name"]))[0])
            )
            if "panoptic_seg" in out:
                pan, segs = out["panoptic_seg"]
                self._panoptic.append(export_panoptic(
                    image_id, _to_numpy(pan), segs, self._dir, class_table=self._class_table
                ))
            inst = out.get("instances")
            if inst is None or len(inst) == 0:
                inst_fields = []
            else:
                inst_fields = [f for f in ("pred_masks", "pred_amodal_masks") if inst.has(f)]
            scores = _to_numpy(inst.scores) if inst_fields else []
            classes = _to_numpy(inst.pred_classes) if inst_fields else []
            for field, sub, store in (
                ("pred_masks", "visible", self._coco),
                ("pred_amodal_masks", "amodal", self._coco_amodal),
            ):
                masks = (
                    _to_numpy(inst.get(field))
                    if field in inst_fields
                    else np.zeros((0, 1, 1), bool)
                )
                cs_dir = os.path.join(self._dir, "cityscapes", sub)
                export_cityscapes_instances(
                    image_id, masks, scores, classes, cs_dir, class_table=self._class_table
                )
                store.extend(coco_instance_results(
                    image_id, masks, scores, classes, class_table=self._class_table
                ))

    def evaluate(self):
        panoptic = list(itertools.chain(*comm.gather(self._panoptic, dst=0)))
        coco = list(itertools.chain(*comm.gather(self._coco, dst=0)))
        coco_amodal = list(itertools.chain(*comm.gather(self._coco_amodal, dst=0)))
        if not comm.is_main_process():
            return None
        table = self._class_table
        pan_json = {
            "annotations": panoptic,
            "categories": [
                {"id": i, "name": n, "isthing": int(table.is_thing(i))}
                for i, n in enumerate(table.names)
            ],
        }
        atomic_write_json(os.path.join(self._dir, "panoptic.json"), pan_json)
        atomic_write_json(os.path.join(self._dir, "coco_instances_results.json"), coco)
        atomic_write_json(
            os.path.join(self._dir, "coco_amodal_instances_results.json"), coco_amodal
        )
        logger.info("Exported predictions of %d images to %s", len(panoptic), self._dir)
        return {}
