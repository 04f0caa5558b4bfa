"""Occlusion-aware fusion (docs/design.md "Occlusion-aware fusion") and the paste-back of both
mask fields."""

import pytest
import torch
from detectron2.structures import Boxes, Instances

from class_tables import TOY
from unlock.classes import K2B
from unlock.modeling.postprocessing import (
    amodal_detector_postprocess,
    combine_amodal_panoptic,
    combine_amodal_panoptic_outputs,
    combine_visible_panoptic,
)

CAR, PED = 13, 11  # trainIds; detector ids 2 and 0


def _row(*values):
    return torch.tensor([list(values)], dtype=torch.long)


def _masks(rows, width):
    """Detections on a 1 x width image; rows = list of (start, stop) pixel ranges."""
    m = torch.zeros((len(rows), 1, width), dtype=torch.bool)
    for i, (a, b) in enumerate(rows):
        m[i, 0, a:b] = True
    return m


def _instances(visible, amodal, scores, classes, width):
    inst = Instances((1, width))
    inst.pred_boxes = Boxes(torch.zeros(len(scores), 4))
    inst.scores = torch.tensor(scores, dtype=torch.float32)
    inst.pred_classes = torch.tensor(classes, dtype=torch.long)
    inst.pred_masks = _masks(visible, width)
    inst.pred_amodal_masks = _masks(amodal, width)
    return inst


def _fuse(inst, semantic, **kw):
    opts = dict(stuff_area_limit=1, instances_score_thresh=0.55, amodal_score_thresh=0.5,
                class_table=K2B)
    opts.update(kw)
    return combine_amodal_panoptic_outputs(inst, semantic, **opts)


def test_tv6_clipped_amodal_and_stuff():
    # Test vector TV6 (docs/evaluation.md): one car, visible px 4-5, amodal px 4-7 (6-7 behind a
    # building).
    semantic = _row(0, 0, 0, 0, CAR, CAR, 2, 2, 2, 2)
    inst = _instances([(4, 6)], [(4, 8)], [0.9], [2], 10)
    (pan, segs), amodal = _fuse(inst, semantic)
    assert pan.tolist() == [[2, 2, 2, 2, 1, 1, 3, 3, 3, 3]]
    assert [(s["isthing"], s["category_id"], s["area"]) for s in segs] == [
        (True, 2, 2),
        (False, 0, 4),
        (False, 2, 4),
    ]
    assert amodal["thing_masks"].int().tolist() == [[[0, 0, 0, 0, 1, 1, 0, 0, 0, 0]]]
    # Occluded px 6-7 lie in the amodal union: void (255), not road as in the reference.
    assert amodal["stuff_seg"].tolist() == [[0, 0, 0, 0, 255, 255, 255, 255, 2, 2]]
    assert amodal["segments_info"] == [
        {
            "id": 1,
            "category_id": 2,
            "score": pytest.approx(0.9),
            "area": 2,
            "visible_id": 1,
            "instance_id": 0,
        }
    ]


def test_tv6_without_clipping_keeps_occluded_part():
    semantic = _row(0, 0, 0, 0, CAR, CAR, 2, 2, 2, 2)
    inst = _instances([(4, 6)], [(4, 8)], [0.9], [2], 10)
    _, amodal = _fuse(inst, semantic, clip_to_semantic_things=False)
    assert amodal["thing_masks"].int().tolist() == [[[0, 0, 0, 0, 1, 1, 1, 1, 0, 0]]]


def test_stuff_area_limit_voids_small_stuff():
    semantic = _row(0, 0, 0, 8, 8, 8, 8, 8, 10, 10)
    inst = _instances([], [], [], [], 10)
    (pan, segs), amodal = _fuse(inst, semantic, stuff_area_limit=3)
    assert [s["category_id"] for s in segs] == [0, 8]
    assert pan.tolist() == [[1, 1, 1, 2, 2, 2, 2, 2, 0, 0]]
    assert amodal["stuff_seg"].tolist() == [[0, 0, 0, 8, 8, 8, 8, 8, 255, 255]]
    assert amodal["thing_masks"].shape == (0, 1, 10)


def test_majority_vote_and_fallback():
    # Detector says pedestrian (0); semantic says car on 3 px, pedestrian on 1 px.
    semantic = _row(CAR, CAR, CAR, PED, 0, 0)
    inst = _instances([(0, 4)], [(0, 4)], [0.9], [0], 6)
    (_, segs), amodal = _fuse(inst, semantic)
    assert segs[0]["category_id"] == 2 and amodal["segments_info"][0]["category_id"] == 2
    (_, segs), _ = _fuse(inst, semantic, thing_class_from_semantic=False)
    assert segs[0]["category_id"] == 0
    # No semantic thing pixels under the mask and no clipping: fall back to the detector class.
    inst = _instances([(4, 6)], [(4, 6)], [0.9], [5], 6)
    (_, segs), _ = _fuse(inst, semantic, clip_to_semantic_things=False)
    assert segs[0]["category_id"] == 5


def test_amodal_vote_excludes_overlap():
    # Two amodal masks overlap on px 2-3 (semantic: pedestrian); outside the overlap mask 0 sees
    # cars only, so the overlap must not flip it to pedestrian.
    semantic = _row(CAR, CAR, PED, PED, PED, PED)
    inst = _instances([(0, 2), (4, 6)], [(0, 4), (2, 6)], [0.9, 0.8], [2, 0], 6)
    _, amodal = _fuse(inst, semantic)
    assert [s["category_id"] for s in amodal["segments_info"]] == [2, 0]


def test_empty_detections_and_no_stuff():
    semantic = _row(CAR, CAR, PED, PED)
    (pan, segs), amodal = _fuse(_instances([], [], [], [], 4), semantic)
    assert pan.tolist() == [[0, 0, 0, 0]] and segs == []
    assert amodal["stuff_seg"].tolist() == [[255] * 4] and amodal["segments_info"] == []


def test_thresholds_select_detections():
    semantic = _row(CAR, CAR, CAR, CAR)
    inst = _instances([(0, 2), (2, 4)], [(0, 2), (2, 4)], [0.52, 0.6], [2, 2], 4)
    (pan, segs), amodal = _fuse(inst, semantic)
    assert [s["instance_id"] for s in segs] == [1]  # 0.52 < 0.55 visible threshold
    assert [s["instance_id"] for s in amodal["segments_info"]] == [1, 0]  # both >= 0.5
    assert amodal["segments_info"][1]["visible_id"] == 0


def test_overlap_orders():
    semantic = _row(CAR, CAR, CAR, CAR)
    inst = _instances([(0, 3), (1, 4)], [(0, 3), (1, 4)], [0.9, 0.7], [2, 2], 4)
    (pan, segs), _ = _fuse(inst, semantic, overlap_order="score")
    assert pan.tolist() == [[1, 1, 1, 2]] and segs[0]["instance_id"] == 0
    # reference: same class, score descending, later overwrites -> lower score wins.
    (pan, segs), _ = _fuse(inst, semantic, overlap_order="reference")
    assert pan.tolist() == [[1, 2, 2, 2]]
    assert [(s["instance_id"], s["area"]) for s in segs] == [(0, 1), (1, 3)]
    with pytest.raises(ValueError, match="OVERLAP_ORDER"):
        _fuse(inst, semantic, overlap_order="random")


def test_visible_pixels_join_amodal():
    # The amodal mask misses px 0 of its own visible mask: the fused amodal segment covers it.
    semantic = _row(CAR, CAR, CAR, 0)
    inst = _instances([(0, 2)], [(1, 3)], [0.9], [2], 4)
    _, amodal = _fuse(inst, semantic)
    assert amodal["thing_masks"].int().tolist() == [[[1, 1, 1, 0]]]
    # The published fusion (unpaired detectors): the amodal segment is the amodal mask alone.
    _, published = _fuse(inst, semantic, amodal_includes_visible=False)
    assert published["thing_masks"].int().tolist() == [[[0, 1, 1, 0]]]
    assert published["segments_info"][0]["area"] == 2


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("order", ["score", "reference"])
@pytest.mark.parametrize("clip", [True, False])
def test_invariants_random(seed, order, clip):
    g = torch.Generator().manual_seed(seed)
    h, w, n = 12, 20, 8
    semantic = torch.randint(0, 18, (h, w), generator=g)
    inst = Instances((h, w))
    inst.pred_boxes = Boxes(torch.zeros(n, 4))
    inst.scores = torch.rand(n, generator=g)
    inst.pred_classes = torch.randint(0, 7, (n,), generator=g)
    inst.pred_masks = torch.rand(n, h, w, generator=g) > 0.6
    inst.pred_amodal_masks = torch.rand(n, h, w, generator=g) > 0.5
    (pan, segs), amodal = _fuse(
        inst, semantic, stuff_area_limit=3, overlap_order=order, clip_to_semantic_things=clip
    )
    ids = [s["id"] for s in segs]
    assert ids == list(range(1, len(segs) + 1))
    assert set(pan.unique().tolist()) <= set(ids) | {0}  # one id per pixel: segments disjoint
    for s in segs:
        area = int((pan == s["id"]).sum())
        assert area == s["area"] > 0
        if s["isthing"]:
            assert 0 <= s["category_id"] <= 6 and s["score"] >= 0.55
            if clip:
                assert bool((semantic[pan == s["id"]] >= 11).all())
        else:
            assert 0 <= s["category_id"] <= 10 and area >= 3
            assert bool((semantic[pan == s["id"]] == s["category_id"]).all())
    masks = amodal["thing_masks"]
    assert masks.shape[0] == len(amodal["segments_info"])
    for row, s in enumerate(amodal["segments_info"]):
        assert s["id"] == row + 1 and s["area"] == int(masks[row].sum()) > 0
        assert s["score"] >= 0.5 and 0 <= s["category_id"] <= 6
        if s["visible_id"]:
            visible = pan == s["visible_id"]
            assert bool((masks[row] | ~visible).all())  # visible ⊆ amodal
            linked = [v for v in segs if v["id"] == s["visible_id"]][0]
            assert linked["instance_id"] == s["instance_id"]
    stuff = amodal["stuff_seg"]
    assert bool(((stuff == 255) | (stuff <= 10)).all())
    assert not bool((stuff != 255)[masks.any(0)].any()) if len(masks) else True


def test_shape_mismatch_is_explained():
    inst = _instances([(0, 2)], [(0, 2)], [0.9], [2], 4)
    with pytest.raises(ValueError, match="amodal_detector_postprocess"):
        combine_visible_panoptic(inst, torch.zeros(2, 4, dtype=torch.long), class_table=K2B)
    with pytest.raises(ValueError, match="pred_amodal_masks"):
        combine_amodal_panoptic(inst, torch.zeros(2, 4, dtype=torch.long), class_table=K2B)


def test_amodal_detector_postprocess_pastes_both_fields():
    inst = Instances((10, 20))
    inst.pred_boxes = Boxes(torch.tensor([[0.0, 0.0, 10.0, 5.0], [5.0, 5.0, 5.0, 5.0]]))
    inst.scores = torch.tensor([0.9, 0.8])
    inst.pred_classes = torch.tensor([1, 2])
    inst.pred_masks = torch.ones(2, 1, 28, 28)
    amodal = torch.zeros(2, 1, 28, 28)
    amodal[0, 0, :, :14] = 1.0  # left half of the box only
    inst.pred_amodal_masks = amodal
    out = amodal_detector_postprocess(inst, 20, 40)  # 2x upscale
    assert len(out) == 1  # the empty box is dropped from every field together
    assert out.pred_masks.shape == out.pred_amodal_masks.shape == (1, 20, 40)
    assert out.pred_amodal_masks.dtype == torch.bool
    assert int(out.pred_masks.sum()) == 20 * 10
    assert int(out.pred_amodal_masks.sum()) == 10 * 10
    assert bool(out.pred_amodal_masks[0, :10, :10].all())


def test_fusion_follows_the_class_table_it_is_given():
    # TOY's things are semantic ids 1, 4, 6 (detector classes 0, 1, 2) and its ignore label is
    # 250: a "dog" (semantic 6) detection voted by dog pixels, a "robot" pixel (semantic 1) that
    # K2B would call stuff road-adjacent, and unpainted stuff pixels of TOY's "wall" (2).
    semantic = _row(2, 2, 6, 6, 6, 1, 2, 2)
    inst = _instances([(2, 5)], [(2, 6)], [0.9], [1], 8)  # detector says cart; pixels say dog
    (pan, segments), amodal = _fuse(inst, semantic, class_table=TOY)
    things = [s for s in segments if s["isthing"]]
    assert [s["category_id"] for s in things] == [2]  # dog, by the semantic vote
    stuff = {s["category_id"]: s["area"] for s in segments if not s["isthing"]}
    assert stuff == {2: 4}  # the lone robot pixel is a thing pixel, never stuff
    assert amodal["segments_info"][0]["category_id"] == 2
    # Clipped to TOY's thing pixels: the amodal mask keeps 2..5, the robot pixel included.
    assert amodal["thing_masks"][0, 0].nonzero().flatten().tolist() == [2, 3, 4, 5]
    assert amodal["stuff_seg"][0].tolist() == [2, 2, 250, 250, 250, 250, 2, 2]
