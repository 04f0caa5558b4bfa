"""The training-step comparison of issue 11 item 4 (unlock.benchmark.train_step) and its report
(unlock.benchmark.budget): the stock model gets PanopticFPN's inputs, both models start from
the same weights and see the same batches; the report renders every row. No timing is asserted."""

import os

import pytest
import torch
from detectron2.structures import BitMasks, Boxes, Instances

from common import REPO_ROOT
from class_tables import TOY
from unlock.benchmark import budget, train_step
from unlock.classes import K2B

SOURCE_CONFIG = os.path.join(REPO_ROOT, "configs", "synthetic", "source_only.yaml")


def test_stock_semantic_keeps_stuff_and_merges_things():
    sem = torch.tensor([[0, 10, 11, 17], [255, 5, 14, 255]])
    assert train_step.stock_semantic(sem, K2B).tolist() == [[0, 10, 11, 11], [255, 5, 11, 255]]
    # TOY: stuff 0, 2, 3, 5 -> 0..3, things 1, 4, 6 -> 4, ignore 250 kept.
    sem = torch.tensor([[0, 1, 2, 3], [4, 5, 6, 250]])
    assert train_step.stock_semantic(sem, TOY).tolist() == [[0, 4, 1, 2], [4, 3, 4, 250]]


def test_stock_batch_has_panoptic_fpn_fields_only():
    inst = Instances((4, 6))
    inst.gt_boxes = Boxes(torch.tensor([[0.0, 0.0, 2.0, 2.0]]))
    inst.gt_classes = torch.tensor([3])
    for name in ("gt_masks", "gt_amodal_masks", "gt_mask_ignore", "gt_amodal_mask_ignore"):
        inst.set(name, BitMasks(torch.zeros(1, 4, 6, dtype=torch.bool)))
    image = torch.zeros(3, 4, 6, dtype=torch.uint8)
    batch = [{"image": image, "instances": inst, "sem_seg": torch.full((4, 6), 13)}]
    (d,) = train_step.stock_batch(batch, K2B)
    assert d["image"] is image
    assert sorted(d["instances"].get_fields()) == ["gt_boxes", "gt_classes", "gt_masks"]
    assert d["instances"].gt_masks is inst.gt_masks
    assert (d["sem_seg"] == 11).all() and (batch[0]["sem_seg"] == 13).all()  # input untouched


@pytest.fixture(scope="module")
def tiny_cfg(tmp_path_factory):
    from detectron2.config import get_cfg

    from unlock.config import add_unlock_config
    from unlock.data.datasets.synthetic import register_synthetic
    from unlock.data.synthetic import generate_synthetic_benchmark

    root = tmp_path_factory.mktemp("train_step")
    generate_synthetic_benchmark(str(root / "data" / "ts"), seed=1, num_source=4, num_source_val=1,
                                 num_target_train=1, num_target_test=1, scale=0.1, workers=1,
                                 progress=False)  # fmt: skip
    names = register_synthetic(str(root / "data"), "ts")
    cfg = get_cfg()
    add_unlock_config(cfg)
    cfg.merge_from_file(SOURCE_CONFIG)
    cfg.merge_from_list(
        ["DATASETS.TRAIN", (names["source_train"],), "DATASETS.TEST", (), "MODEL.DEVICE", "cpu",
         "MODEL.WEIGHTS", "", "DATALOADER.NUM_WORKERS", "0", "SOLVER.IMS_PER_BATCH", "2",
         "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "32", "OUTPUT_DIR", str(root / "out")]
    )  # fmt: skip
    cfg.freeze()
    return cfg


def test_pair_shares_every_common_weight(tiny_cfg):
    ours, stock, shared, total = train_step.build_pair(tiny_cfg)
    assert type(stock).__name__ == "PanopticFPN" and type(ours).__name__ == "AmodalPanopticFPN"
    assert stock.sem_seg_head.predictor.out_channels == 12
    assert ours.sem_seg_head.predictor.out_channels == 18
    assert not hasattr(stock.roi_heads, "amodal_mask_head")
    assert ours.training and stock.training
    own = dict(ours.state_dict())
    for k, v in stock.state_dict().items():
        if k in own and own[k].shape == v.shape:
            assert torch.equal(own[k], v), k
    # only the semantic predictor (12 vs 18 classes) is not shared
    assert total - shared == 2 and shared == len(
        [k for k in stock.state_dict() if not k.startswith("sem_seg_head.predictor")]
    )


def test_time_train_step_and_report(tiny_cfg):
    res = train_step.time_train_step(tiny_cfg, warmup=1, iters=2, num_batches=2, part_iters=1)
    assert res["finite"] and res["batch"] == 2 and res["rounds"] == 2
    for key in ("ours", "stock"):
        r = res[key]
        assert r["step_ms"] > 0 and r["forward_ms"] > 0 and r["backward_ms"] > 0
        assert r["parts_ms"]["backbone"] > 0
    assert "roi_heads.amodal_mask_head" in res["ours"]["parts_ms"]
    assert "roi_heads.amodal_mask_head" not in res["stock"]["parts_ms"]
    assert res["ratio"] == pytest.approx(res["ours"]["step_ms"] / res["stock"]["step_ms"])

    train = {"batch": 2, "data_ms": [1.0, 3.0, 2.0], "step_ms": [100.0, 120.0, 110.0],
             "map_ms": 10.0}
    paste = dict(train, map_ms=70.0)
    op = {k: 10.0 for k in ("infer_ms", "pass1_ms", "predict_ms", "write_ms", "pass2_ms",
                            "pass2_read_ms", "pass2_label_ms", "pass2_write_ms")}  # fmt: skip
    op.update(images=4, warmup=1, rounds=2, detections=100.0, objects=9.0, build_ms=50.0,
              hist_ms_per_image=1.0, ratio_pass1=1.0, ratio_pass1_cpu=1.0, ratio_total=2.0)  # fmt: skip
    r = {"train_step": res, "opll_speed": op, "train_source": train, "train_unlock": paste,
         "infer": {"infer_s": 1.0, "images": 5},
         "large": {"pass1": 2.0, "images": 8}}  # fmt: skip
    text = "\n".join(budget.render_budget(r))
    assert text.startswith("### Speed of the pieces the budget is made of")
    assert f"**{res['ratio']:.2f}x**" in text and "amodal mask head (+ loss)" in text
    # loader: median data 2 ms of a 110 ms step; serial mapping 20 / 140 ms per batch of 2
    source, unlock = [ln for ln in text.splitlines() if ln.startswith("| source-only |")
                      or ln.startswith("| UNLOCK (ADCL pasting) |")]  # fmt: skip
    assert "| 2.0 / 3.0 | 110 | 20 | **yes** |" in source
    assert "| 140 | **no** |" in unlock  # mapping a batch takes longer than a step
    # whole-run ratio: pass 1 2.0 s / 8 images against the inference row 1.0 s / 5 images
    assert "| 1.25x (250 / 200 ms per image) | <= 1.2x | **no** |" in text
    assert budget.render_budget({}) == []
