"""A dataset with classes unrelated to K2B (tests/class_tables.py TOY: things 1, 4, 6 among
stuff, ignore 250, label divisor 100) registered with the public API, then trained on, evaluated
with every metric, exported, drawn, pseudo-labelled and adapted with ADCL, with no library edit
(the runnable example of docs/custom_datasets.md)."""

import json
import os

import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.detection_utils import read_image

from class_tables import TOY
from common import get_unlock_cfg
from toy_dataset import TOY_OPTS, H, W, write_toy_split
from unlock.class_table import dataset_class_table
from unlock.data.datasets import register_amodal_panoptic_dataset
from unlock.engine import UnlockTrainer
from unlock.engine.predictor import UnlockPredictor
from unlock.utils.five_outputs import draw_five_outputs


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("toy"))
    write_toy_split(os.path.join(root, "val"), 3)
    write_toy_split(os.path.join(root, "train"), 2)
    labelled, unlabelled = "unlock_test_toy_val", "unlock_test_toy_train"
    register_amodal_panoptic_dataset(
        labelled, class_table=TOY, image_root=os.path.join(root, "val", "images"),
        panoptic_json=os.path.join(root, "val", "panoptic.json"),
        panoptic_root=os.path.join(root, "val", "panoptic"),
        amodal_json=os.path.join(root, "val", "amodal.json"),
    )  # fmt: skip
    register_amodal_panoptic_dataset(
        unlabelled, class_table=TOY, image_root=os.path.join(root, "train", "images")
    )
    return root, labelled, unlabelled


def test_the_api_is_exported_from_the_package_root():
    import unlock
    from unlock.data.datasets.custom import register_amodal_panoptic_dataset as registered

    assert unlock.register_amodal_panoptic_dataset is registered
    assert unlock.ClassTable is type(TOY)


def test_registration_keeps_the_class_table(toy):
    _, labelled, unlabelled = toy
    assert dataset_class_table(labelled) == TOY and dataset_class_table(unlabelled) == TOY
    assert MetadataCatalog.get(labelled).evaluator_type == "amodal_panoptic"
    assert MetadataCatalog.get(unlabelled).evaluator_type == "none"
    dicts = DatasetCatalog.get(labelled)
    # Detector classes: robot 0, cart 1, dog 2 (the table's thing order), from trainIds 1, 4, 6.
    assert [sorted(a["category_id"] for a in d["annotations"]) for d in dicts] == [[0, 1, 2]] * 3
    assert all(a["amodal_segmentation"] is not None for a in dicts[0]["annotations"])
    assert [d["image_id"] for d in DatasetCatalog.get(unlabelled)] == ["toy000", "toy001"]


def test_a_labelled_split_needs_all_three_label_files(tmp_path):
    with pytest.raises(ValueError, match=r"'bad_toy'.*\['amodal_json', 'panoptic_root'\] missing"):
        register_amodal_panoptic_dataset(
            "bad_toy", class_table=TOY, image_root=str(tmp_path), panoptic_json="p.json"
        )
    with pytest.raises(ValueError, match="domain 'fisheye'"):
        register_amodal_panoptic_dataset(
            "bad_toy", class_table=TOY, image_root=str(tmp_path), domain="fisheye"
        )


def test_config_counts_are_checked_against_the_dataset(toy, tmp_path):
    _, labelled, _ = toy
    cfg = get_unlock_cfg(opts=["DATASETS.TRAIN", f"('{labelled}',)", "DATASETS.TEST", "()"])
    with pytest.raises(ValueError, match=f"NUM_CLASSES=18 but the metadata of '{labelled}'"):
        UnlockTrainer.build_model(cfg)


def test_train_evaluate_pseudo_label_and_adapt(toy, tmp_path):
    _, labelled, unlabelled = toy
    base = TOY_OPTS + ["DATASETS.TEST", f"('{labelled}',)", "SOLVER.MAX_ITER", "2"]
    source = get_unlock_cfg(opts=base + ["DATASETS.TRAIN", f"('{labelled}',)",
                                         "OUTPUT_DIR", str(tmp_path / "source"),
                                         "UNLOCK.EVAL.EXPORT_PREDICTIONS", "True"])  # fmt: skip
    trainer = UnlockTrainer(source)
    trainer.resume_or_load(resume=False)
    trainer.train()
    assert trainer.model.class_table == TOY
    results = UnlockTrainer.test(source, trainer.model)
    # Every metric, keyed by the toy table's own names.
    assert {"sem_seg", "panoptic_seg", "amodal_panoptic_seg", "segm", "amodal_segm"} <= set(results)
    assert "IoU-robot" in results["sem_seg"] and "PQ-lake" in results["panoptic_seg"]
    assert "AP-dog" in results["segm"] and "AP-cart" in results["amodal_segm"]
    assert not any("car" == k.split("-", 1)[-1] for r in results.values() for k in r)
    weights = os.path.join(str(tmp_path / "source"), "model_final.pth")
    assert os.path.isfile(weights)
    # The export speaks the toy table's trainIds; the pictures its names and colours.
    export = tmp_path / "source" / "inference" / labelled
    categories = json.loads((export / "panoptic.json").read_text())["categories"]
    assert [(c["name"], c["isthing"]) for c in categories] == [
        (n, int(i in TOY.thing_ids)) for i, n in enumerate(TOY.names)]
    results_json = json.loads((export / "coco_amodal_instances_results.json").read_text())
    assert {r["category_id"] for r in results_json} <= set(TOY.thing_ids)
    predictor = UnlockPredictor(source, weights=weights)
    assert list(predictor.metadata.stuff_classes) == list(TOY.names)
    image = read_image(DatasetCatalog.get(labelled)[0]["file_name"], format="RGB")
    picture = draw_five_outputs(image, predictor(image[:, :, ::-1].copy()), predictor.metadata)
    assert picture.shape[1] == W and picture.shape[0] > 5 * H

    adapt = get_unlock_cfg(opts=base + [
        "MODEL.WEIGHTS", weights, "OUTPUT_DIR", str(tmp_path / "adapt"),
        "DATASETS.TRAIN", f"('{unlabelled}',)",
        "UNLOCK.OPLL.ENABLED", "True", "UNLOCK.OPLL.TARGET_DATASET", unlabelled,
        "UNLOCK.OPLL.MIN_SCORE", "0.0", "UNLOCK.OPLL.VISIBLE_THRESHOLDS", "(0.0, 0.3)",
        "UNLOCK.OPLL.AMODAL_THRESHOLDS", "(0.0, 0.5)", "UNLOCK.OPLL.SEMANTIC_THRESHOLDS",
        "(0.0, 0.8)", "UNLOCK.ADCL.ENABLED", "True", "UNLOCK.ADCL.POOL_THRESHOLDS", "(0.0, 0.1)",
    ])  # fmt: skip
    train_cfg = UnlockTrainer.generate_pseudo_labels(adapt)
    sem_files = [f for f in os.listdir(os.path.join(train_cfg.UNLOCK.OPLL.OUTPUT_DIR, "labels"))
                 if f.endswith("_sem.png")]  # fmt: skip
    assert len(sem_files) == 2
    # Pseudo semantic labels hold only the toy trainIds and its ignore label.
    from unlock.pseudo_labels import storage

    for f in sem_files:
        sem = storage.read_png(os.path.join(train_cfg.UNLOCK.OPLL.OUTPUT_DIR, "labels", f),
                               np.uint8, (H, W))  # fmt: skip
        assert set(np.unique(sem).tolist()) <= set(range(7)) | {250}
    adapted = UnlockTrainer(train_cfg)
    adapted.resume_or_load(resume=False)
    adapted.train()
    losses = adapted.storage.histories()["total_loss"].values()
    assert all(torch.isfinite(torch.tensor(v)) for v, _ in losses)

    # The same labels with UNLOCK.ADCL.PASTED_SEMANTICS "source_labels": the pool is rebuilt (its
    # key changes) and its objects store their semantic pseudo-labels (toy trainIds and 250).
    from unlock.data.adcl import load_object_pool

    pl_root = train_cfg.UNLOCK.OPLL.OUTPUT_DIR
    before = storage.read_manifest(pl_root)["pool"]["key"]
    relabel = adapt.clone()
    relabel.defrost()
    relabel.UNLOCK.ADCL.PASTED_SEMANTICS = "source_labels"
    pool = load_object_pool(UnlockTrainer.generate_pseudo_labels(relabel).UNLOCK.ADCL.POOL_DIR)
    assert storage.read_manifest(pl_root)["pool"]["key"] != before
    assert all(o.semantics_file for o in pool.objects)
    for i in range(len(pool)):
        assert set(np.unique(pool.load(i)["semantics"]).tolist()) <= set(range(7)) | {250}
