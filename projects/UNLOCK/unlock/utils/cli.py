"""The error convention of every ``tools/*.py`` entry point (README "Errors and crash safety").

A *user error* (a config key, a file, a dataset, a checkpoint that is wrong) ends the run with one
line on stderr, ``<tool>: error: <file>: <problem>``, and exit status 2 (the status argparse uses
for a bad command line). Anything else is a bug and keeps its traceback; ``--debug`` shows the
traceback of user errors too. The exception types below are the ones this package raises for bad
input; each message starts with the file (or dataset, or config key) it is about.
"""

import argparse
import logging
import os
import sys
import tempfile
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Type

logger = logging.getLogger(__name__)

__all__ = [
    "EXIT_USER_ERROR",
    "UserError",
    "OutputDirError",
    "EmptyDatasetError",
    "user_error_types",
    "format_user_error",
    "add_debug_argument",
    "run_tool",
    "launch_tool",
    "prepare_output_dir",
    "check_registered",
    "load_dataset_checked",
    "empty_dataset_error",
    "remove_stale_temp_files",
]

EXIT_USER_ERROR = 2


class UserError(Exception):
    """Bad input that the user can fix; the message starts with the file or dataset concerned."""


class OutputDirError(UserError, OSError):
    """An output folder cannot be created or written to."""


class EmptyDatasetError(UserError, ValueError):
    """A registered dataset has no images."""


def user_error_types() -> Tuple[Type[BaseException], ...]:
    """The exception types reported as one line (imported here so that every tool agrees)."""
    from ..config.loading import ConfigLoadError
    from ..data.validation import DatasetFormatError
    from ..engine.predictor import InputImageError
    from .checkpoint import CheckpointError

    return (UserError, ConfigLoadError, DatasetFormatError, CheckpointError, InputImageError)


def format_user_error(tool: str, exc: BaseException) -> str:
    """``<tool>: error: <message>`` on one line (newlines in the message are folded)."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    return f"{tool}: error: {message}"


def add_debug_argument(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds ``--debug``: user errors raise with their traceback instead of one line."""
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of input errors too"
    )
    return parser


def run_tool(tool: str, fn: Callable[[], Optional[int]], *, debug: bool = False) -> int:
    """Runs ``fn`` and applies the convention: 0 (or ``fn``'s status), 2 on a user error.

    Args:
        tool: the script name shown in the message, e.g. ``"train_net.py"``.
        fn: the tool's body.
        debug: re-raise user errors (``--debug``).
    """
    try:
        status = fn()
    except user_error_types() as e:
        if debug:
            raise
        print(format_user_error(tool, e), file=sys.stderr)
        return EXIT_USER_ERROR
    return status if isinstance(status, int) else 0


def launch_tool(tool: str, main: Callable, args, **launch_kwargs) -> int:
    """detectron2's ``launch(main, ...)`` under the convention, also with several processes.

    A user error in a spawned worker is printed there in one line and ends that worker with
    status 2; the parent then exits with 2 too instead of re-raising torch's wrapper exception.
    """
    from detectron2.engine import launch

    debug = getattr(args, "debug", False)

    def body():
        launch(
            _worker,
            args.num_gpus,
            num_machines=args.num_machines,
            machine_rank=args.machine_rank,
            dist_url=args.dist_url,
            args=(tool, main, args),
            **launch_kwargs,
        )

    try:
        return run_tool(tool, body, debug=debug)
    except Exception as e:  # torch.multiprocessing.ProcessExitedException, by duck typing
        if getattr(e, "exit_code", None) == EXIT_USER_ERROR:
            return EXIT_USER_ERROR
        raise


def _worker(tool: str, main: Callable, args) -> None:
    from detectron2.utils import comm

    if comm.get_world_size() == 1:  # same process as the caller: run_tool reports
        main(args)
        return
    if run_tool(tool, lambda: main(args), debug=getattr(args, "debug", False)):
        raise SystemExit(EXIT_USER_ERROR)


def prepare_output_dir(path: str, what: str = "output folder") -> str:
    """Creates ``path`` and checks that a file can be written into it (fails before any work)."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as e:
        raise OutputDirError(f"{path}: {what} cannot be written ({e.strerror or e})") from e
    return path


def check_registered(names: Sequence[str]) -> None:
    """Raises :class:`UserError` for the first name that is not in the ``DatasetCatalog``."""
    from detectron2.data import DatasetCatalog

    registered = DatasetCatalog.list()
    for name in names:
        if name not in registered:
            raise UserError(
                f"{name}: dataset is not registered (registered: {', '.join(sorted(registered))})"
            )


def load_dataset_checked(name: str) -> List[Dict]:
    """``DatasetCatalog.get(name)`` with one-line errors: unknown name, no images.

    Loading is where the loaders check their files (``unlock.data.validation``), so calling this
    for every split a run will use makes a broken split fail before training, not after it.
    """
    from detectron2.data import DatasetCatalog

    check_registered([name])
    dicts = DatasetCatalog.get(name)
    if not dicts:
        raise empty_dataset_error(name)
    return dicts


def empty_dataset_error(name: str) -> EmptyDatasetError:
    """The error for an empty split, naming the file or folder it was loaded from."""
    from detectron2.data import MetadataCatalog

    meta = MetadataCatalog.get(name)
    where = getattr(meta, "panoptic_json", None) or getattr(meta, "image_root", None) or name
    return EmptyDatasetError(f"{where}: dataset {name!r} has no images")


def remove_stale_temp_files(folder: str, *, recursive: bool = False, prefix: str = ".tmp-") -> int:
    """Deletes the temporary files that a killed atomic write (``unlock.utils.file_io``, the
    checkpointer) left in ``folder``; they are never read back, they only take space.

    Only call it where no other process is writing into ``folder`` at the same time (the main
    rank, before the workers start). Returns how many files were removed.
    """
    if not os.path.isdir(folder):
        return 0
    removed = 0
    walk = os.walk(folder) if recursive else [(folder, [], os.listdir(folder))]
    for root, _, files in walk:
        for name in files:
            if not name.startswith(prefix):
                continue
            path = os.path.join(root, name)
            try:
                os.remove(path)
                removed += 1
            except OSError as e:  # harmless when it stays: never read back
                logger.warning("could not remove stale temporary file %s (%s)", path, e)
    if removed:
        logger.info("Removed %d stale temporary files from %s", removed, folder)
    return removed
