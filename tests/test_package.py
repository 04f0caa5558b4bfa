"""Package-level import contract: the config adder is re-exported from the package root (as
detectron2 projects do), and the drawing utilities do not register datasets as a side effect.
Each check runs in a fresh interpreter so that earlier imports of the suite do not mask it."""

import os
import subprocess
import sys

PACKAGE_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "projects", "UNLOCK", "unlock"
)


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_add_unlock_config_from_package_root():
    out = _run(
        "from detectron2.config import get_cfg\n"
        "from unlock import add_unlock_config\n"
        "import unlock.config\n"
        "assert add_unlock_config is unlock.config.add_unlock_config\n"
        "cfg = get_cfg(); add_unlock_config(cfg)\n"
        "print(cfg.MODEL.ROI_MASK_HEAD.NAME)\n"
    )
    assert out.strip() == "IgnoreAwareMaskRCNNConvUpsampleHead"


def test_visualizer_does_not_register_datasets():
    # The package root registers the built-in datasets on purpose (like detectron2.data);
    # a stub root isolates what the drawing modules themselves import.
    out = _run(
        "import sys, types\n"
        f"root = types.ModuleType('unlock'); root.__path__ = [{PACKAGE_DIR!r}]\n"
        "sys.modules['unlock'] = root\n"
        "import unlock.utils.visualizer, unlock.utils.five_outputs\n"
        "from detectron2.data import DatasetCatalog\n"
        "print(sorted(m for m in sys.modules if m.startswith('unlock.data')))\n"
        "print([n for n in DatasetCatalog.list() if n.startswith(('unlock', 'blendpass'))])\n"
    )
    assert out.split("\n")[:2] == ["[]", "[]"]
