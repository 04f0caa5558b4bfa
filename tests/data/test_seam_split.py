"""The training mapper with cfg.INPUT.PANORAMA_WRAP: instances across the 360° seam are split
into their flat pieces, one box each, only while the sample shows the whole panorama width."""

import numpy as np
import pytest
from detectron2.data import transforms as T
from PIL import Image

from common import get_unlock_cfg
from unlock.classes import K2B
from unlock.data import AmodalDatasetMapper
from unlock.data.detection_utils import build_amodal_instances
from unlock.data.seam_split import shows_full_panorama, split_seam_objects
from unlock.panorama.seam import seam_piece_columns
from unlock.data.validation import DatasetFormatError
from unlock.utils.masks import encode_rle, mask_to_box

H, W = 20, 40


def _mask(rows, cols):
    m = np.zeros((H, W), bool)
    m[rows[0] : rows[1], cols] = True
    return m


ACROSS = list(range(34, 40)) + list(range(0, 4))  # 6 columns left of the seam, 4 right of it
A_VIS = A_AMO = _mask((4, 10), ACROSS)  # crosses with both masks
B_VIS = _mask((12, 18), list(range(30, 40)))  # visible part flat at the right border,
B_AMO = _mask((12, 18), list(range(30, 40)) + [0, 1])  # hidden part across the seam
C_VIS = C_AMO = _mask((2, 8), list(range(15, 22)))  # flat


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("seam_split")
    image = np.random.RandomState(0).randint(0, 256, (H, W, 3)).astype(np.uint8)
    sem = np.zeros((H, W), np.uint8)
    for cls, m in ((13, A_VIS), (11, B_VIS), (14, C_VIS)):
        sem[m] = cls
    Image.fromarray(image).save(root / "pano.png")
    Image.fromarray(sem).save(root / "sem.png")
    uncertain = np.zeros((H, W), np.uint8)
    uncertain[:, 36:] = 255  # a band at the right border, across A and B
    Image.fromarray(uncertain).save(root / "unc.png")
    anns = [
        {"category_id": c, "segmentation": encode_rle(v), "amodal_segmentation": encode_rle(a),
         "segment_id": i, "iscrowd": 0}
        for i, (c, v, a) in enumerate(((2, A_VIS, A_AMO), (0, B_VIS, B_AMO), (3, C_VIS, C_AMO)))
    ]  # fmt: skip
    return {"file_name": str(root / "pano.png"), "image_id": "pano", "height": H, "width": W,
            "sem_seg_file_name": str(root / "sem.png"),
            "uncertain_file_name": str(root / "unc.png"),
            "annotations": anns}  # fmt: skip


def _map(sample, wrap, augs=(), seed=0):
    mapper = AmodalDatasetMapper(is_train=True, augmentations=list(augs), class_table=K2B,
                                 image_format="BGR", panorama_wrap=wrap)  # fmt: skip
    np.random.seed(seed)
    return mapper(sample)["instances"]


def _np(bitmasks):
    return bitmasks.tensor.numpy()


def test_shows_full_panorama():
    full = [
        [],
        [T.ResizeTransform(H, W, 2 * H, 2 * W)],
        [T.HFlipTransform(W)],
        [T.CropTransform(0, 3, W, H - 6)],  # rows only
        [T.ResizeTransform(H, W, 10, 20), T.CropTransform(0, 0, 20, 8), T.HFlipTransform(20)],
    ]
    for tfms in full:
        out_w = T.TransformList(tfms).apply_image(np.zeros((H, W, 3), np.uint8)).shape[1]
        assert shows_full_panorama(T.TransformList(tfms), W, out_w), tfms
    for tfms, out_w in (([T.CropTransform(5, 0, 30, H)], 30), ([T.CropTransform(0, 0, 30, H)], 30),
                        ([T.CropTransform(10, 0, 30, H), T.HFlipTransform(30)], 30)):  # fmt: skip
        assert not shows_full_panorama(T.TransformList(tfms), W, out_w), tfms
    with pytest.raises(ValueError, match="positive"):
        shows_full_panorama(T.TransformList([]), 0, W)


def test_seam_pieces_and_split():
    left, right = seam_piece_columns(A_AMO.any(axis=0))
    assert np.flatnonzero(left).tolist() == [0, 1, 2, 3]
    assert np.flatnonzero(right).tolist() == list(range(34, 40))
    assert seam_piece_columns(C_AMO.any(axis=0)) is None
    everywhere = np.ones((H, W), bool)
    assert seam_piece_columns(everywhere.any(axis=0)) is None  # no empty column to cut at
    objects = [
        {"category_id": 2, "mask": A_VIS, "amodal_mask": A_AMO, "amodal_exact": True},
        {"category_id": 3, "mask": C_VIS, "amodal_mask": C_AMO},
        {"category_id": 1, "mask": None, "amodal_mask": A_AMO},  # pseudo-label, no visible label
        {"category_id": 4, "mask": everywhere, "amodal_mask": everywhere},
    ]
    out = split_seam_objects(objects)
    assert [o["category_id"] for o in out] == [2, 2, 3, 1, 1, 4]
    assert out[2] is objects[1] and out[5] is objects[3]
    assert out[0]["amodal_exact"] and out[1]["amodal_exact"]  # other keys travel with the pieces
    assert out[3]["mask"] is None and out[4]["mask"] is None
    np.testing.assert_array_equal(out[0]["mask"] | out[1]["mask"], A_VIS)
    assert not (out[0]["mask"] & out[1]["mask"]).any()
    inst = build_amodal_instances(out, {"visible": None, "amodal": None}, (H, W))
    assert inst.gt_boxes.tensor.tolist() == [
        [0, 4, 4, 10], [34, 4, 40, 10], [15, 2, 22, 8], [0, 4, 4, 10], [34, 4, 40, 10],
        [0, 0, 40, 20],
    ]


def test_mapper_splits_seam_instances(sample):
    inst = _map(sample, True)
    boxes = inst.gt_boxes.tensor.tolist()
    # A -> two pieces; B -> its visible right-border piece only (the left piece is hidden, so it
    # is dropped like an object whose visible part a crop removed); C unchanged.
    assert boxes == [[0, 4, 4, 10], [34, 4, 40, 10], [30, 12, 40, 18], [15, 2, 22, 8]]
    assert inst.gt_classes.tolist() == [2, 2, 0, 3]
    vis, amo = _np(inst.gt_masks), _np(inst.gt_amodal_masks)
    np.testing.assert_array_equal(vis[0] | vis[1], A_VIS)
    np.testing.assert_array_equal(amo[2], B_VIS)  # restricted to its side: no column 0, 1
    for k in range(len(inst)):
        assert mask_to_box(vis[k] | amo[k]) == boxes[k]
        assert boxes[k][2] - boxes[k][0] < W
    # Ignore maps: the image-level band minus each piece's own mask, as for any instance.
    band = np.zeros((H, W), bool)
    band[:, 36:] = True
    for k in range(len(inst)):
        np.testing.assert_array_equal(_np(inst.gt_mask_ignore)[k], band & ~vis[k])


def test_option_off_and_crops_keep_instances_whole(sample):
    off = _map(sample, False)
    assert off.gt_boxes.tensor.tolist() == [[0, 4, 40, 10], [0, 12, 40, 18], [15, 2, 22, 8]]
    # A crop narrower than the panorama has no seam inside: on and off give the same sample.
    crop = [T.RandomCrop("absolute", (H, 36)), T.RandomFlip(0.5)]
    for seed in range(4):
        a, b = _map(sample, False, crop, seed), _map(sample, True, crop, seed)
        for name in a.get_fields():
            field_a, field_b = a.get(name), b.get(name)
            ta = field_a.tensor if hasattr(field_a, "tensor") else field_a
            tb = field_b.tensor if hasattr(field_b, "tensor") else field_b
            assert ta.equal(tb), name


def test_flip_keeps_the_seam(sample):
    inst = _map(sample, True, [T.RandomFlip(1.0)])
    boxes = inst.gt_boxes.tensor.tolist()
    assert [0, 4, 6, 10] in boxes and [36, 4, 40, 10] in boxes
    assert all(b[2] - b[0] < W for b in boxes)


def test_mapper_from_config_reads_the_option(sample):
    cfg = get_unlock_cfg(opts=["INPUT.PANORAMA_WRAP", "True", "INPUT.MIN_SIZE_TRAIN", f"({H},)"])
    assert AmodalDatasetMapper(cfg, is_train=True).panorama_wrap
    assert not AmodalDatasetMapper(get_unlock_cfg(), is_train=True).panorama_wrap
    no_width = {k: v for k, v in sample.items() if k != "width"}
    mapper = AmodalDatasetMapper(cfg, is_train=True)
    with pytest.raises(DatasetFormatError, match="'width'"):
        mapper(no_width)
