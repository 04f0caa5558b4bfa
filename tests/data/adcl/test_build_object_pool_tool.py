"""tools/build_object_pool.py on raw predictions written in OPLL's storage format."""

import importlib.util
import os

import numpy as np
from detectron2.data import DatasetCatalog, MetadataCatalog
from PIL import Image

from common import REPO_ROOT, TINY_CONFIG
from unlock.classes import class_metadata
from unlock.data.adcl import load_object_pool
from unlock.pseudo_labels.storage import write_raw_prediction


def _load_tool():
    path = os.path.join(REPO_ROOT, "tools", "build_object_pool.py")
    spec = importlib.util.spec_from_file_location("build_object_pool_tool", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tool_builds_pool_from_raw_predictions(tmp_path):
    rs = np.random.RandomState(0)
    dicts = []
    for k in range(2):
        h, w = 12, 20
        image = rs.randint(0, 256, (h, w, 3)).astype(np.uint8)
        file_name = str(tmp_path / f"pano{k}.png")
        Image.fromarray(image).save(file_name)
        sem = np.full((h, w), 13, np.uint8)
        amodal = np.zeros((h, w), bool)
        amodal[2:8, 3 + k : 10 + k] = True
        dets = [
            {"category_id": 2, "score": 0.97, "mask": amodal, "amodal_mask": amodal},
            {"category_id": 2, "score": 0.2, "mask": amodal, "amodal_mask": amodal},
        ]
        write_raw_prediction(
            str(tmp_path / "pl"),
            {
                "image_id": f"pano{k}",
                "file_name": file_name,
                "height": h,
                "width": w,
                "sem_labels": sem,
                "sem_conf": np.ones((h, w), np.float32),
                "detections": dets,
            },
        )
        dicts.append({"image_id": f"pano{k}", "file_name": file_name, "height": h, "width": w})
    name = "adcl_tool_test_split"
    if name not in DatasetCatalog.list():
        DatasetCatalog.register(name, lambda: dicts)
        MetadataCatalog.get(name).set(**class_metadata("k2b"))
    tool = _load_tool()
    rc = tool.main(
        [
            "--config-file",
            TINY_CONFIG,
            "--pseudo-labels",
            str(tmp_path / "pl"),
            "--output",
            str(tmp_path / "pool"),
            "UNLOCK.OPLL.TARGET_DATASET",
            name,
        ]
    )
    assert rc == 0
    pool = load_object_pool(str(tmp_path / "pool"))
    assert [(o.image_id, o.score, o.box) for o in pool.objects] == [
        ("pano0", 0.97, (3, 2, 10, 8)),
        ("pano1", 0.97, (4, 2, 11, 8)),
    ]
    assert tool.main(["--config-file", TINY_CONFIG, "--pseudo-labels", str(tmp_path / "no")]) == 2
