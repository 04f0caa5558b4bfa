"""AP / AAP on an amodal instance split (mask-list ground truth, no panoptic PNG) and the label
PNG of a semantic-only split."""

import numpy as np
import pytest
import torch
from detectron2.data import MetadataCatalog
from detectron2.structures import Boxes, Instances

from class_tables import INSTANCE_ONLY
from unlock.evaluation.instance import UnlockAmodalInstanceEvaluator, UnlockInstanceEvaluator
from unlock.evaluation.partial_ground_truth import build_instance_ground_truth
from unlock.utils.masks import encode_rle

H, W = 40, 60
NAME = "unlock_test_instance_gt"


def _rect(y0, y1, x0, x1):
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return m


# A person (detector class 0) 2/3 hidden behind a vehicle (class 1), and a crowd of vehicles.
PERSON_AMODAL, VEHICLE = _rect(5, 35, 5, 20), _rect(15, 38, 10, 40)
PERSON_VISIBLE = PERSON_AMODAL & ~VEHICLE
CROWD = _rect(0, 12, 45, 60)


def _dict():
    anns = [
        {"category_id": 0, "segmentation": encode_rle(PERSON_VISIBLE),
         "amodal_segmentation": encode_rle(PERSON_AMODAL), "segment_id": 1, "iscrowd": 0},
        {"category_id": 1, "segmentation": encode_rle(VEHICLE),
         "amodal_segmentation": encode_rle(VEHICLE), "segment_id": 2, "iscrowd": 0},
        {"category_id": 1, "segmentation": encode_rle(CROWD),
         "amodal_segmentation": encode_rle(CROWD), "segment_id": 3, "iscrowd": 1},
    ]  # fmt: skip
    return {"file_name": "a.png", "image_id": "a", "height": H, "width": W, "annotations": anns}


@pytest.fixture(scope="module", autouse=True)
def registered():
    MetadataCatalog.get(NAME).set(**INSTANCE_ONLY.metadata(), evaluator_type="amodal_instance")


def _predictions(visible, amodal, classes, scores):
    inst = Instances((H, W))
    inst.pred_masks = torch.as_tensor(np.stack(visible))
    inst.pred_amodal_masks = torch.as_tensor(np.stack(amodal))
    inst.pred_classes = torch.as_tensor(classes)
    inst.scores = torch.as_tensor(scores, dtype=torch.float32)
    inst.pred_boxes = Boxes(torch.zeros(len(classes), 4))
    return inst


def _ap(evaluator_cls, instances):
    ev = evaluator_cls(NAME, ("oass", "strict"), min_region_size=10, class_table=INSTANCE_ONLY)
    ev.process([_dict()], [{"instances": instances}])
    return ev.evaluate()


def test_the_ground_truth_is_the_non_crowd_mask_lists():
    gt = build_instance_ground_truth(_dict(), INSTANCE_ONLY)
    assert gt.visible.masks.shape == (2, H, W) and list(gt.visible.cats) == [0, 1]
    assert (gt.visible.masks[0] == PERSON_VISIBLE).all()
    assert (gt.amodal("oass").masks[0] == PERSON_AMODAL).all() and gt.amodal("strict") is gt.amodal("oass")
    assert (gt.void == CROWD).all()


def test_exact_predictions_score_100_and_the_other_masks_do_not():
    exact = _predictions([PERSON_VISIBLE, VEHICLE], [PERSON_AMODAL, VEHICLE], [0, 1], [0.9, 0.8])
    for cls, key in ((UnlockInstanceEvaluator, "segm"), (UnlockAmodalInstanceEvaluator, "amodal_segm")):
        res = _ap(cls, exact)[key]
        assert res["AP"] == pytest.approx(100.0) and res["AP_strict"] == pytest.approx(100.0)
    # The person's masks swapped: IoU 250 / 450 = 0.56 either way, a match at the 0.5 and 0.55
    # thresholds only, so 2 of the 10 IoU thresholds: AP 20.
    swapped = _predictions([PERSON_AMODAL, VEHICLE], [PERSON_VISIBLE, VEHICLE], [0, 1], [0.9, 0.8])
    assert _ap(UnlockInstanceEvaluator, swapped)["segm"]["AP-person"] == pytest.approx(20.0)
    assert _ap(UnlockAmodalInstanceEvaluator, swapped)["amodal_segm"]["AP-person"] == pytest.approx(20.0)
    assert _ap(UnlockInstanceEvaluator, swapped)["segm"]["AP-vehicle"] == pytest.approx(100.0)


def test_a_detection_on_the_crowd_region_is_no_false_positive():
    exact = [PERSON_VISIBLE, VEHICLE]
    with_crowd = _predictions(exact + [CROWD], [PERSON_AMODAL, VEHICLE, CROWD], [0, 1, 1],
                              [0.9, 0.5, 0.95])  # fmt: skip
    assert _ap(UnlockInstanceEvaluator, with_crowd)["segm"]["AP-vehicle"] == pytest.approx(100.0)
    elsewhere = _rect(0, 12, 0, 4)
    with_false = _predictions(exact + [elsewhere], [PERSON_AMODAL, VEHICLE, elsewhere], [0, 1, 1],
                              [0.9, 0.5, 0.95])  # fmt: skip
    assert _ap(UnlockInstanceEvaluator, with_false)["segm"]["AP-vehicle"] < 100.0


def test_a_semantic_label_png_with_unknown_values_names_the_file(tmp_path):
    from class_tables import SEMANTIC_ONLY
    from unlock.evaluation.partial_ground_truth import build_semantic_ground_truth
    from unlock.utils.file_io import atomic_write_image

    label = np.full((H, W), 2, np.uint8)
    label[0, :3] = 255
    path = str(tmp_path / "a_labelTrainIds.png")
    atomic_write_image(path, label)
    d = {"file_name": "a.png", "image_id": "a", "height": H, "width": W, "sem_seg_file_name": path}
    gt = build_semantic_ground_truth(d, SEMANTIC_ONLY)
    assert (gt.semantic == label).all()
    label[5, 5] = 7
    atomic_write_image(path, label)
    with pytest.raises(ValueError, match=r"a_labelTrainIds\.png: values \[7\] are neither classes 0\.\.2"):
        build_semantic_ground_truth(d, SEMANTIC_ONLY)
    with pytest.raises(ValueError, match=r"a_labelTrainIds\.png: size \(H, W\)=\(40, 60\) does not match a\.png"):
        build_semantic_ground_truth(dict(d, height=H + 1), SEMANTIC_ONLY)
