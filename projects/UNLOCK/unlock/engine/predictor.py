"""Using a trained UNLOCK model on single images: config loading, input checks, the predictor.

``UnlockPredictor`` plays the role of detectron2's ``DefaultPredictor`` for the five UNLOCK
outputs (docs/design.md "Model outputs"). It differs in three ways: weights go through
:func:`unlock.utils.checkpoint.load_weights` (typed errors instead of silent skips), any image
size is accepted (pinhole frames and 2048x400 panoramas alike; the model pads to its size
divisibility), and outputs come back on the CPU ready for the visualizer and the exporters.
"""

import glob
import logging
import os
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from detectron2.config import CfgNode
from detectron2.data import transforms as T
from detectron2.data.catalog import Metadata
from detectron2.data.detection_utils import read_image
from detectron2.modeling import build_model
from detectron2.structures import Instances
from PIL import Image, UnidentifiedImageError

from unlock.config.loading import ConfigLoadError, load_config  # noqa: F401 (re-exported)
from unlock.utils.checkpoint import load_weights

logger = logging.getLogger(__name__)

__all__ = [
    "ConfigLoadError",
    "InputImageError",
    "NoInputImagesError",
    "IMAGE_EXTENSIONS",
    "load_config",
    "collect_image_paths",
    "check_image_file",
    "load_image",
    "outputs_to_cpu",
    "UnlockPredictor",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class InputImageError(ValueError):
    """An input path is missing or is not a readable image."""


class NoInputImagesError(InputImageError):
    """An input folder or glob pattern yields no image."""


def collect_image_paths(inputs: Sequence[str]) -> List[str]:
    """Expands files, folders (their images, not recursive) and glob patterns into image paths.

    Args:
        inputs: paths, folders or glob patterns (``*``, ``?``, ``[``).

    Returns:
        Sorted paths per input, in input order, without duplicates.

    Raises:
        NoInputImagesError: no inputs, an empty folder, or a pattern that matches nothing.
        InputImageError: a named file does not exist.
    """
    if not inputs:
        raise NoInputImagesError("no input given (pass image files, a folder or a glob pattern)")
    paths: List[str] = []
    for item in inputs:
        if os.path.isdir(item):
            found = sorted(
                os.path.join(item, n)
                for n in os.listdir(item)
                if n.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(item, n))
            )
            if not found:
                raise NoInputImagesError(
                    f"{item}: folder contains no images (looked for {', '.join(IMAGE_EXTENSIONS)})"
                )
        elif glob.has_magic(item):
            found = sorted(p for p in glob.glob(item) if os.path.isfile(p))
            if not found:
                raise NoInputImagesError(f"{item}: pattern matches no file")
        elif os.path.isfile(item):
            found = [item]
        else:
            raise InputImageError(f"{item}: input not found")
        paths.extend(p for p in found if p not in paths)
    return paths


def check_image_file(path: str) -> None:
    """Raises :class:`InputImageError` naming ``path`` unless its header is a readable image."""
    try:
        with Image.open(path) as im:
            im.size  # noqa: B018  (the header is parsed lazily)
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise InputImageError(f"{path}: not an image ({type(e).__name__}: {e})") from e


def load_image(path: str, fmt: str = "BGR") -> np.ndarray:
    """Reads an image (EXIF orientation applied) as (H, W, 3) uint8 in ``fmt`` ("BGR"/"RGB").

    Raises:
        InputImageError: naming ``path`` when it is not a decodable image.
    """
    try:
        image = read_image(path, format=fmt)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise InputImageError(f"{path}: not an image ({type(e).__name__}: {e})") from e
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3])


def outputs_to_cpu(outputs: Any) -> Any:
    """Moves every tensor / ``Instances`` of a (nested) model output to the CPU."""
    if isinstance(outputs, (torch.Tensor, Instances)):
        return outputs.to("cpu")
    if isinstance(outputs, dict):
        return {k: outputs_to_cpu(v) for k, v in outputs.items()}
    if isinstance(outputs, (list, tuple)):
        return type(outputs)(outputs_to_cpu(v) for v in outputs)
    return outputs


class UnlockPredictor:
    """Runs a trained UNLOCK model on one image of any size.

    Args:
        cfg: config from :func:`load_config` (not modified).
        weights: checkpoint to load; defaults to ``cfg.MODEL.WEIGHTS``.
        allow_shape_mismatch: see :func:`unlock.utils.checkpoint.load_weights`.

    Attributes:
        model: the built model, in eval mode.
        metadata: ``Metadata`` of the model's class table (class names and colours): the
            metadata of the config's registered datasets, else the built-in table
            ``cfg.UNLOCK.DATA.CLASS_TABLE``, so that no dataset needs to be registered.

    Example::

        predictor = UnlockPredictor(load_config("configs/K2B/unlock.yaml", ["MODEL.WEIGHTS", w]))
        outputs = predictor(load_image("pano.png"))   # sem_seg, instances, panoptic_seg, ...
    """

    def __init__(
        self, cfg: CfgNode, *, weights: Optional[str] = None, allow_shape_mismatch: bool = False
    ):
        self.cfg = cfg.clone()
        try:
            self.model = build_model(self.cfg)
        except KeyError as e:
            if "registry" not in str(e):
                raise
            raise ConfigLoadError(
                f"cannot build MODEL.META_ARCHITECTURE={cfg.MODEL.META_ARCHITECTURE!r}: {e.args[0]}"
            ) from e
        except (ValueError, AssertionError) as e:
            # from_config checks (e.g. the semantic head's class count) reject the config itself.
            raise ConfigLoadError(f"the config does not describe a valid model: {e}") from e
        self.model.eval()
        load_weights(
            self.model,
            cfg.MODEL.WEIGHTS if weights is None else weights,
            allow_shape_mismatch=allow_shape_mismatch,
        )
        table = self.model.class_table
        self.metadata = Metadata(name=f"unlock_{table.name}").set(**table.metadata())
        self.aug = T.ResizeShortestEdge(
            [cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MIN_SIZE_TEST], cfg.INPUT.MAX_SIZE_TEST
        )
        self.input_format = cfg.INPUT.FORMAT
        if self.input_format not in ("RGB", "BGR"):
            raise ConfigLoadError(f"INPUT.FORMAT must be RGB or BGR, got {self.input_format!r}")

    def __call__(self, original_image: np.ndarray) -> Dict[str, Any]:
        """Predicts the five outputs of one image.

        Args:
            original_image: (H, W, 3) uint8 image in **BGR** order (as ``cv2.imread``), any size.

        Returns:
            The model's output dict for this image (``sem_seg``, ``instances``, ``panoptic_seg``,
            ``amodal_panoptic_seg``; docs/design.md), at the original resolution, on the CPU.
        """
        if not isinstance(original_image, np.ndarray) or original_image.ndim != 3:
            raise InputImageError(
                f"expected an (H, W, 3) image array, got {getattr(original_image, 'shape', None)}"
            )
        if original_image.shape[2] != 3 or min(original_image.shape[:2]) < 1:
            raise InputImageError(f"expected an (H, W, 3) image, got {original_image.shape}")
        if self.input_format == "RGB":
            original_image = original_image[:, :, ::-1]
        height, width = original_image.shape[:2]
        image = self.aug.get_transform(original_image).apply_image(original_image)
        tensor = torch.as_tensor(np.ascontiguousarray(image).astype("float32").transpose(2, 0, 1))
        tensor = tensor.to(self.cfg.MODEL.DEVICE)
        with torch.no_grad():
            outputs = self.model([{"image": tensor, "height": height, "width": width}])[0]
        return outputs_to_cpu(outputs)
