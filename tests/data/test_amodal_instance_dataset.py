"""An amodal instance dataset without stuff (tests/class_tables.py INSTANCE_ONLY, KINS / COCOA
layouts) registered with the public API, then trained on with AmodalRCNN, evaluated (AP and AAP),
exported, drawn, pseudo-labelled and adapted with ADCL, with no library edit
(docs/custom_datasets.md "Amodal instance datasets")."""

import json
import os

import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.detection_utils import read_image

from class_tables import INSTANCE_ONLY, TOY
from common import get_unlock_cfg
from toy_dataset import INSTANCE_OPTS, H, W, write_toy_instance_split
from unlock.data.datasets import register_amodal_instance_dataset, register_amodal_panoptic_dataset
from unlock.data.validation import DatasetFormatError
from unlock.engine import UnlockTrainer
from unlock.engine.predictor import UnlockPredictor
from unlock.pseudo_labels import storage
from unlock.utils.five_outputs import draw_five_outputs
from unlock.utils.masks import decode_rle


@pytest.fixture(scope="module")
def instances(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("instances"))
    write_toy_instance_split(os.path.join(root, "val"), 3)
    write_toy_instance_split(os.path.join(root, "cocoa"), 2, layout="cocoa")
    write_toy_instance_split(os.path.join(root, "train"), 2)
    names = {"kins": "unlock_test_inst_val", "cocoa": "unlock_test_inst_cocoa",
             "unlabelled": "unlock_test_inst_train"}  # fmt: skip
    for layout, folder in (("kins", "val"), ("cocoa", "cocoa")):
        register_amodal_instance_dataset(
            names[layout], class_table=INSTANCE_ONLY, layout=layout,
            image_root=os.path.join(root, folder, "images"),
            json_file=os.path.join(root, folder, "instances.json"),
        )  # fmt: skip
    register_amodal_panoptic_dataset(
        names["unlabelled"], class_table=INSTANCE_ONLY,
        image_root=os.path.join(root, "train", "images"),
    )  # fmt: skip
    return root, names


def test_both_layouts_load_the_same_objects_with_classes_by_name(instances):
    _, names = instances
    assert MetadataCatalog.get(names["kins"]).evaluator_type == "amodal_instance"
    kins, cocoa = DatasetCatalog.get(names["kins"]), DatasetCatalog.get(names["cocoa"])
    assert [d["image_id"] for d in kins] == ["inst000", "inst001", "inst002"]
    for a, b in zip(kins[:2], cocoa):
        # JSON ids 7 (person) and 3 (vehicle) become detector classes 0 and 1 (the table's order).
        assert [x["category_id"] for x in a["annotations"]] == [0, 1, 1]
        assert [x["category_id"] for x in b["annotations"]] == [0, 1, 1]
        assert "sem_seg_file_name" not in a and "pan_seg_file_name" not in a
    person = kins[0]["annotations"][0]
    # KINS: the amodal mask is the polygon (the whole 36x16 rectangle), the visible one the RLE
    # of what the vehicle in front leaves.
    assert person["amodal_segmentation"] == [[12.0, 14.0, 28.0, 14.0, 28.0, 50.0, 12.0, 50.0]]
    visible = decode_rle(person["segmentation"])
    assert visible.sum() == 36 * 16 - 18 * 8 and not visible[32:50, 20:28].any()


def test_bad_input_names_the_file_and_the_problem(instances, tmp_path):
    root, _ = instances
    src = json.loads(open(os.path.join(root, "val", "instances.json")).read())
    bad = dict(src, categories=[{"id": 7, "name": "person"}, {"id": 3, "name": "tram"}])
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    from unlock.data.datasets.amodal_instance import load_amodal_instance_json

    images = os.path.join(root, "val", "images")
    with pytest.raises(DatasetFormatError, match=r"bad\.json: category 'tram' \(id 3\) is not a thing"):
        load_amodal_instance_json(images, str(path), class_table=INSTANCE_ONLY)
    with pytest.raises(DatasetFormatError, match=r"annotation 1: has no 'segmentation' mask \(layout 'cocoa'"):
        load_amodal_instance_json(images, os.path.join(root, "val", "instances.json"),
                                  class_table=INSTANCE_ONLY, layout="cocoa")
    with pytest.raises(ValueError, match="has stuff classes"):
        register_amodal_instance_dataset("bad_inst", class_table=TOY, image_root=images,
                                         json_file=str(path))


def test_the_semantic_head_keys_are_not_checked_for_amodal_rcnn(instances):
    _, names = instances
    opts = ["DATASETS.TRAIN", f"('{names['kins']}',)", "DATASETS.TEST", "()"]
    model = UnlockTrainer.build_model(get_unlock_cfg(opts=opts + INSTANCE_OPTS))
    assert model.class_table == INSTANCE_ONLY and not hasattr(model, "sem_seg_head")
    wrong = INSTANCE_OPTS[:-1] + ["3"]
    with pytest.raises(ValueError, match=r"ROI_HEADS.NUM_CLASSES=3 but the metadata .* has 2 thing"):
        UnlockTrainer.build_model(get_unlock_cfg(opts=opts + wrong))


def test_amodal_rcnn_wraps_around_the_seam(instances):
    """MODEL.PANORAMA works for the instance-only model too: circular padding and folded outputs
    at the image size (tests/panorama/ checks the geometry)."""
    import torch

    from unlock.panorama.wrap_padding import is_wrap_padded

    _, names = instances
    opts = ["DATASETS.TRAIN", f"('{names['kins']}',)", "DATASETS.TEST", "()",
            "MODEL.PANORAMA.WRAP_PADDING", "True", "MODEL.PANORAMA.WRAP_INFERENCE", "True",
            "MODEL.PANORAMA.INFERENCE_MARGIN", "16", "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0"]
    torch.manual_seed(0)
    model = UnlockTrainer.build_model(get_unlock_cfg(opts=opts + INSTANCE_OPTS)).eval()
    assert is_wrap_padded(model.backbone) and not is_wrap_padded(model.roi_heads)
    with torch.no_grad():
        out = model([{"image": torch.rand(3, H, W) * 255}])[0]["instances"]
    assert len(out) > 0 and out.image_size == (H, W)
    assert out.pred_masks.shape[1:] == (H, W) == out.pred_amodal_masks.shape[1:]


def test_train_evaluate_pseudo_label_and_adapt(instances, tmp_path):
    _, names = instances
    base = INSTANCE_OPTS + ["DATASETS.TEST", f"('{names['kins']}',)", "SOLVER.MAX_ITER", "2"]
    source = get_unlock_cfg(opts=base + ["DATASETS.TRAIN", f"('{names['kins']}',)",
                                         "OUTPUT_DIR", str(tmp_path / "source"),
                                         "UNLOCK.EVAL.EXPORT_PREDICTIONS", "True"])  # fmt: skip
    trainer = UnlockTrainer(source)
    trainer.resume_or_load(resume=False)
    trainer.train()
    losses = trainer.storage.latest()
    assert "loss_amodal_mask" in losses and "loss_sem_seg" not in losses
    results = UnlockTrainer.test(source, trainer.model)
    # The split decides the tasks: AP and AAP, under the table's own names.
    assert set(results) == {"segm", "amodal_segm", "unlock"}
    assert "AP-person" in results["segm"] and "AP-vehicle" in results["amodal_segm"]
    assert set(results["unlock"]) == {"mAAP", "mAP"}
    export = tmp_path / "source" / "inference" / names["kins"]
    amodal_json = json.loads((export / "coco_amodal_instances_results.json").read_text())
    assert {r["category_id"] for r in amodal_json} <= {0, 1}
    weights = str(tmp_path / "source" / "model_final.pth")
    predictor = UnlockPredictor(source, weights=weights)
    image = read_image(DatasetCatalog.get(names["kins"])[0]["file_name"], format="RGB")
    outputs = predictor(image[:, :, ::-1].copy())
    assert set(outputs) == {"instances"} and outputs["instances"].has("pred_amodal_masks")
    picture = draw_five_outputs(image, outputs, predictor.metadata)
    # Three panels under their title bars: the input, visible and amodal instances.
    assert picture.shape[1] == W and 3 * H < picture.shape[0] < 4 * H

    adapt = get_unlock_cfg(opts=base + [
        "MODEL.WEIGHTS", weights, "OUTPUT_DIR", str(tmp_path / "adapt"),
        "DATASETS.TRAIN", f"('{names['unlabelled']}',)",
        "UNLOCK.OPLL.ENABLED", "True", "UNLOCK.OPLL.TARGET_DATASET", names["unlabelled"],
        "UNLOCK.OPLL.MIN_SCORE", "0.0", "UNLOCK.OPLL.VISIBLE_THRESHOLDS", "(0.0, 0.3)",
        "UNLOCK.OPLL.AMODAL_THRESHOLDS", "(0.0, 0.5)",
        "UNLOCK.ADCL.ENABLED", "True", "UNLOCK.ADCL.POOL_THRESHOLDS", "(0.0, 0.1)",
        # The 2-iteration source model's masks overlap a lot; keep them all in the pool.
        "UNLOCK.ADCL.MAX_OVERLAP_FRACTION", "1.01",
    ])  # fmt: skip
    train_cfg = UnlockTrainer.generate_pseudo_labels(adapt)
    pl_root = train_cfg.UNLOCK.OPLL.OUTPUT_DIR
    # Objects only: no semantic file in either pass, and the dicts name none.
    for sub in ("raw", "labels"):
        assert not [f for f in os.listdir(os.path.join(pl_root, sub)) if f.endswith(("_sem.png", "_conf.png"))]
    labels = storage.read_labels(pl_root, "inst000")
    assert labels["semantic"] is False and labels["objects"]
    dicts = DatasetCatalog.get(train_cfg.DATASETS.TRAIN[0])
    assert all("sem_seg_file_name" not in d for d in dicts)
    from unlock.data.adcl import load_object_pool

    assert len(load_object_pool(train_cfg.UNLOCK.ADCL.POOL_DIR)) > 0
    adapted = UnlockTrainer(train_cfg)
    adapted.resume_or_load(resume=False)
    adapted.train()
    history = adapted.storage.histories()
    assert "loss_sem_seg" not in history
    assert all(torch.isfinite(torch.tensor(v)) for v, _ in history["total_loss"].values())


def test_semantic_extras_are_refused_without_a_semantic_head(instances):
    _, names = instances
    from unlock.engine.extras import check_extras

    for opts in (["UNLOCK.OPLL.EXTRAS.CLASSMIX_WEIGHT", "1.0"],
                 ["UNLOCK.ADCL.PASTED_SEMANTICS", "source_labels"]):
        cfg = get_unlock_cfg(opts=INSTANCE_OPTS + opts)
        with pytest.raises(ValueError, match="needs semantic predictions.*AmodalRCNN has no semantic head"):
            check_extras(cfg)
