"""Drawing the five UNLOCK outputs, and amodal ground truth, on an image.

``AmodalVisualizer`` extends detectron2's ``Visualizer`` with amodal drawing: the visible part of
an object is filled solid, the occluded part (amodal minus visible, the region the paper's
amodal branches hallucinate, Sec. 3.1) is filled with diagonal stripes, and the whole amodal
extent gets a dashed outline. Stripes are rasterised rather than drawn as matplotlib hatches so
that occluded regions with holes (an object seen through a gap) render correctly.
``unlock.utils.five_outputs`` composes its panels into one picture.
"""

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import cv2
import matplotlib as mpl
import matplotlib.colors as mplc
import numpy as np
import torch
from detectron2.data.catalog import Metadata
from detectron2.structures import BoxMode
from detectron2.utils.visualizer import VisImage, Visualizer
from PIL import Image

# Not unlock.data: importing that package registers every dataset, which drawing never needs.
from unlock.utils.masks import decode_segmentation, mask_to_box, rgb_to_id
from unlock.panorama.seam import crosses_seam, unwrapped_box

__all__ = ["AmodalVisualizer", "rgb2id"]

_VISIBLE_ALPHA = 0.6
_STRIPE_ALPHA = (0.75, 0.12)  # on-stripe, between stripes


def as_metadata(metadata: Union[Metadata, Mapping, None]) -> Metadata:
    if metadata is None or isinstance(metadata, Metadata):
        return metadata
    return Metadata(name="unlock_vis").set(**dict(metadata))


def _to_numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def count_instances(instances) -> int:
    # A fieldless Instances has no __len__; it means no detections.
    return len(instances) if instances.get_fields() else 0


# The data loaders' colour -> id conversion, under the name this module has always exported.
rgb2id = rgb_to_id



def _seam_box_pieces(mask: Optional[np.ndarray]) -> List[Tuple[float, float, float, float]]:
    """The two side pieces of the unwrapped box of a mask that crosses the seam, else []."""
    if mask is None or not crosses_seam(mask):
        return []
    x0, y0, x1, y1 = unwrapped_box(mask)
    if x0 >= 0:  # the object spans the whole width: one flat box
        return []
    width = mask.shape[1]
    return [(x0 + width, y0, float(width), y1), (0.0, y0, x1, y1)]

class AmodalVisualizer(Visualizer):
    """detectron2 ``Visualizer`` for semantic, (amodal) instance and (amodal) panoptic outputs.

    Args:
        img_rgb: (H, W, 3) RGB image, values in [0, 255].
        metadata: ``Metadata`` or a dict such as ``unlock.classes.class_metadata("k2b")``
            (``thing_classes``, ``thing_colors``, ``stuff_classes``, ``stuff_colors``).
        scale: as in ``Visualizer``.
    """

    def __init__(self, img_rgb: np.ndarray, metadata=None, scale: float = 1.0, **kwargs):
        super().__init__(img_rgb, as_metadata(metadata), scale=scale, **kwargs)
        # Each mask is an ``imshow`` of its box, and with autoscaling on matplotlib sets the view
        # to the extent of the last one: a 1-pixel mask without a contour left the whole panel
        # showing that pixel. The view is the image, always.
        self.output.ax.set_autoscale_on(False)

    # ----------------------------------------------------------------------------- primitives
    def _thing_color(self, category_id: int, k: int = 0) -> Tuple[float, float, float]:
        colors = self.metadata.get("thing_colors", None)
        base = [c / 255 for c in colors[category_id]] if colors else (0.2, 0.6, 1.0)
        # Deterministic per-instance shade (detectron2 jitters randomly) so that neighbours of
        # one class stay apart and two runs draw the same picture.
        return self._change_color_brightness(base, ((k % 5) - 2) * 0.18)

    def _thing_name(self, category_id: int) -> str:
        names = self.metadata.get("thing_classes", None)
        return names[category_id] if names and 0 <= category_id < len(names) else str(category_id)

    def _draw_rgba_crop(self, mask: np.ndarray, color, alpha: np.ndarray) -> None:
        """Blends ``color`` with per-pixel ``alpha`` (H, W) where ``mask``, as one cropped layer.

        Raster layers cropped to the mask's box keep the cost independent of how fragmented a
        mask is (an untrained model's masks have ~100 polygons each, which matplotlib draws
        slowly) and of the image size.
        """
        box = mask_to_box(mask)
        if box is None:
            return
        x0, y0, x1, y1 = (int(v) for v in box)
        crop = mask[y0:y1, x0:x1]
        rgba = np.zeros(crop.shape + (4,), dtype=np.float32)
        rgba[..., :3] = mplc.to_rgb(color)
        rgba[..., 3] = alpha[y0:y1, x0:x1] * crop
        self.output.ax.imshow(rgba, extent=(x0, x1, y1, y0), interpolation="nearest")

    def _draw_striped_mask(self, mask: np.ndarray, color) -> None:
        """Fills ``mask`` (H, W bool) with diagonal stripes of ``color``."""
        h, w = mask.shape
        period = max(2, int(round(min(h, w) / 60)))
        yy, xx = np.ogrid[0:h, 0:w]
        on_stripe = ((xx + yy) // period) % 2 == 0
        self._draw_rgba_crop(mask, color, np.where(on_stripe, *_STRIPE_ALPHA))

    def _draw_outline(self, mask: np.ndarray, color, dashed: bool) -> None:
        """Draws the contours of ``mask`` as one line collection (solid or dashed)."""
        box = mask_to_box(mask)
        if box is None:
            return
        x0, y0, x1, y1 = (int(v) for v in box)
        crop = np.pad(mask[y0:y1, x0:x1].astype(np.uint8), 1)
        contours, _ = cv2.findContours(crop, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
        # Contours run through pixel centres; +0.5 puts them on the image grid, -1 undoes the pad.
        lines = [
            np.concatenate([c[:, 0], c[:1, 0]]).astype(np.float64) + (x0 - 0.5, y0 - 0.5)
            for c in contours
            if len(c) >= 2
        ]
        if not lines:
            return
        self.output.ax.add_collection(
            mpl.collections.LineCollection(
                lines,
                colors=[mplc.to_rgb(color) + (1.0,)],
                linestyles=(0, (4, 2)) if dashed else "solid",
                linewidths=max(self._default_font_size // 12 * self.output.scale, 1),
            )
        )

    def draw_amodal_object(
        self,
        visible: Optional[np.ndarray],
        amodal: Optional[np.ndarray],
        color,
        *,
        label: Optional[str] = None,
        box: Optional[Sequence[float]] = None,
    ) -> VisImage:
        """Draws one object: visible part solid, occluded part striped, amodal extent dashed.

        Args:
            visible: (H, W) bool visible mask, or None.
            amodal: (H, W) bool amodal mask, or None (then only the visible part is drawn).
            color: matplotlib colour.
            label: text drawn at the top-left corner of ``box`` (or of the masks' box).
            box: XYXY_ABS box to draw, or None.
        """
        if visible is not None and visible.any():
            self._draw_rgba_crop(visible, color, np.full(visible.shape, _VISIBLE_ALPHA))
            self._draw_outline(visible, color, dashed=False)
        if amodal is not None and amodal.any():
            occluded = amodal & ~visible if visible is not None else amodal
            self._draw_striped_mask(occluded, color)
            self._draw_outline(amodal, color, dashed=True)
        union = amodal if amodal is not None else visible
        pieces = _seam_box_pieces(union)
        if box is not None and pieces:
            # One object across the 360° seam: its box is drawn in two pieces, one per side,
            # in the object's one colour (docs/design.md "Seamless 360°").
            for piece in pieces:
                self.draw_box(piece, edge_color=color, line_style="-")
            box = max(pieces, key=lambda b: b[2] - b[0])
        elif box is not None:
            self.draw_box(box, edge_color=color, line_style="-")
        if label:
            anchor = box
            if anchor is None:
                anchor = mask_to_box(union) if union is not None else None
            if anchor is not None:
                self.draw_text(
                    label,
                    (anchor[0], anchor[1]),
                    color=self._change_color_brightness(color, 0.7),
                    horizontal_alignment="left",
                    font_size=self._default_font_size * 0.8,
                )
        return self.output

    # --------------------------------------------------------------------------- model outputs
    def draw_semantic(self, sem_seg: Union[torch.Tensor, np.ndarray], alpha: float = 0.6):
        """Draws semantic segmentation in the colours of the metadata's classes.

        Args:
            sem_seg: (C, H, W) scores/probabilities (argmax is taken) or (H, W) trainIds;
                values outside 0..C-1 (255 = ignore) are not drawn.
        """
        sem = _to_numpy(sem_seg)
        if sem.ndim == 3:
            sem = sem.argmax(axis=0)
        if sem.ndim != 2:
            raise ValueError(f"sem_seg must be (C, H, W) or (H, W), got shape {sem.shape}")
        return self.draw_sem_seg(sem.astype(np.int64), area_threshold=0, alpha=alpha)

    def _instance_colors(self, classes: Sequence[int]) -> List[Tuple[float, float, float]]:
        seen: Dict[int, int] = {}
        colors = []
        for c in classes:
            colors.append(self._thing_color(c, seen.get(c, 0)))
            seen[c] = seen.get(c, 0) + 1
        return colors

    def _labels(self, classes: Sequence[int], scores: Optional[Sequence[float]]) -> List[str]:
        names = [self._thing_name(c) for c in classes]
        if scores is None:
            return names
        return [f"{n} {s * 100:.0f}%" for n, s in zip(names, scores)]

    def draw_instances_visible(self, instances) -> VisImage:
        """Draws visible instance masks (``pred_masks``) with their (amodal) boxes and scores.

        Masks are filled as raster layers with a solid outline, in the style of ``Visualizer``
        (whose polygon drawing is too slow for the fragmented masks of an untrained model).
        """
        if count_instances(instances) == 0:
            return self.output
        instances = instances.to("cpu")
        classes = instances.pred_classes.tolist() if instances.has("pred_classes") else []
        scores = instances.scores.tolist() if instances.has("scores") else None
        masks = (
            _to_numpy(instances.pred_masks).astype(bool) if instances.has("pred_masks") else None
        )
        boxes = _to_numpy(instances.pred_boxes.tensor) if instances.has("pred_boxes") else None
        colors = self._instance_colors(classes)
        labels = self._labels(classes, scores)
        areas = masks.reshape(len(masks), -1).sum(1) if masks is not None else np.zeros(len(labels))
        for i in np.argsort(-areas, kind="stable"):  # largest first: small objects stay on top
            self.draw_amodal_object(
                masks[i] if masks is not None else None,
                None,
                colors[i],
                label=labels[i],
                box=boxes[i] if boxes is not None else None,
            )
        return self.output

    def draw_amodal_instances(self, instances) -> VisImage:
        """Draws amodal instances: ``pred_masks`` solid, ``pred_amodal_masks`` minus it striped.

        Labels read "<class> <score>% occl <occluded fraction of the amodal area>%".
        """
        if count_instances(instances) == 0:
            return self.output
        instances = instances.to("cpu")
        if not instances.has("pred_amodal_masks"):
            raise ValueError("instances have no 'pred_amodal_masks' (is MODEL.AMODAL_ON off?)")
        amodal = _to_numpy(instances.pred_amodal_masks).astype(bool)
        visible = (
            _to_numpy(instances.pred_masks).astype(bool)
            if instances.has("pred_masks")
            else np.zeros_like(amodal)
        )
        classes = instances.pred_classes.tolist()
        scores = instances.scores.tolist() if instances.has("scores") else None
        boxes = _to_numpy(instances.pred_boxes.tensor) if instances.has("pred_boxes") else None
        colors = self._instance_colors(classes)
        labels = self._labels(classes, scores)
        # Largest first so that small objects stay on top.
        for i in np.argsort(-amodal.reshape(len(amodal), -1).sum(1), kind="stable"):
            area = int(amodal[i].sum())
            occ = int((amodal[i] & ~visible[i]).sum())
            label = f"{labels[i]} occl {100 * occ / area:.0f}%" if area else labels[i]
            self.draw_amodal_object(
                visible[i],
                amodal[i],
                colors[i],
                label=label,
                box=boxes[i] if boxes is not None else None,
            )
        return self.output

    def draw_panoptic(self, panoptic_seg, segments_info: List[Dict], alpha: float = 0.6):
        """Draws panoptic output with detectron2's ``draw_panoptic_seg``.

        Args:
            panoptic_seg: (H, W) int ids, 0 = void.
            segments_info: entries {id, isthing, category_id (thing 0..6; stuff trainId)}.
        """
        seg = torch.as_tensor(_to_numpy(panoptic_seg).astype(np.int64))
        # draw_panoptic_seg writes "area" into the dicts: hand it copies.
        info = [dict(s) for s in segments_info]
        return self.draw_panoptic_seg(seg, info, area_threshold=0, alpha=alpha)

    def draw_amodal_panoptic(self, amodal_panoptic_seg: Dict, panoptic_seg=None) -> VisImage:
        """Draws amodal panoptic output: stuff colours, then overlapping amodal thing masks.

        Args:
            amodal_panoptic_seg: dict(stuff_seg (H, W) semantic id or the ignore label,
                thing_masks (K, H, W) bool, segments_info [{id 1..K, category_id (detector
                class), score, visible_id, ...}]).
            panoptic_seg: optional (H, W) visible panoptic ids. With it, the occluded part of a
                thing is its amodal mask minus its visible segment (``visible_id``); without it,
                the parts shared with another amodal mask are drawn striped.
        """
        stuff = _to_numpy(amodal_panoptic_seg["stuff_seg"]).astype(np.int64)
        self.draw_sem_seg(stuff, area_threshold=0, alpha=_VISIBLE_ALPHA)
        masks = _to_numpy(amodal_panoptic_seg["thing_masks"]).astype(bool)
        infos = list(amodal_panoptic_seg.get("segments_info", []))
        if len(infos) == 0:
            return self.output
        pan = _to_numpy(panoptic_seg) if panoptic_seg is not None else None
        coverage = masks.sum(axis=0) if len(masks) else np.zeros(stuff.shape, dtype=np.int64)
        colors = self._instance_colors([s["category_id"] for s in infos])
        for info in infos:
            if not 1 <= info["id"] <= len(masks):
                raise ValueError(
                    f"amodal segment id {info['id']} has no thing mask (thing_masks has "
                    f"{len(masks)}; ids must be 1..K)"
                )
        order = sorted(range(len(infos)), key=lambda j: -int(masks[infos[j]["id"] - 1].sum()))
        for j in order:
            info = infos[j]
            amodal = masks[info["id"] - 1]
            if pan is not None:
                visible = (pan == info.get("visible_id", 0)) & (info.get("visible_id", 0) > 0)
                visible &= amodal
            else:
                visible = amodal & (coverage < 2)
            label = self._thing_name(info["category_id"])
            if "score" in info:
                label = f"{label} {info['score'] * 100:.0f}%"
            self.draw_amodal_object(visible, amodal, colors[j], label=label)
        return self.output

    # ------------------------------------------------------------------------------ datasets
    def _dataset_semantic(self, dic: Dict) -> Optional[np.ndarray]:
        if dic.get("sem_seg_file_name"):
            return np.asarray(_open_label(dic["sem_seg_file_name"]), dtype=np.int64)
        if dic.get("pan_seg_file_name"):
            labels = np.asarray(_open_label(dic["pan_seg_file_name"]))
            # RGB id PNGs, or single-channel integer ids (AmodalSynthDrive), as the loaders read.
            ids = rgb_to_id(labels[..., :3]) if labels.ndim == 3 else labels.astype(np.int64)
            sem = np.full(ids.shape, 255, dtype=np.int64)
            for seg in dic.get("segments_info", []):
                sem[ids == seg["id"]] = seg["category_id"]
            return sem
        return None

    def draw_dataset_dict_amodal(self, dic: Dict) -> VisImage:
        """Draws ground truth of an UNLOCK dataset dict (docs/design.md "Dataset dicts").

        Semantic colours come from ``sem_seg_file_name`` or ``pan_seg_file_name`` +
        ``segments_info``; each annotation is drawn with its visible mask solid, its occluded part
        striped and its amodal outline dashed (amodal box in the class colour).

        Raises:
            FileNotFoundError / ValueError: naming the file that is missing or does not fit.
        """
        name = dic.get("file_name", "<dataset dict>")
        sem = self._dataset_semantic(dic)
        if sem is not None:
            if sem.shape != (self.output.height, self.output.width):
                raise ValueError(
                    f"{name}: label map is {sem.shape[1]}x{sem.shape[0]} but the image is "
                    f"{self.output.width}x{self.output.height}"
                )
            self.draw_sem_seg(sem, area_threshold=0, alpha=0.45)
        height = dic.get("height", self.output.height)
        width = dic.get("width", self.output.width)
        annos = dic.get("annotations", [])
        colors = self._instance_colors([a["category_id"] for a in annos])
        for anno, color in zip(annos, colors):
            visible = _decode_optional(anno.get("segmentation"), height, width, name)
            amodal = _decode_optional(anno.get("amodal_segmentation"), height, width, name)
            box = None
            if anno.get("bbox") is not None:
                box = BoxMode.convert(
                    list(anno["bbox"]), anno.get("bbox_mode", BoxMode.XYXY_ABS), BoxMode.XYXY_ABS
                )
            self.draw_amodal_object(
                visible, amodal, color, label=self._thing_name(anno["category_id"]), box=box
            )
        return self.output


def _open_label(path: str) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()
        return image
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{path}: label file not found") from e
    except OSError as e:
        raise ValueError(f"{path}: not a readable label image ({e})") from e


def _decode_optional(segm, height: int, width: int, name: str) -> Optional[np.ndarray]:
    if segm is None:
        return None
    mask = decode_segmentation(segm, height, width)
    if mask.shape != (height, width):
        raise ValueError(f"{name}: mask of size {mask.shape} in an image of {(height, width)}")
    return mask
