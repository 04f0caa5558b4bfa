"""Perspective-view pseudo-labels: the merge rules on hand-made cases, the labeller on a geometric
fake model (blobs in known directions), and OPLL generation with the option on."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from detectron2.structures import Boxes, Instances
from scipy import ndimage

from common import get_unlock_cfg
from fixtures_synthetic import FAKE_MODEL, register_tiny_target, save_checkpoint
from fixtures_synthetic import write_target_images
from unlock.panorama.perspective import default_views
from unlock.utils.masks import tight_boxes
from unlock.panorama.seam import crosses_seam
from unlock.pseudo_labels import generator, storage
from unlock.pseudo_labels.perspective_views import PANORAMA_SOURCE as PANO
from unlock.pseudo_labels.perspective_views import (
    PerspectiveViewLabeller,
    cut_by_seam,
    mask_areas,
    merge_detections,
    merge_semantic_probabilities,
    perspective_views_key,
    touches_view_border,
    view_detection_budget,
)

W, H, VFOV = 512, 100, 70.3125
VIEWS = default_views(4, 104.0, 352, 94)  # yaws 0, 90, 180, -90


def columns(az_from, az_to):
    """Panorama columns whose centres lie between two azimuths (degrees, left positive)."""
    return slice(int(round((180 - az_to) / 360 * W)), int(round((180 - az_from) / 360 * W)))


def blob_panorama(*column_slices, rows=slice(40, 60)):
    image = torch.zeros(3, H, W)
    for cols in column_slices:
        image[:, rows, cols] = 1.0
    return image


class BlobModel:
    """Fake source model: each 4-connected bright region is a detection (visible = amodal), not
    wrapped around the seam (a flat prediction); class-1 probability ``sem`` on bright pixels.
    The panorama (width W) and the views get different scores and probabilities."""

    def __init__(self, view_score=0.9, pano_score=0.6, view_sem=0.8, pano_sem=0.4, on_pano=True):
        self.view, self.pano, self.on_pano = (view_score, view_sem), (pano_score, pano_sem), on_pano
        self.calls = []

    def __call__(self, inputs):
        self.calls.append(len(inputs))
        return [self.predict(x["image"]) for x in inputs]

    def predict(self, image):
        is_pano = image.shape[-1] == W
        score, sem = self.pano if is_pano else self.view
        fg = image[0] > 0.5
        probs = torch.stack([1 - fg * sem - ~fg * 0.1, fg * sem + ~fg * 0.1]).float()
        labels, n = ndimage.label(fg.numpy())
        masks = torch.as_tensor(labels[None] == np.arange(1, n + 1)[:, None, None])
        if is_pano and not self.on_pano:
            masks = masks[:0]
        inst = Instances(tuple(fg.shape))
        inst.pred_masks = inst.pred_amodal_masks = masks
        inst.pred_boxes = Boxes(tight_boxes(masks))
        inst.scores = torch.full((len(masks),), score)
        inst.pred_classes = torch.zeros(len(masks), dtype=torch.int64)
        return {"sem_seg": probs, "instances": inst}


def label(image, model, seam_aware=False):
    labeller = PerspectiveViewLabeller(model, VIEWS, VFOV, merge_iou=0.5, seam_aware=seam_aware)
    return labeller(image, model.predict(image))


# ---------------------------------------------------------------------------------------------
# pure merge rules


def test_semantic_average_by_hand():
    pano = torch.tensor([[[0.2, 0.6, 0.9]], [[0.8, 0.4, 0.1]]])  # (C=2, H=1, W=3)
    view_a = torch.tensor([[[0.0, 1.0, 0.5]], [[1.0, 0.0, 0.5]]])
    view_b = torch.tensor([[[0.0, 0.0, 0.3]], [[1.0, 1.0, 0.7]]])
    seen_a, seen_b = torch.tensor([[False, True, True]]), torch.tensor([[False, False, True]])
    merged = merge_semantic_probabilities(pano, [view_a, view_b], [seen_a, seen_b])
    want = torch.tensor([[[0.2, 0.8, (0.9 + 0.5 + 0.3) / 3]], [[0.8, 0.2, (0.1 + 0.5 + 0.7) / 3]]])
    torch.testing.assert_close(merged, want)
    with pytest.raises(ValueError, match="do not match"):
        merge_semantic_probabilities(pano, [view_a[:, :, :2]], [seen_a])


def box_masks(*boxes, size=(10, 20)):
    masks = torch.zeros(len(boxes), *size, dtype=torch.bool)
    for m, (x0, y0, x1, y1) in zip(masks, boxes):
        m[y0:y1, x0:x1] = True
    return masks


def test_merge_rules_by_hand():
    masks = box_masks(
        (0, 0, 10, 10),  # 0 panorama object, class 0, score 0.6
        (1, 0, 10, 10),  # 1 its duplicate from a view (IoU 0.9), score 0.9: kept instead
        (0, 0, 10, 10),  # 2 same pixels, class 1: another object
        (12, 0, 15, 10),  # 3 cut by a view border, inside object 4 (class 0): dropped
        (12, 0, 20, 10),  # 4 whole, score 0.3
        (16, 0, 20, 4),  # 5 cut, covered by 4 only 100 %, but class 1: kept
        (0, 0, 0, 0),  # 6 empty, from a view (seen nowhere on the panorama): dropped
    )
    classes = torch.tensor([0, 0, 1, 0, 0, 1, 0])
    scores = torch.tensor([0.6, 0.9, 0.5, 0.95, 0.3, 0.2, 0.99])
    cut = torch.tensor([False, False, False, True, False, True, False])
    sources = torch.tensor([PANO, 0, PANO, 1, PANO, 0, 2])  # panorama or view index
    keep = merge_detections(classes, scores, masks, cut, sources, merge_iou=0.5)
    assert keep.tolist() == [1, 2, 4, 5]  # highest score first
    # An empty panorama detection stays (plain OPLL keeps it); an empty view detection does not.
    empty = merge_detections(classes[[6]], scores[[6]], masks[[6]], cut[[6]], sources[[0]], 0.5)
    assert empty.tolist() == [0]
    # Detections of one source are left as the model's NMS left them.
    same = merge_detections(classes[:2], scores[:2], masks[:2], cut[:2], sources[[0, 0]], 0.5)
    assert same.tolist() == [1, 0]
    # A cut detection whose only "full version" is cut too is not dropped by rule 1; the two
    # cut pieces are still duplicates by rule 2 when they overlap enough.
    pieces = box_masks((12, 0, 18, 10), (13, 0, 20, 10))  # IoU 5/8
    two_cuts = merge_detections(
        classes[:2], scores[[4, 0]], pieces, torch.tensor([True, True]), torch.tensor([0, 1]), 0.5
    )
    assert two_cuts.tolist() == [1]
    with pytest.raises(ValueError, match="merge_iou"):
        merge_detections(classes, scores, masks, cut, sources, merge_iou=0.0)
    with pytest.raises(ValueError, match="6 sources"):
        merge_detections(classes, scores, masks, cut, sources[:6], merge_iou=0.5)
    empty = merge_detections(classes[:0], scores[:0], masks[:0], cut[:0], sources[:0], 0.5)
    assert empty.numel() == 0


def test_border_and_seam_helpers():
    masks = box_masks((0, 2, 3, 5), (5, 0, 8, 3), (5, 5, 8, 8), (17, 4, 20, 6), (0, 1, 20, 2))
    assert touches_view_border(masks).tolist() == [True, True, False, True, True]
    assert cut_by_seam(masks).tolist() == [True, False, False, True, False]
    seam = box_masks((0, 2, 3, 5))[0] | box_masks((17, 4, 20, 6))[0]
    assert crosses_seam(seam.numpy()) and not cut_by_seam(seam[None]).any()
    assert mask_areas(masks).tolist() == [9, 9, 9, 6, 20]
    boxes = tight_boxes(torch.stack([seam, masks[2], torch.zeros_like(seam)]))
    assert boxes.tolist() == [[0, 2, 20, 6], [5, 5, 8, 8], [0, 0, 0, 0]]  # flat boxes


# ---------------------------------------------------------------------------------------------
# the labeller on known geometry


def test_duplicate_is_merged_and_views_run_as_one_batch():
    model = BlobModel()
    image = blob_panorama(columns(-14, 14))  # in front: inside view 0 only
    out = label(image, model)
    assert model.calls[-1] == 4  # the 4 views in one forward pass
    inst = out["instances"]
    assert len(inst) == 1 and inst.scores.tolist() == [pytest.approx(0.9)]  # the view's copy
    blob = image[0] > 0.5
    iou = (inst.pred_masks[0] & blob).sum() / (inst.pred_masks[0] | blob).sum()
    assert iou > 0.95 and inst.pred_boxes.tensor[0].tolist() == pytest.approx(
        tight_boxes(inst.pred_amodal_masks)[0].tolist()
    )


def test_view_only_detection_is_added_with_its_box():
    image = blob_panorama(columns(80, 100))  # in front of view 1 (yaw 90°)
    inst = label(image, BlobModel(on_pano=False))["instances"]
    assert len(inst) == 1 and inst.scores.tolist() == [pytest.approx(0.9)]
    blob = image[0] > 0.5
    assert (inst.pred_masks[0] ^ blob).sum() <= 0.05 * blob.sum()
    x0, y0, x1, y1 = inst.pred_boxes.tensor[0].tolist()
    cols = columns(80, 100)
    assert abs(x0 - cols.start) <= 1 and abs(x1 - cols.stop) <= 1 and (y0, y1) == (40, 60)


def test_detections_cut_by_view_borders_give_way_to_the_whole_one():
    # 35°..55°: past view 0's edge (52°) and before view 1's (38°): both views cut it.
    image = blob_panorama(columns(35, 55))
    inst = label(image, BlobModel())["instances"]
    assert len(inst) == 1 and inst.scores.tolist() == [pytest.approx(0.6)]  # the panorama's
    # Without a whole version, the cut pieces are all there is: the best one is kept.
    inst = label(image, BlobModel(on_pano=False))["instances"]
    assert len(inst) == 1 and inst.pred_masks[0].sum() < (image[0] > 0.5).sum()


@pytest.mark.parametrize("seam_aware", [False, True])
def test_object_across_the_seam(seam_aware):
    image = blob_panorama(slice(0, 14), slice(W - 14, W))  # two flat pieces, one object
    image[:, 2:6] = 1.0  # a full-width strip at 30° elevation, above every view
    model = BlobModel()
    assert len(model.predict(image)["instances"]) == 3
    inst = label(image, model, seam_aware=seam_aware)["instances"]
    # The panorama's own detection touching both sides is never split.
    strip = [i for i, m in enumerate(inst.pred_masks) if m[2:6].all()]
    assert len(strip) == 1 and inst.pred_boxes.tensor[strip[0]].tolist() == [0, 2, W, 6]
    inst = inst[[i for i in range(len(inst)) if i != strip[0]]]
    assert (inst.scores == 0.9).all()  # the view behind the camera (yaw 180°) replaced them
    if seam_aware:
        assert len(inst) == 1 and crosses_seam(inst.pred_amodal_masks[0].numpy())
        # The flat box, as wrap-aware inference gives a seam object (docs/design.md "Seamless 360°").
        assert inst.pred_boxes.tensor[0].tolist() == pytest.approx([0, 40, W, 60], abs=1)
    else:
        assert len(inst) == 2 and not any(crosses_seam(m.numpy()) for m in inst.pred_masks)
        assert sorted(b[0] for b in inst.pred_boxes.tensor.tolist()) == pytest.approx(
            [0, W - 14], abs=1
        )


def test_semantic_probabilities_are_averaged_where_views_see():
    image = blob_panorama(columns(-10, 10), columns(40, 50), rows=slice(0, H))
    sem = label(image, BlobModel(view_sem=0.8, pano_sem=0.4))["sem_seg"]
    assert sem.shape == (2, H, W)
    torch.testing.assert_close(sem.sum(0), torch.ones(H, W))
    assert sem[1, 50, W // 2].item() == pytest.approx((0.4 + 0.8) / 2)  # view 0 only
    overlap = columns(44, 46).start  # 45°: seen by view 0 and view 1
    assert sem[1, 50, overlap].item() == pytest.approx((0.4 + 0.8 + 0.8) / 3, abs=1e-4)
    # Rows beyond the views' vertical reach (|lat| > 19°) keep the panorama's prediction.
    assert sem[1, :5, W // 2].tolist() == pytest.approx([0.4] * 5)


# ---------------------------------------------------------------------------------------------
# configuration and OPLL generation


def perspective_cfg(tmp_path, name, enabled=True, size=(64, 17), model=FAKE_MODEL):
    """A tiny target split and a config with views of the source aspect (352x94 scaled)."""
    dicts = write_target_images(str(tmp_path / "data"), num=3)
    register_tiny_target(name, dicts)
    cfg = get_unlock_cfg(opts=["MODEL.META_ARCHITECTURE", model] if model else [])
    cfg.MODEL.WEIGHTS = save_checkpoint(cfg, str(tmp_path / "source.pth"))
    cfg.UNLOCK.OPLL.TARGET_DATASET = name
    cfg.UNLOCK.OPLL.OUTPUT_DIR = str(tmp_path / ("views" if enabled else "plain"))
    cfg.UNLOCK.OPLL.PERSPECTIVE_VIEWS.ENABLED = enabled
    cfg.UNLOCK.OPLL.PERSPECTIVE_VIEWS.OUTPUT_SIZE = size
    return cfg, dicts


def test_generation_with_views_runs_end_to_end(tmp_path):
    cfg, dicts = perspective_cfg(tmp_path, "opll_views_e2e")
    plain = cfg.clone()
    plain.UNLOCK.OPLL.PERSPECTIVE_VIEWS.ENABLED = False
    plain.UNLOCK.OPLL.OUTPUT_DIR = str(tmp_path / "plain")
    assert perspective_views_key(plain) == {} and perspective_views_key(cfg)
    ids = [d["image_id"] for d in dicts]
    assert generator.raw_key(cfg, ids, "w") != generator.raw_key(plain, ids, "w")
    roots = [generator.generate_pseudo_labels(c) for c in (plain, cfg)]
    manifests = [storage.read_manifest(r) for r in roots]
    assert all(m["status"] == "complete" and m["counts"]["images"] == 3 for m in manifests)
    assert manifests[1]["counts"]["detections"] > 0
    for image_id in ids:
        flat, views = (storage.read_raw_prediction(r, image_id) for r in roots)
        assert views["sem_labels"].shape == (48, 96)
        # 48 rows span 70°: rows 0-10 and 38-47 lie above / below every 64x17 view (±18.8°).
        np.testing.assert_array_equal(views["sem_conf"][:10], flat["sem_conf"][:10])
        np.testing.assert_array_equal(views["sem_conf"][-10:], flat["sem_conf"][-10:])
        assert not np.array_equal(views["sem_conf"][20:28], flat["sem_conf"][20:28])
        storage.read_labels(roots[1], image_id)


def test_view_detection_budget_is_temporary():
    model = SimpleNamespace(
        roi_heads=SimpleNamespace(box_predictor=SimpleNamespace(test_topk_per_image=100)),
        proposal_generator=SimpleNamespace(post_nms_topk={True: 1000, False: 200}),
    )
    with pytest.raises(RuntimeError, match="inside"):
        with view_detection_budget(model, 30):
            assert model.roi_heads.box_predictor.test_topk_per_image == 30
            assert model.proposal_generator.post_nms_topk == {True: 1000, False: 60}
            raise RuntimeError("inside")
    assert model.roi_heads.box_predictor.test_topk_per_image == 100
    assert model.proposal_generator.post_nms_topk == {True: 1000, False: 200}
    for unchanged in (0, 100, 300):  # off, or no smaller than the panorama's budget
        with view_detection_budget(model, unchanged):
            assert model.roi_heads.box_predictor.test_topk_per_image == 100
    with view_detection_budget(BlobModel(), 30):  # a model without the attributes
        pass


def test_source_predictor_with_views_on_the_tiny_model(tmp_path):
    cfg, dicts = perspective_cfg(tmp_path, "opll_views_real", model=None)
    cfg.UNLOCK.OPLL.PERSPECTIVE_VIEWS.DETECTIONS_PER_VIEW = 7
    predictor = generator.SourcePredictor(cfg)
    assert predictor.perspective_views is not None and len(predictor.perspective_views.views) == 4
    box_predictor = predictor.model.roi_heads.box_predictor
    seen = []
    real_forward = predictor.model.forward

    def spy(batched_inputs):
        seen.append((len(batched_inputs), box_predictor.test_topk_per_image))
        outputs = real_forward(batched_inputs)
        if len(batched_inputs) == 4:
            assert all(len(o["instances"]) <= 7 for o in outputs)
        return outputs

    predictor.model.forward = spy
    record = predictor(dicts[0])
    assert seen == [(1, 100), (4, 7)] and box_predictor.test_topk_per_image == 100
    assert record["sem_labels"].shape == record["sem_conf"].shape == (48, 96)
    for det in record["detections"]:
        assert det["mask"].shape == det["amodal_mask"].shape == (48, 96)
        assert det["score"] >= cfg.UNLOCK.OPLL.MIN_SCORE


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("NUM_VIEWS", 0, "num_views"),
        ("FOV_DEG", 180.0, "fov_deg"),
        ("OUTPUT_SIZE", (64,), "OUTPUT_SIZE"),
        ("MERGE_IOU", 1.5, "MERGE_IOU"),
        ("PANORAMA_VFOV_DEG", 0.0, "PANORAMA_VFOV_DEG"),
        ("DETECTIONS_PER_VIEW", -1, "DETECTIONS_PER_VIEW"),
    ],
)
def test_bad_options_name_the_key(tmp_path, key, value, message):
    cfg = get_unlock_cfg()
    cfg.UNLOCK.OPLL.PERSPECTIVE_VIEWS.ENABLED = True
    cfg.UNLOCK.OPLL.PERSPECTIVE_VIEWS[key] = value
    with pytest.raises(ValueError, match=message):
        labeller = PerspectiveViewLabeller.from_config(cfg, BlobModel())
        labeller(blob_panorama(), BlobModel().predict(blob_panorama()))
    assert PerspectiveViewLabeller.from_config(get_unlock_cfg(), BlobModel()) is None
