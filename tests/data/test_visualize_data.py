"""tools/visualize_data.py draws every image of a registered split, and fails cleanly."""

import os
import uuid

import numpy as np
from PIL import Image

from amodal_fixtures import H, W, make_blendpass
from common import load_tool
from unlock.data import register_synthetic


def _tool():
    return load_tool("visualize_data.py", "visualize_data")


def test_draws_labelled_split(tmp_path, capsys):
    prefix = "vis_" + uuid.uuid4().hex[:8]
    make_blendpass(os.path.join(tmp_path, prefix))
    names = register_synthetic(str(tmp_path), prefix=prefix)
    out = os.path.join(tmp_path, "vis")
    tool = _tool()
    assert tool.main(["--dataset", names["target_test"], "--output", out, "--num", "1"]) == 0
    assert os.listdir(out) == ["100_.png"]
    drawn = np.asarray(Image.open(os.path.join(out, "100_.png")))
    assert drawn.shape[:2] == (H, W)
    assert tool.main(["--dataset", "no_such_split", "--output", out]) == 2
    assert tool.main(["--dataset", names["source_train"], "--output", out]) == 2  # not on disk
    assert "KITTI-360-APS" in capsys.readouterr().err
