"""A crash-safe ``metrics.json`` writer.

detectron2's ``JSONWriter`` opens ``metrics.json`` for appending when the trainer is built, so a
kill before the first write leaves a 0-byte file and a kill during a write a truncated last line.
:class:`AtomicJSONWriter` keeps detectron2's format (one JSON object per line, appended on resume)
but replaces the whole file atomically at every write (``unlock.utils.file_io``), so the file on
disk is always a complete set of lines. After a resume, the lines the killed run wrote for
iterations past its checkpoint are replaced by the resumed run's.
"""

import json
import os

from detectron2.utils.events import JSONWriter

from .file_io import atomic_write_bytes

__all__ = ["AtomicJSONWriter"]


class _AtomicLinesFile:
    """The minimal file interface ``JSONWriter`` uses (write, flush, close)."""

    def __init__(self, path: str):
        self.path = path
        self._text = ""
        if os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            # A line cut by a kill of an older writer is dropped rather than carried on.
            self._text = text[: text.rfind("\n") + 1]
        self._pending = []
        self._first_flush = True

    def _drop_from(self, iteration) -> None:
        """A resumed run rewrites the iterations after its checkpoint: the lines that the killed
        run wrote for them go, so every iteration appears once."""
        if iteration is None:
            return
        kept = []
        for line in self._text.splitlines(True):
            line_iteration = _iteration(line)
            if line_iteration is None or line_iteration < iteration:
                kept.append(line)
        self._text = "".join(kept)

    def write(self, text: str) -> None:
        self._pending.append(text)

    def flush(self) -> None:
        if not self._pending:
            return
        if self._first_flush and self._text:
            self._drop_from(_iteration(self._pending[0]))
        self._first_flush = False
        self._text += "".join(self._pending)
        self._pending = []
        atomic_write_bytes(self.path, self._text.encode("utf-8"))

    def close(self) -> None:
        self.flush()


def _iteration(line: str):
    try:
        value = json.loads(line).get("iteration")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None


class AtomicJSONWriter(JSONWriter):
    """``JSONWriter`` whose file is always complete on disk (see the module docstring)."""

    def __init__(self, json_file: str, window_size: int = 20):
        # JSONWriter.__init__ would open (and so create) the file at once: set its fields here.
        self._file_handle = _AtomicLinesFile(json_file)
        self._window_size = window_size
        self._last_write = -1
