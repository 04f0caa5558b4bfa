"""Wrap-aware inference: extension, the centre rule, folding, duplicate removal, model outputs."""
import pytest
import torch
from detectron2.modeling import build_model
from detectron2.structures import Boxes, Instances

from common import get_unlock_cfg
from unlock.panorama.wrap_inference import (
    crop_extended_logits,
    extend_panorama,
    fold_wrapped_detections,
    round_margin,
    suppress_folded_duplicates,
)

H, W, M = 20, 64, 16


def _raw(boxes, classes, scores):
    """Raw RoI-head output on the extended input: full-box masks for both fields."""
    det = Instances((H, W + 2 * M))
    det.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32))
    det.pred_classes = torch.tensor(classes)
    det.scores = torch.tensor(scores)
    det.pred_masks = torch.ones(len(boxes), 1, 28, 28)
    det.pred_amodal_masks = torch.ones(len(boxes), 1, 28, 28)
    return det


def test_margin_rounding():
    assert round_margin(64, 512, 32) == 64
    assert round_margin(40, 512, 32) == 64
    assert round_margin(0, 512, 32) == 0
    assert round_margin(600, 512, 32) == 512
    with pytest.raises(ValueError, match="INFERENCE_MARGIN"):
        round_margin(-1, 512, 32)


def test_extension_and_logit_crop():
    image = torch.arange(W, dtype=torch.float32).expand(3, H, W)
    ext = extend_panorama(image, M)
    assert ext.shape == (3, H, W + 2 * M)
    assert ext[0, 0, :M].tolist() == list(range(W - M, W))
    assert ext[0, 0, -M:].tolist() == list(range(M))
    padded = torch.nn.functional.pad(ext, (0, 8, 0, 4))  # batch padding
    assert torch.equal(crop_extended_logits(padded, M, (H, W)), image)


def test_seam_object_becomes_one_instance():
    det = _raw(
        boxes=[
            [8, 4, 24, 12],  # panorama columns -8..8: across the seam, centre on column 0
            [72, 4, 88, 12],  # its copy in the right margin (centre at W + M): dropped
            [9, 4, 25, 12],  # a second detection of it, lower score: a duplicate
            [40, 2, 50, 10],  # inside the panorama
            [0, 2, 10, 10],  # cut by the extended image's side, centre in the margin: dropped
        ],
        classes=[0, 0, 0, 1, 1],
        scores=[0.9, 0.8, 0.7, 0.6, 0.95],
    )
    out = fold_wrapped_detections(det, M, W, (H, W), merge_iou=0.5)
    assert out.image_size == (H, W)
    assert out.scores.tolist() == pytest.approx([0.9, 0.6])
    seam = out.pred_masks[0]
    expected = torch.zeros(H, W, dtype=torch.bool)
    expected[4:12, :8] = expected[4:12, W - 8 :] = True
    assert torch.equal(seam, expected)
    assert torch.equal(out.pred_amodal_masks[0], expected)
    # Flat consumers get the flat box of a seam object (the whole width), others keep theirs.
    assert out.pred_boxes.tensor.tolist() == [[0, 4, W, 12], [24, 2, 34, 10]]


def test_duplicates_are_per_class_and_circular():
    inst = Instances((4, 8))
    masks = torch.zeros(3, 4, 8, dtype=torch.bool)
    masks[0, :, :2] = masks[0, :, 7:] = True
    masks[1, :, :1] = masks[1, :, 7:] = True  # IoU 2/3 with the first, across the seam
    masks[2] = masks[0]  # same pixels, other class
    inst.pred_amodal_masks = masks
    inst.pred_masks = masks.clone()
    inst.pred_classes = torch.tensor([0, 0, 1])
    inst.scores = torch.tensor([0.5, 0.9, 0.4])
    kept = suppress_folded_duplicates(inst, 0.5)
    assert kept.scores.tolist() == pytest.approx([0.9, 0.4])
    assert len(suppress_folded_duplicates(inst, 0.7)) == 3


def test_folding_to_another_output_size():
    det = _raw([[8, 4, 24, 12]], [0], [0.9])
    out = fold_wrapped_detections(det, M, W, (2 * H, 2 * W), merge_iou=0.5)
    assert out.pred_masks.shape == (1, 2 * H, 2 * W)
    assert out.pred_masks[0, 8:24, :16].all() and out.pred_masks[0, 8:24, -16:].all()
    assert out.pred_masks[0].sum() == 16 * 32
    assert out.pred_boxes.tensor.tolist() == [[0, 8, 2 * W, 24]]


def test_rejects_a_width_that_does_not_match():
    with pytest.raises(ValueError, match="expected 64"):
        fold_wrapped_detections(_raw([[8, 4, 24, 12]], [0], [0.9]), 8, W, (H, W), 0.5)


@pytest.mark.parametrize("padding", [False, True])
def test_model_outputs_at_the_panorama_size(padding):
    torch.manual_seed(0)
    opts = [
        "MODEL.PANORAMA.WRAP_INFERENCE", "True",
        "MODEL.PANORAMA.WRAP_PADDING", str(padding),
        "MODEL.PANORAMA.INFERENCE_MARGIN", "20",
        # Random weights score low: let every detection through to exercise the folding.
        "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0",
    ]
    model = build_model(get_unlock_cfg(opts=opts)).eval()
    with torch.no_grad():
        out = model([{"image": torch.rand(3, 64, 128) * 255, "height": 64, "width": 128}])[0]
    assert out["sem_seg"].shape[1:] == (64, 128)
    torch.testing.assert_close(out["sem_seg"].sum(0), torch.ones(64, 128))
    inst = out["instances"]
    assert len(inst) > 0
    assert inst.pred_masks.shape[1:] == (64, 128) == inst.pred_amodal_masks.shape[1:]
    boxes = inst.pred_boxes.tensor
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= 128).all()
    ids, segments = out["panoptic_seg"]
    assert ids.shape == (64, 128)


def test_circular_padding_is_off_for_the_extended_input():
    """The margins give the sides their true neighbours; the extended image's own ends are not
    neighbours, so with both options the outputs are those of wrap-aware inference alone."""
    opts = ["MODEL.PANORAMA.WRAP_INFERENCE", "True", "MODEL.PANORAMA.INFERENCE_MARGIN", "32",
            "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0"]
    torch.manual_seed(0)
    both = build_model(get_unlock_cfg(opts=opts + ["MODEL.PANORAMA.WRAP_PADDING", "True"])).eval()
    alone = build_model(get_unlock_cfg(opts=opts)).eval()
    alone.load_state_dict(both.state_dict())
    image = [{"image": torch.rand(3, 64, 128) * 255, "height": 64, "width": 128}]
    with torch.no_grad():
        a, b = both(image)[0], alone(image)[0]
    torch.testing.assert_close(a["sem_seg"], b["sem_seg"])
    torch.testing.assert_close(a["instances"].scores, b["instances"].scores)
