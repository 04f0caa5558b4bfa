"""A background thread that writes the pseudo-label files of one image while the next is
computed.

Each image's files cost a few milliseconds of PNG compression, RLE encoding and JSON, and one
``fsync`` per file (``unlock.utils.file_io``: about 7 ms each on a virtual disk, pure waiting).
Handing the write of image i to one thread overlaps it with the inference (pass 1) or the
labelling (pass 2) of image i + 1. The files are the same bytes: the same functions write them,
one image at a time and in order, each image's JSON (its completion marker) last, so a killed run
still resumes from the images whose JSON exists.

At most ``depth`` images wait for the writer (memory stays one or two records); the first error
of a write is raised in the caller, at its next ``submit`` or at ``close``; after it the
writer runs nothing more.
"""

import queue
import threading
from typing import Callable, Optional

__all__ = ["BackgroundWriter"]

_STOP = object()


class BackgroundWriter:
    """Runs ``fn(*args)`` calls in one thread, in submission order.

    Use as a context manager: leaving the block waits for every submitted write (also when the
    block raises, so that no write is cut short) and raises a write's error, if any.
    """

    def __init__(self, depth: int = 1, name: str = "pseudo-label-writer"):
        self._queue: "queue.Queue" = queue.Queue(maxsize=max(1, depth))
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if self._error is None:  # after an error, drain without writing
                fn, args = item
                try:
                    fn(*args)
                except BaseException as e:  # noqa: B902 - re-raised in the caller
                    self._error = e

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, fn: Callable, *args) -> None:
        """Queues ``fn(*args)``; blocks while ``depth`` writes are already waiting."""
        self._check()
        self._queue.put((fn, args))

    def close(self) -> None:
        """Waits for every submitted write; raises the first write error."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        self._check()

    def __enter__(self) -> "BackgroundWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
            return
        try:
            self.close()  # let the writes already handed over finish
        except BaseException:  # noqa: B902 - the block's own error is the one to report
            pass
