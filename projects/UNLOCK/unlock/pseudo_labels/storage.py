"""On-disk format of OPLL pseudo-labels (format version 1; layout in docs/design.md).

```
<root>/manifest.json                     version, keys, thresholds, counts, status, image ids
<root>/raw/<id>.json                     pass 1: detections (score, class, box, visible/amodal RLE)
<root>/raw/<id>_sem.png                  pass 1: semantic argmax (uint8 trainIds)
<root>/raw/<id>_conf.png                 pass 1: max probability, round(p * 65535) as uint16
<root>/labels/<id>.json                  pass 2: objects [{category_id, score, bbox,
                                                 segmentation|null, amodal_segmentation|null}]
<root>/labels/<id>_sem.png               pass 2: semantic pseudo-label (255 = low confidence)
<root>/labels/<id>_uncertain.png         pass 2: visible uncertainty region (255)
<root>/labels/<id>_amodal_uncertain.png  pass 2: amodal uncertainty region (255)
```
Every file is written atomically, and per image the JSON is written *last*: its presence marks
the image as complete, which is what makes an interrupted pass resumable.
"""

import os
import re
from typing import Dict, Iterable, Iterator, List, Optional, Sequence

import numpy as np
import pycocotools.mask as mask_util
from PIL import Image

from ..utils.file_io import atomic_write_image, atomic_write_json, read_json
from ..utils.masks import decode_rle, encode_rle, mask_to_box

FORMAT_VERSION = 1
CONF_SCALE = 65535
_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*$")


def check_image_id(image_id: str) -> str:
    """image ids become file names: allow [A-Za-z0-9_.-] and '/' sub-folders, nothing else."""
    image_id = str(image_id)
    if not _ID_PATTERN.match(image_id) or ".." in image_id.split("/"):
        raise ValueError(f"image_id {image_id!r} cannot be used as a pseudo-label file name")
    return image_id


def raw_json_path(root: str, image_id: str) -> str:
    return os.path.join(root, "raw", check_image_id(image_id) + ".json")


def raw_png_path(root: str, image_id: str, kind: str) -> str:
    """kind: "sem" or "conf"."""
    return os.path.join(root, "raw", f"{check_image_id(image_id)}_{kind}.png")


def label_json_path(root: str, image_id: str) -> str:
    return os.path.join(root, "labels", check_image_id(image_id) + ".json")


def label_png_path(root: str, image_id: str, kind: str) -> str:
    """kind: "sem", "uncertain" or "amodal_uncertain"."""
    return os.path.join(root, "labels", f"{check_image_id(image_id)}_{kind}.png")


def manifest_path(root: str) -> str:
    return os.path.join(root, "manifest.json")


# ---------------------------------------------------------------------------------------------
# pass 1: raw source-model predictions


def write_raw_prediction(root: str, record: Dict) -> None:
    """Writes one image's raw predictions (record format of ``iter_raw_predictions``).

    Args:
        record: {image_id, file_name, height, width, sem_labels (H, W) uint8, sem_conf (H, W)
            float in [0, 1], detections: [{category_id, score, mask, amodal_mask (H, W) bool,
            bbox? (XYXY_ABS)}]}; sem_labels and sem_conf are None for a model without a
            semantic head (AmodalRCNN), and then no semantic PNG is written.
    """
    image_id = check_image_id(record["image_id"])
    semantic = record.get("sem_labels") is not None
    if semantic:
        conf = np.rint(np.clip(record["sem_conf"], 0.0, 1.0) * CONF_SCALE).astype(np.uint16)
        atomic_write_image(raw_png_path(root, image_id, "sem"), record["sem_labels"].astype(np.uint8))
        atomic_write_image(raw_png_path(root, image_id, "conf"), conf)
    dets = []
    for d in record["detections"]:
        mask, amodal = np.asarray(d["mask"], bool), np.asarray(d["amodal_mask"], bool)
        box = d.get("bbox") or mask_to_box(mask | amodal)
        dets.append(
            {
                "category_id": int(d["category_id"]),
                "score": float(d["score"]),
                "bbox": None if box is None else [float(v) for v in box],
                "segmentation": encode_rle(mask),
                "amodal_segmentation": encode_rle(amodal),
            }
        )
    meta = {k: record[k] for k in ("file_name", "height", "width")}
    atomic_write_json(
        raw_json_path(root, image_id),
        {"version": FORMAT_VERSION, "image_id": image_id, **meta, "semantic": semantic,
         "detections": dets},
    )


def raw_exists(root: str, image_id: str) -> bool:
    return os.path.isfile(raw_json_path(root, image_id))


def read_raw_header(root: str, image_id: str) -> Dict:
    """The raw JSON of one image, masks left encoded (cheap: used for the score histograms)."""
    path = raw_json_path(root, image_id)
    data = _read_versioned(path)
    for key in ("height", "width", "detections"):
        if key not in data:
            raise ValueError(f"{path}: missing key {key!r}")
    for d in data["detections"]:
        if not _is_class(d.get("category_id")) or not 0.0 <= d.get("score", -1.0) <= 1.0:
            raise ValueError(
                f"{path}: detection with bad category_id/score: {d.get('category_id')}"
            )
    return data


def _is_class(category_id) -> bool:
    """A detector class is a non-negative int (its range is the class table's, checked where the
    table is known)."""
    return isinstance(category_id, int) and not isinstance(category_id, bool) and category_id >= 0


def read_conf(path: str) -> np.ndarray:
    """Reads a quantised confidence PNG back to float32 in [0, 1]."""
    return read_png(path, np.uint16).astype(np.float32) / CONF_SCALE


def read_raw_prediction(root: str, image_id: str) -> Dict:
    """Reads one image's raw predictions back into the record format (masks decoded)."""
    data = read_raw_header(root, image_id)
    h, w = data["height"], data["width"]
    sem = conf_q = None
    if data.get("semantic", True):
        sem = read_png(raw_png_path(root, image_id, "sem"), np.uint8, (h, w))
        conf_q = read_png(raw_png_path(root, image_id, "conf"), np.uint16, (h, w))
    dets = data["detections"]
    masks = decode_masks(
        [d["segmentation"] for d in dets] + [d["amodal_segmentation"] for d in dets],
        (h, w),
        raw_json_path(root, image_id),
    )
    detections = []
    for j, d in enumerate(dets):
        detections.append(
            {
                "category_id": d["category_id"],
                "score": d["score"],
                "bbox": d.get("bbox"),
                "mask": masks[j],
                "amodal_mask": masks[len(dets) + j],
            }
        )
    return {
        "image_id": data["image_id"],
        "file_name": data["file_name"],
        "height": h,
        "width": w,
        "sem_labels": sem,
        "sem_conf": None if conf_q is None else conf_q.astype(np.float32) / CONF_SCALE,
        "sem_conf_q": conf_q,
        "detections": detections,
    }


class RawPredictionRecords:
    """Re-iterable view of the raw predictions of a dataset (one record per image, in order).

    It can be iterated more than once (the ADCL pool builder needs one pass for its thresholds
    and one for the objects); only one image is held in memory at a time.
    """

    def __init__(self, pl_root: str, dataset_dicts: Iterable[Dict]):
        self.pl_root = pl_root
        self.image_ids = [check_image_id(d["image_id"]) for d in dataset_dicts]

    def __len__(self) -> int:
        return len(self.image_ids)

    def __iter__(self) -> Iterator[Dict]:
        for image_id in self.image_ids:
            yield read_raw_prediction(self.pl_root, image_id)


def iter_raw_predictions(pl_root: str, dataset_dicts: Iterable[Dict]) -> RawPredictionRecords:
    """Raw source predictions as records {image_id, file_name, height, width, sem_labels (H, W)
    uint8 argmax, sem_conf (H, W) float32 max prob (both None without a semantic head),
    detections: [{category_id (detector class), score, mask (H, W) bool visible, amodal_mask
    (H, W) bool}]} (the ADCL pool-builder contract)."""
    return RawPredictionRecords(pl_root, dataset_dicts)


# ---------------------------------------------------------------------------------------------
# pass 2: pseudo-labels


def write_labels(
    root: str, image: Dict, objects: List[Dict], sem, uncertain, amodal_uncertain,
    uncertain_detections: Sequence[Dict] = (),
):
    """Writes one image's pseudo-labels; the JSON goes last (completion marker).

    Args:
        image: {image_id, file_name, height, width}.
        objects: output of ``revision.combine_branches``.
        sem: (H, W) uint8 semantic pseudo-label, None without a semantic head.
        uncertain, amodal_uncertain: (H, W) bool.
        uncertain_detections: output of ``revision.uncertain_detections`` (boxes only).
    """
    image_id = check_image_id(image["image_id"])
    if sem is not None:
        atomic_write_image(label_png_path(root, image_id, "sem"), sem.astype(np.uint8))
    for kind, region in (("uncertain", uncertain), ("amodal_uncertain", amodal_uncertain)):
        atomic_write_image(label_png_path(root, image_id, kind), region.astype(np.uint8) * 255)
    meta = {k: image[k] for k in ("file_name", "height", "width")}
    atomic_write_json(
        label_json_path(root, image_id),
        {"version": FORMAT_VERSION, "image_id": image_id, **meta, "semantic": sem is not None,
         "objects": objects, "uncertain_detections": list(uncertain_detections)},
    )  # fmt: skip


def labels_exist(root: str, image_id: str) -> bool:
    return os.path.isfile(label_json_path(root, image_id))


def read_labels(root: str, image_id: str) -> Dict:
    """The label JSON of one image; objects are validated, masks left encoded."""
    path = label_json_path(root, image_id)
    data = _read_versioned(path)
    for key in ("file_name", "height", "width", "objects"):
        if key not in data:
            raise ValueError(f"{path}: missing key {key!r}")
    for obj in data["objects"]:
        if obj.get("segmentation") is None and obj.get("amodal_segmentation") is None:
            raise ValueError(f"{path}: an object has neither a visible nor an amodal mask")
        if not _is_class(obj.get("category_id")) or obj.get("bbox") is None:
            raise ValueError(f"{path}: object with bad category_id or bbox")
    for det in data.setdefault("uncertain_detections", []):
        box = det.get("bbox")
        if not (isinstance(box, list) and len(box) == 4 and box[0] <= box[2] and box[1] <= box[3]):
            raise ValueError(f"{path}: uncertain detection with a bad bbox {box!r} (XYXY expected)")
    return data


# ---------------------------------------------------------------------------------------------
# manifest


def read_manifest(root: str) -> Optional[Dict]:
    """The manifest, or None when there is none yet; a different format version raises."""
    path = manifest_path(root)
    if not os.path.isfile(path):
        return None
    return _read_versioned(path)


def write_manifest(root: str, manifest: Dict) -> None:
    atomic_write_json(manifest_path(root), {"version": FORMAT_VERSION, **manifest}, indent=1)


# ---------------------------------------------------------------------------------------------


def _read_versioned(path: str) -> Dict:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: pseudo-label file not found")
    data = read_json(path)
    if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
        version = data.get("version") if isinstance(data, dict) else None
        raise ValueError(
            f"{path}: pseudo-label format version {version}, expected {FORMAT_VERSION}"
        )
    return data


def read_png(path: str, dtype, shape=None) -> np.ndarray:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: pseudo-label file not found")
    array = np.asarray(Image.open(path))
    if shape is not None and array.shape != tuple(shape):
        raise ValueError(f"{path}: shape {array.shape}, expected {tuple(shape)}")
    return array.astype(dtype)


def decode_masks(rles: List[Dict], shape, path: str) -> List[np.ndarray]:
    """``[decode_mask(r, shape, path) for r in rles]`` (same values, same Fortran order), in one
    pycocotools call for compressed RLEs: the masks are views of one (H, W, N) array."""
    if not all(isinstance(r.get("counts"), str) for r in rles) or len(rles) < 2:
        return [decode_mask(r, shape, path) for r in rles]
    for r in rles:  # checked first: one call decodes every RLE at the first one's size
        if tuple(r["size"]) != tuple(shape):
            raise ValueError(f"{path}: RLE of size {tuple(r['size'])}, expected {tuple(shape)}")
    stack = mask_util.decode([dict(r, counts=r["counts"].encode("ascii")) for r in rles])
    stack = stack.view(bool)  # 0/1 uint8 -> bool without a copy
    return [stack[:, :, i] for i in range(stack.shape[2])]


def decode_mask(rle: Dict, shape, path: str) -> np.ndarray:
    """An RLE mask of a pseudo-label file, checked against the image size (ValueError naming
    ``path`` otherwise)."""
    mask = decode_rle(rle)
    if mask.shape != tuple(shape):
        raise ValueError(f"{path}: RLE of size {mask.shape}, expected {tuple(shape)}")
    return mask
