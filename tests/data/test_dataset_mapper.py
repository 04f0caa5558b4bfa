"""AmodalDatasetMapper: all targets stay aligned under resize, crop and flip."""

import copy
import os

import numpy as np
import pytest
import torch
from detectron2.data import transforms as T

from amodal_fixtures import H, W, make_blendpass, make_kitti
from common import get_unlock_cfg
from unlock.data import AmodalDatasetMapper, CategoryRatioRandomCrop
from unlock.data.datasets import load_blendpass_val, load_kitti360_aps
from unlock.data.detection_utils import UNCERTAIN_CLASS, transform_uncertain_boxes
from unlock.utils.file_io import atomic_write_image
from unlock.utils.masks import encode_rle, mask_to_box


def _cfg(crop=(0, 0), flip=0.0, **extra):
    opts = ["UNLOCK.DATA.CROP_SIZE", str(tuple(crop)), "UNLOCK.DATA.FLIP_PROB", str(flip)]
    for k, v in extra.items():
        opts += [k, str(v)]
    return get_unlock_cfg(opts=opts)


@pytest.fixture(scope="module")
def bp_dicts(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("bp"))
    make_blendpass(root)
    dicts = load_blendpass_val(os.path.join(root, "BlendPASS"))
    # Uncertainty maps: road pixels are visibly uncertain, sky pixels amodally uncertain, so that
    # after augmentation they must equal the same classes in the (identically moved) sem_seg.
    pan_sem = AmodalDatasetMapper(_cfg(), is_train=False)._read_semantic(dicts[0], (H, W))
    for key, cls in (("uncertain_file_name", 0), ("amodal_uncertain_file_name", 10)):
        path = os.path.join(root, f"{key}.png")
        atomic_write_image(path, np.where(pan_sem == cls, 255, 0).astype(np.uint8))
        dicts[0][key] = path
    return dicts


def _np(bitmasks):
    return bitmasks.tensor.numpy()


def _check_aligned(out):
    inst, sem = out["instances"], out["sem_seg"].numpy()
    h, w = out["image"].shape[1:]
    assert sem.shape == (h, w) and inst.image_size == (h, w)
    vis, amo = _np(inst.gt_masks), _np(inst.gt_amodal_masks)
    vis_ign, amo_ign = _np(inst.gt_mask_ignore), _np(inst.gt_amodal_mask_ignore)
    for i in range(len(inst)):
        assert vis[i].any()
        assert not (vis[i] & ~amo[i]).any() or not amo[i].any()  # visible inside amodal
        assert inst.gt_boxes.tensor[i].tolist() == mask_to_box(vis[i] | amo[i])
        # Semantic agrees with the visible mask: its pixels carry the thing's trainId.
        assert (sem[vis[i]] == int(inst.gt_classes[i]) + 11).all()
        # Ignore maps moved with the semantic map (road / sky regions), minus the own mask.
        np.testing.assert_array_equal(vis_ign[i], (sem == 0) & ~vis[i])
        if amo[i].any():
            np.testing.assert_array_equal(amo_ign[i], (sem == 10) & ~amo[i])
        else:
            assert amo_ign[i].all()


def test_resize_only_targets(bp_dicts):
    out = AmodalDatasetMapper(_cfg(), is_train=True)(bp_dicts[0])
    assert out["image"].dtype == torch.uint8 and out["image"].shape == (3, 64, 102)
    assert out["sem_seg"].dtype == torch.int64
    assert (out["height"], out["width"], out["image_id"]) == (H, W, "100_")
    inst = out["instances"]
    assert inst.gt_classes.tolist() == [0, 2, 6]
    _check_aligned(out)
    # The two-wheeler has no amodal label: zero amodal mask, amodal loss ignored everywhere.
    assert not _np(inst.gt_amodal_masks)[2].any() and _np(inst.gt_amodal_mask_ignore)[2].all()
    assert "annotations" not in out


def test_flip_mirrors_every_target(bp_dicts):
    ref = AmodalDatasetMapper(_cfg(), is_train=True)(bp_dicts[0])
    out = AmodalDatasetMapper(_cfg(flip=1.0), is_train=True)(bp_dicts[0])
    _check_aligned(out)
    assert torch.equal(out["image"], ref["image"].flip(-1))
    assert torch.equal(out["sem_seg"], ref["sem_seg"].flip(-1))
    for field in ("gt_masks", "gt_amodal_masks", "gt_mask_ignore", "gt_amodal_mask_ignore"):
        assert torch.equal(
            out["instances"].get(field).tensor, ref["instances"].get(field).tensor.flip(-1)
        )


@pytest.mark.parametrize("seed", range(4))
def test_crop_and_flip_keep_alignment(bp_dicts, seed):
    ref = AmodalDatasetMapper(_cfg(), is_train=True)(bp_dicts[0])
    np.random.seed(seed)
    mapper = AmodalDatasetMapper(
        _cfg(crop=(40, 48), flip=0.5, **{"UNLOCK.DATA.CROP_MAX_TRIES": 1}), is_train=True
    )
    out = mapper(bp_dicts[0])
    assert tuple(out["image"].shape) == (3, 40, 48)
    _check_aligned(out)
    # Find the window (and flip) of the resize-only output that the crop shows.
    img, full = out["image"], ref["image"]
    hits = [
        (y, x, f)
        for f in (False, True)
        for y in range(full.shape[1] - 40 + 1)
        for x in range(full.shape[2] - 48 + 1)
        if torch.equal((img.flip(-1) if f else img), full[:, y : y + 40, x : x + 48])
    ]
    assert len(hits) >= 1
    y, x, f = hits[0]

    def window(t):
        t = t[..., y : y + 40, x : x + 48]
        return t.flip(-1) if f else t

    assert torch.equal(out["sem_seg"], window(ref["sem_seg"]))
    # Objects whose visible part left the crop are dropped; the others are the cut masks.
    ref_vis = window(ref["instances"].gt_masks.tensor)
    kept = [i for i in range(len(ref["instances"])) if ref_vis[i].any()]
    assert out["instances"].gt_classes.tolist() == ref["instances"].gt_classes[kept].tolist()
    assert torch.equal(out["instances"].gt_masks.tensor, ref_vis[kept])
    assert torch.equal(
        out["instances"].gt_amodal_masks.tensor,
        window(ref["instances"].gt_amodal_masks.tensor)[kept],
    )


def test_empty_image_gives_empty_instances(bp_dicts):
    out = AmodalDatasetMapper(_cfg(crop=(32, 32), flip=1.0), is_train=True)(bp_dicts[1])
    inst = out["instances"]
    assert len(inst) == 0 and inst.gt_boxes.tensor.shape == (0, 4)
    for field in ("gt_masks", "gt_amodal_masks", "gt_mask_ignore", "gt_amodal_mask_ignore"):
        assert inst.get(field).tensor.shape == (0, 32, 32)


def test_eval_mode_resizes_only(bp_dicts):
    mapper = AmodalDatasetMapper(_cfg(crop=(32, 32), flip=1.0), is_train=False)
    out = mapper(bp_dicts[0])
    assert "instances" not in out and "annotations" not in out
    assert out["image"].shape == (3, 64, 102) and out["sem_seg"].shape == (64, 102)
    unlabelled = {k: bp_dicts[0][k] for k in ("file_name", "image_id", "height", "width")}
    out = mapper(unlabelled)
    assert "sem_seg" not in out
    train_out = AmodalDatasetMapper(_cfg(), is_train=True)(unlabelled)
    assert (train_out["sem_seg"] == 255).all() and len(train_out["instances"]) == 0


def test_semantic_png_and_panoptic_derivation_agree(tmp_path):
    make_kitti(str(tmp_path))
    d = load_kitti360_aps(os.path.join(tmp_path, "KITTI-360-APS"))[0]
    mapper = AmodalDatasetMapper(_cfg(), is_train=False)
    from_png = mapper(d)["sem_seg"]
    no_png = {k: v for k, v in d.items() if k != "sem_seg_file_name"}
    assert torch.equal(from_png, mapper(no_png)["sem_seg"])
    sem = mapper._read_semantic(no_png, (H, W))
    assert (sem[17:19, 26:30] == 255).all()  # crowd -> ignore
    assert (sem[:, 31] == 255).all()  # void
    assert sem[0, 0] == 10 and sem[19, 0] == 0 and sem[9, 0] == 2


def test_pseudo_label_without_visible_label(bp_dicts):
    d = copy.deepcopy(bp_dicts[0])
    amodal_only = np.zeros((H, W), bool)
    amodal_only[2:6, 2:8] = True
    d["annotations"] = [
        {"category_id": 3, "segmentation": None, "amodal_segmentation": encode_rle(amodal_only)}
    ]
    inst = AmodalDatasetMapper(_cfg(**{"INPUT.MIN_SIZE_TRAIN": "(20,)"}), is_train=True)(d)[
        "instances"
    ]
    assert len(inst) == 1 and inst.gt_classes.tolist() == [3]
    assert not inst.gt_masks.tensor.any() and inst.gt_mask_ignore.tensor.all()
    assert inst.gt_boxes.tensor[0].tolist() == [2.0, 2.0, 8.0, 6.0]


def test_post_augment_hook_feeds_instances(bp_dicts):
    class Paste(AmodalDatasetMapper):
        def _post_augment(self, dataset_dict, image, sem_seg, objects, ignore_maps, transforms):
            mask = np.zeros(image.shape[:2], bool)
            mask[1:4, 1:5] = True
            objects = objects + [{"category_id": 5, "mask": mask, "amodal_mask": mask}]
            return image, sem_seg, objects, ignore_maps

    inst = Paste(_cfg(), is_train=True)(bp_dicts[1])["instances"]
    assert inst.gt_classes.tolist() == [5]
    assert inst.gt_boxes.tensor[0].tolist() == [1.0, 1.0, 5.0, 4.0]


def test_category_ratio_crop_redraws():
    sem = np.zeros((100, 100), np.uint8)
    sem[:10, :10] = 1
    image = np.zeros((100, 100, 3), np.uint8)
    np.random.seed(0)
    aug = CategoryRatioRandomCrop((10, 10), cat_max_ratio=0.75, max_tries=10000)
    for _ in range(5):
        t = aug.get_transform(image, sem)
        win = sem[t.y0 : t.y0 + 10, t.x0 : t.x0 + 10]
        counts = np.bincount(win.ravel(), minlength=2)
        assert counts.min() > 0 and counts.max() < 75
    big = CategoryRatioRandomCrop((500, 20), max_tries=1).get_transform(image, sem)
    assert (big.h, big.w) == (100, 20)  # clipped to the image


def test_uncertain_boxes_follow_the_flip_and_only_when_enabled(bp_dicts):
    d = copy.deepcopy(bp_dicts[0])
    d["uncertain_boxes"] = [[1.0, 2.0, 5.0, 6.0]]
    opts = {"INPUT.MIN_SIZE_TRAIN": f"({H},)"}
    off = AmodalDatasetMapper(_cfg(flip=1.0, **opts), is_train=True)(copy.deepcopy(d))
    assert "uncertain_boxes" not in off and (off["instances"].gt_classes >= 0).all()
    on = AmodalDatasetMapper(
        _cfg(flip=1.0, **opts, **{"UNLOCK.OPLL.UNCERTAIN_BOXES": True}), is_train=True
    )(d)
    inst = on["instances"]
    assert len(inst) == len(off["instances"]) + 1
    assert inst.gt_classes[-1].item() == UNCERTAIN_CLASS
    assert inst.gt_boxes.tensor[-1].tolist() == [W - 5.0, 2.0, W - 1.0, 6.0]
    assert torch.equal(inst.gt_boxes.tensor[:-1], off["instances"].gt_boxes.tensor)


def test_transform_uncertain_boxes_clips_and_drops_outside_the_crop():
    crop = T.TransformList([T.CropTransform(10, 0, 20, 8)])
    boxes = [[12.0, 1.0, 40.0, 9.0], [0.0, 0.0, 5.0, 5.0], [29.5, 0.0, 31.0, 4.0]]
    out = transform_uncertain_boxes(boxes, crop, (8, 20))
    # first: shifted and clipped to the 20x8 crop; second: outside; third: under one pixel wide
    assert out.tolist() == [[2.0, 1.0, 20.0, 8.0]]
