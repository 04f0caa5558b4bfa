"""``--register MODULE``: the tools import a user's dataset-registration code before reading the
config, so a dataset registered with ``register_amodal_panoptic_dataset`` (docs/custom_datasets.md)
works with ``tools/train_net.py`` and the other tools without a script of one's own.

A MODULE is a dotted module name on ``sys.path`` (``my_project.datasets``) or the path of a
``.py`` file. The import runs in every process the tool starts (detectron2's ``launch`` spawns one
per GPU), because each process has its own ``DatasetCatalog``.
"""

import argparse
import hashlib
import importlib
import importlib.util
import os
import sys
from typing import Iterable, List

from .cli import UserError

__all__ = ["RegistrationModuleError", "add_register_argument", "import_registration_modules"]


class RegistrationModuleError(UserError, ImportError):
    """A ``--register`` module cannot be found."""


def add_register_argument(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds the repeatable ``--register MODULE`` option."""
    parser.add_argument(
        "--register",
        action="append",
        default=[],
        metavar="MODULE",
        help="import this module (dotted name or .py file) first, to register your own datasets "
        "(docs/custom_datasets.md); repeatable",
    )
    return parser


def _import_file(path: str):
    if not os.path.isfile(path):
        raise RegistrationModuleError(f"{path}: --register file does not exist")
    digest = hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:12]
    name = f"unlock_user_registration_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _import_dotted(name: str):
    # As with ``python -m``: a module next to where the tool is run from is importable.
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        # Only a missing MODULE itself is the user's input; a missing import inside it is theirs
        # to see with its traceback.
        if e.name is not None and name.startswith(e.name):
            raise RegistrationModuleError(
                f"{name}: --register module not found on sys.path (pass a dotted module name "
                f"importable from the current directory or PYTHONPATH, or a path to a .py file)"
            ) from e
        raise


def import_registration_modules(modules: Iterable[str]) -> List[object]:
    """Imports each ``--register`` module once (a second import of the same one is a no-op).

    Raises:
        RegistrationModuleError naming the module when it does not exist. Errors raised by the
        module's own code (for example a bad class table) propagate unchanged.
    """
    imported = []
    for spec in modules:
        is_file = spec.endswith(".py") or os.sep in spec
        imported.append(_import_file(spec) if is_file else _import_dotted(spec))
    return imported
