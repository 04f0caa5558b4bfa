"""One picture of the five UNLOCK outputs: the input and one ``AmodalVisualizer`` panel per output,
each under a title bar, stacked vertically because panoramas are about five times wider than
tall (used by tools/demo.py and the benchmark's pictures)."""

import logging
from typing import Dict, List, Tuple

import cv2
import numpy as np
from detectron2.utils.visualizer import VisImage

from unlock.utils.visualizer import AmodalVisualizer, as_metadata, count_instances

logger = logging.getLogger(__name__)

__all__ = ["draw_five_outputs", "PANEL_TITLES"]

# Output key -> panel title (with the metric the panel is evaluated by).
PANEL_TITLES = {
    "sem_seg": "Semantic segmentation (mIoU)",
    "instances": "Instance segmentation, visible masks (AP)",
    "amodal_instances": "Amodal instance segmentation (AAP): solid = visible, striped = occluded",
    "panoptic_seg": "Panoptic segmentation (PQ)",
    "amodal_panoptic_seg": "Amodal panoptic segmentation (APQ): striped = occluded",
}


def _title_bar(title: str, width: int, height: int) -> np.ndarray:
    bar = np.full((height, width, 3), 32, dtype=np.uint8)
    scale = height / 40.0
    thickness = max(1, int(round(height / 20)))
    text_w = cv2.getTextSize(title, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0][0]
    if text_w > width - height // 2:  # shrink long titles on narrow images rather than cut them
        scale *= max(width - height // 2, 1) / text_w
    cv2.putText(
        bar,
        title,
        (max(2, height // 4), int(height * 0.72)),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (255, 255, 255),
        thickness,
        cv2.LINE_AA,
    )
    return bar


def _panel(vis: VisImage, shape: Tuple[int, int]) -> np.ndarray:
    image = vis.get_image()
    if image.shape[:2] != shape:  # matplotlib may round the canvas by one pixel
        image = cv2.resize(image, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    return image


def draw_five_outputs(image_rgb: np.ndarray, outputs: Dict, metadata) -> np.ndarray:
    """Composes the input and the five outputs into one picture, panels stacked vertically.

    Panels (each under a title bar): input, semantic, visible instances, amodal instances,
    panoptic, amodal panoptic. A panel whose output key is missing from ``outputs`` (e.g. with
    ``COMBINE_ON`` off) is left out.

    Args:
        image_rgb: (H, W, 3) uint8 RGB input image.
        outputs: one image's model outputs (docs/design.md "Model outputs"), at (H, W).
        metadata: ``Metadata`` or dict with class names and colours.

    Returns:
        (P * (H + T), W, 3) uint8 RGB picture, P panels with title bars of T pixels.
    """
    image_rgb = np.asarray(image_rgb)
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
        raise ValueError(f"image_rgb must be (H, W, 3), got {image_rgb.shape}")
    image_rgb = image_rgb.clip(0, 255).astype(np.uint8)
    h, w = image_rgb.shape[:2]
    metadata = as_metadata(metadata)

    def vis() -> AmodalVisualizer:
        return AmodalVisualizer(image_rgb, metadata)

    panels: List[Tuple[str, np.ndarray]] = [("Input", image_rgb)]
    if "sem_seg" in outputs:
        panels.append(
            (PANEL_TITLES["sem_seg"], _panel(vis().draw_semantic(outputs["sem_seg"]), (h, w)))
        )
    instances = outputs.get("instances")
    if instances is not None:
        panels.append(
            (PANEL_TITLES["instances"], _panel(vis().draw_instances_visible(instances), (h, w)))
        )
        if instances.has("pred_amodal_masks") or count_instances(instances) == 0:
            drawn = vis().draw_amodal_instances(instances)
            panels.append((PANEL_TITLES["amodal_instances"], _panel(drawn, (h, w))))
    panoptic = outputs.get("panoptic_seg")
    if panoptic is not None:
        drawn = vis().draw_panoptic(panoptic[0], panoptic[1])
        panels.append((PANEL_TITLES["panoptic_seg"], _panel(drawn, (h, w))))
    if outputs.get("amodal_panoptic_seg") is not None:
        pan_ids = panoptic[0] if panoptic is not None else None
        drawn = vis().draw_amodal_panoptic(outputs["amodal_panoptic_seg"], pan_ids)
        panels.append((PANEL_TITLES["amodal_panoptic_seg"], _panel(drawn, (h, w))))
    missing = [k for k in PANEL_TITLES if k not in outputs and k != "amodal_instances"]
    if missing:
        logger.info("Outputs without %s: those panels are left out", ", ".join(missing))

    bar_h = int(np.clip(h // 10, 18, 40))
    rows = []
    for title, image in panels:
        rows.append(_title_bar(title, w, bar_h))
        rows.append(image)
    return np.ascontiguousarray(np.concatenate(rows, axis=0))
