"""A semantic-only panoramic dataset (tests/class_tables.py SEMANTIC_ONLY, DensePASS naming)
registered with the public API, then trained on with UnlockSemanticSegmentor, evaluated (mIoU),
drawn, pseudo-labelled with OPLL's semantic part and adapted, with no library edit
(docs/custom_datasets.md "Semantic-only datasets"; the paper's Table 8 setting)."""

import os

import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.detection_utils import read_image

from class_tables import SEMANTIC_ONLY, TOY
from common import get_unlock_cfg
from toy_dataset import SEMANTIC_OPTS, H, W, write_toy_semantic_split
from unlock.data.datasets import register_semantic_dataset
from unlock.data.validation import DatasetFormatError
from unlock.engine import UnlockTrainer
from unlock.engine.predictor import UnlockPredictor
from unlock.evaluation import build_unlock_evaluator
from unlock.pseudo_labels import storage
from unlock.utils.five_outputs import draw_five_outputs

VAL, TRAIN = "unlock_test_sem_val", "unlock_test_sem_train"


@pytest.fixture(scope="module")
def semantic(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("semantic"))
    write_toy_semantic_split(os.path.join(root, "val"), 3)
    write_toy_semantic_split(os.path.join(root, "train"), 2, labelled=False)
    register_semantic_dataset(VAL, class_table=SEMANTIC_ONLY,
                              image_root=os.path.join(root, "val", "images"),
                              sem_seg_root=os.path.join(root, "val", "labels"))  # fmt: skip
    register_semantic_dataset(TRAIN, class_table=SEMANTIC_ONLY,
                              image_root=os.path.join(root, "train", "images"))  # fmt: skip
    return root


def test_images_are_paired_with_their_label_pngs(semantic):
    assert MetadataCatalog.get(VAL).evaluator_type == "sem_seg"
    assert MetadataCatalog.get(TRAIN).evaluator_type == "none"
    dicts = DatasetCatalog.get(VAL)
    assert [d["image_id"] for d in dicts] == ["pano000", "pano001", "pano002"]
    assert [os.path.basename(d["sem_seg_file_name"]) for d in dicts] == [
        "pano000_labelTrainIds.png", "pano001_labelTrainIds.png", "pano002_labelTrainIds.png"]
    assert "annotations" not in dicts[0] and "sem_seg_file_name" not in DatasetCatalog.get(TRAIN)[0]


def test_bad_input_names_the_file_and_the_problem(semantic, tmp_path):
    from unlock.data.datasets.semantic import load_semantic_folder

    images = os.path.join(semantic, "val", "images")
    with pytest.raises(DatasetFormatError, match=r"pano000\.png: no label pano000_gt\.png under"):
        load_semantic_folder(images, os.path.join(semantic, "val", "labels"), label_suffix="_gt.png")
    with pytest.raises(ValueError, match="has thing classes"):
        register_semantic_dataset("bad_sem", class_table=TOY, image_root=images)


def test_the_split_is_scored_with_miou_only_and_exact_labels_score_100(semantic):
    cfg = get_unlock_cfg(opts=SEMANTIC_OPTS)
    evaluator = build_unlock_evaluator(cfg, VAL)
    evaluator.reset()
    inputs = DatasetCatalog.get(VAL)
    outputs = []
    for d in inputs:
        label = read_image(d["sem_seg_file_name"]).astype(np.int64)
        # One-hot probabilities of the label (the ignore pixels any class): exact predictions.
        probs = torch.nn.functional.one_hot(torch.as_tensor(np.where(label == 255, 0, label)), 3)
        outputs.append({"sem_seg": probs.permute(2, 0, 1).float()})
    evaluator.process(inputs, outputs)
    results = evaluator.evaluate()
    assert set(results) == {"sem_seg", "unlock"}
    assert results["sem_seg"]["mIoU"] == pytest.approx(100.0)
    assert results["sem_seg"]["IoU-road"] == pytest.approx(100.0)


def test_train_evaluate_pseudo_label_and_adapt(semantic, tmp_path):
    base = SEMANTIC_OPTS + ["DATASETS.TEST", f"('{VAL}',)", "SOLVER.MAX_ITER", "2"]
    source = get_unlock_cfg(opts=base + ["DATASETS.TRAIN", f"('{VAL}',)",
                                         "OUTPUT_DIR", str(tmp_path / "source")])  # fmt: skip
    trainer = UnlockTrainer(source)
    trainer.resume_or_load(resume=False)
    trainer.train()
    assert trainer.model.class_table == SEMANTIC_ONLY and not hasattr(trainer.model, "roi_heads")
    results = UnlockTrainer.test(source, trainer.model)
    assert set(results) == {"sem_seg", "unlock"} and "IoU-sky" in results["sem_seg"]
    weights = str(tmp_path / "source" / "model_final.pth")
    predictor = UnlockPredictor(source, weights=weights)
    image = read_image(DatasetCatalog.get(VAL)[0]["file_name"], format="RGB")
    outputs = predictor(image[:, :, ::-1].copy())
    assert set(outputs) == {"sem_seg"}
    # Probabilities, as AmodalPanopticFPN gives them (OPLL reads both alike).
    assert torch.allclose(outputs["sem_seg"].sum(0), torch.ones(H, W), atol=1e-5)
    picture = draw_five_outputs(image, outputs, predictor.metadata)
    assert picture.shape[1] == W and 2 * H < picture.shape[0] < 3 * H  # input and semantic

    adapt = get_unlock_cfg(opts=base + [
        "MODEL.WEIGHTS", weights, "OUTPUT_DIR", str(tmp_path / "adapt"),
        "DATASETS.TRAIN", f"('{TRAIN}',)",
        "UNLOCK.OPLL.ENABLED", "True", "UNLOCK.OPLL.TARGET_DATASET", TRAIN,
        "UNLOCK.OPLL.SEMANTIC_THRESHOLDS", "(0.0, 0.8)",
    ])  # fmt: skip
    train_cfg = UnlockTrainer.generate_pseudo_labels(adapt)
    pl_root = train_cfg.UNLOCK.OPLL.OUTPUT_DIR
    labels = storage.read_labels(pl_root, "pano000")
    assert labels["objects"] == [] and labels["semantic"] is True
    sem = storage.read_png(storage.label_png_path(pl_root, "pano000", "sem"), np.uint8, (H, W))
    assert set(np.unique(sem).tolist()) <= {0, 1, 2, 255}
    dicts = DatasetCatalog.get(train_cfg.DATASETS.TRAIN[0])
    assert all("annotations" not in d and d["sem_seg_file_name"] for d in dicts)
    adapted = UnlockTrainer(train_cfg)
    adapted.resume_or_load(resume=False)
    adapted.train()
    losses = adapted.storage.histories()["total_loss"].values()
    assert all(torch.isfinite(torch.tensor(v)) for v, _ in losses)


def test_adcl_is_refused_without_a_detector():
    from unlock.engine.extras import check_extras

    cfg = get_unlock_cfg(opts=SEMANTIC_OPTS + ["UNLOCK.ADCL.ENABLED", "True"])
    with pytest.raises(ValueError, match="ADCL.ENABLED pastes detected objects.*has no detector"):
        check_extras(cfg)
