"""Checks on dataset files that fail with an error naming the file and the problem.

Every loader and the mapper read files through these helpers, so a broken dataset stops with
``DatasetFormatError: <path>: <what is wrong>`` instead of a ``KeyError`` deep in a worker (the
authors' loaders raise a bare ``KeyError`` for a missing amodal entry).
"""

import os
from typing import Iterable, Optional, Tuple

import numpy as np
from detectron2.data.detection_utils import convert_PIL_to_numpy
from PIL import Image, UnidentifiedImageError

__all__ = [
    "DatasetFormatError",
    "README_HINT",
    "check_dir",
    "check_file",
    "image_size_from_header",
    "read_image_checked",
    "read_label_png",
    "check_same_size",
    "check_category_ids",
]

README_HINT = "see datasets/README.md for the expected layout"


class DatasetFormatError(ValueError):
    """A dataset file is missing, unreadable or inconsistent; the message names the file."""


def check_dir(path: str, dataset_name: str, what: str = "folder") -> None:
    """Raises DatasetFormatError when ``path`` is not a directory (a dataset is not prepared)."""
    if not os.path.isdir(path):
        raise DatasetFormatError(
            f"{path}: {what} of dataset {dataset_name!r} is missing ({README_HINT}; the root is "
            f"$DETECTRON2_DATASETS, default './datasets')"
        )


def check_file(path: str, what: str, context: str = "") -> None:
    """Raises DatasetFormatError when ``path`` is not an existing file."""
    if not os.path.isfile(path):
        extra = f" (referenced by {context})" if context else ""
        raise DatasetFormatError(f"{path}: {what} is missing{extra}")


def image_size_from_header(path: str, what: str = "image") -> Tuple[int, int]:
    """(height, width) read from the file header only, which is cheap enough for load time.

    A missing file or one whose header PIL cannot parse raises DatasetFormatError; damage later in
    the file is only found when the pixels are decoded (map time, ``read_image_checked``).
    """
    check_file(path, what)
    try:
        with Image.open(path) as im:
            width, height = im.size
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise DatasetFormatError(f"{path}: corrupt or unreadable {what} ({e})") from e
    return height, width


def _open_and_decode(path: str, what: str) -> Image.Image:
    check_file(path, what)
    try:
        im = Image.open(path)
        im.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DatasetFormatError(f"{path}: corrupt or unreadable {what} ({e})") from e
    return im


def read_image_checked(path: str, image_format: Optional[str] = None) -> np.ndarray:
    """Reads an RGB/BGR image like ``detectron2.data.detection_utils.read_image``.

    Unlike detectron2, a missing, truncated or corrupt file raises DatasetFormatError naming it.

    Returns:
        (H, W, C) uint8 array in ``image_format`` (a PIL mode or "BGR").
    """
    from detectron2.data.detection_utils import _apply_exif_orientation

    im = _open_and_decode(path, "image")
    return convert_PIL_to_numpy(_apply_exif_orientation(im), image_format)


def read_label_png(path: str, what: str = "label PNG") -> np.ndarray:
    """Reads a label image without any colour conversion.

    Returns:
        (H, W) array for single-channel files (8, 16 or 32 bit as stored; palette "P" files
        give their indices), (H, W, 3) uint8 for RGB files (an alpha channel is dropped).
    """
    im = _open_and_decode(path, what)
    if im.mode in ("RGBA", "LA"):
        im = im.convert(im.mode[:-1])
    arr = np.asarray(im)
    if arr.ndim == 3 and arr.shape[2] != 3:
        raise DatasetFormatError(f"{path}: {what} has {arr.shape[2]} channels, expected 1 or 3")
    return arr


def check_same_size(
    ref_path: str, ref_hw: Tuple[int, int], other_path: str, other_hw: Tuple[int, int]
) -> None:
    """Raises DatasetFormatError when two files that must be pixel-aligned differ in size."""
    if tuple(ref_hw) != tuple(other_hw):
        raise DatasetFormatError(
            f"{other_path}: size (H, W)={tuple(other_hw)} does not match {ref_path} "
            f"(H, W)={tuple(ref_hw)}"
        )


def check_category_ids(
    category_ids: Iterable[int], valid_ids: Iterable[int], path: str, context: str = ""
) -> None:
    """Raises DatasetFormatError when a category id is not in the class table."""
    valid = set(valid_ids)
    bad = sorted({int(c) for c in category_ids if int(c) not in valid})
    if bad:
        where = f" ({context})" if context else ""
        raise DatasetFormatError(
            f"{path}: category ids {bad} are outside the class table{where}; expected trainIds "
            f"{min(valid)}..{max(valid)}"
        )
