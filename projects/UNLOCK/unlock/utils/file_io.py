"""Atomic file writes: a crash never leaves a half-written file under the final name."""
import json
import os
import tempfile
from typing import Any

import numpy as np
from PIL import Image


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic_write(path: str, write_fn, mode: str = "wb") -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=directory)
    try:
        # mkstemp creates 0600 files; give the final file the permissions open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_with(path: str, write_fn) -> None:
    """Atomically writes ``path`` with ``write_fn(binary file)`` (e.g. ``torch.save``)."""
    _atomic_write(path, write_fn)


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Writes ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    _atomic_write(path, lambda f: f.write(data))


def atomic_write_json(path: str, obj: Any, indent=None) -> None:
    """Writes ``obj`` as JSON to ``path`` atomically.

    ``json.dumps`` + one write gives the bytes of ``json.dump`` (same encoder options), but
    runs the C encoder: ``json.dump`` streams through the pure-Python one, which costs a few ms
    per OPLL file of 100 detections."""
    text = json.dumps(obj, indent=indent)  # a non-serialisable obj fails before the file exists
    _atomic_write(path, lambda f: f.write(text), mode="w")


def atomic_write_image(path: str, array: np.ndarray, mode=None) -> None:
    """Writes an image array atomically; the format follows the extension (PNG keeps 16-bit)."""
    image = Image.fromarray(array, mode=mode) if mode else Image.fromarray(array)
    fmt = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}[os.path.splitext(path)[1].lower()]
    kwargs = {"quality": 95} if fmt == "JPEG" else {}
    _atomic_write(path, lambda f: image.save(f, format=fmt, **kwargs))


def read_json(path: str) -> Any:
    """Reads a JSON file; a malformed file raises ValueError naming the file."""
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from e
