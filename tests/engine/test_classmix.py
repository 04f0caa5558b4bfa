"""The authors' EMA-teacher ClassMix extra (docs/method.md "Authors' extras"): pure
mask/mix/weight functions on hand-made tensors, the EMA update on a tiny module, and a
2-iteration UnlockTrainer run."""

import math
import os

import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.data import DatasetCatalog
from detectron2.engine import HookBase
from torch import nn

from common import get_unlock_cfg
from test_trainer import make_cfg
from unlock.engine import UnlockTrainer
from unlock.engine.strong_augment import StrongAugment
from unlock.engine.classmix import (
    ClassMixTrainer,
    EMATeacher,
    classmix_batch,
    ema_alpha,
    pick_mix_classes,
    teacher_targets,
    weighted_cross_entropy,
)


def test_classmix_batch_mixes_image_label_and_weight():
    sem = torch.tensor([[0, 0, 5], [255, 5, 7]])
    labelled = torch.full((3, 2, 3), 10, dtype=torch.uint8)
    unlabelled = torch.full((3, 2, 3), 20, dtype=torch.uint8)
    teacher = torch.full((2, 3), 3)
    weight = torch.full((2, 3), 0.25)
    images, labels, weights = classmix_batch(
        [labelled], [sem], [unlabelled], [teacher], [weight], [torch.tensor([5, 255])]
    )
    # mask = sem in {5, 255} = [[0, 0, 1], [1, 1, 0]]
    expected = torch.tensor([[20, 20, 10], [10, 10, 20]], dtype=torch.uint8)
    assert images[0].dtype == torch.uint8
    assert torch.equal(images[0], expected[None].expand(3, 2, 3))
    assert torch.equal(labels[0], torch.tensor([[3, 3, 5], [255, 5, 3]]))
    assert torch.equal(weights[0], torch.tensor([[0.25, 0.25, 1.0], [1.0, 1.0, 0.25]]))


def test_classmix_batch_rejects_pairs_of_different_size():
    with pytest.raises(ValueError, match="sizes differ"):
        classmix_batch(
            [torch.zeros(3, 2, 3)],
            [torch.zeros(2, 3, dtype=torch.long)],
            [torch.zeros(3, 2, 4)],
            [torch.zeros(2, 4, dtype=torch.long)],
            [torch.zeros(2, 4)],
            [torch.tensor([0])],
        )


def test_pick_mix_classes_takes_half_rounded_up_of_the_batch_classes_including_ignore():
    labels = [torch.tensor([[0, 0, 5], [255, 5, 7]]), torch.tensor([[7, 7], [7, 7]])]
    seen_ignore = False
    for seed in range(40):
        picks = pick_mix_classes(labels, torch.Generator().manual_seed(seed))
        assert len(picks) == 2
        for pick in picks:
            assert len(pick) == 2 and len(set(pick.tolist())) == 2  # ceil(4 / 2)
            assert set(pick.tolist()) <= {0, 5, 7, 255}
            seen_ignore |= 255 in pick.tolist()
    assert seen_ignore
    odd = pick_mix_classes([torch.tensor([1, 2, 3])], torch.Generator().manual_seed(0))
    assert len(odd[0]) == 2  # ceil(3 / 2)


def test_teacher_targets_batch_fraction_and_ignored_rows():
    # Image 1 (2 classes, 1x2): max probs 0.99, 0.6; image 2: 0.97, 0.5 -> 2 of 4 >= 0.968.
    p1 = torch.tensor([[[0.99, 0.4]], [[0.01, 0.6]]])
    p2 = torch.tensor([[[0.03, 0.5]], [[0.97, 0.5]]])
    labels, weights, fraction = teacher_targets([p1, p2], 0.968)
    assert fraction == 0.5
    assert torch.equal(labels[0], torch.tensor([[0, 1]]))
    assert torch.equal(labels[1][:, 0], torch.tensor([1]))
    assert torch.equal(weights[0], torch.tensor([[0.5, 0.5]]))

    probs = torch.zeros(2, 4, 1)
    probs[0] = 1.0  # all confident
    _, weights, fraction = teacher_targets([probs], 0.968, ignore_rows=(1, 2))
    assert fraction == 1.0
    assert weights[0][:, 0].tolist() == [0.0, 1.0, 0.0, 0.0]


def test_weighted_cross_entropy_ignores_padding_and_255():
    logits = torch.zeros(1, 2, 2, 2)  # uniform: CE = ln 2 per pixel; the 1x2 labels pad to 2x2
    labels = [torch.tensor([[1, 255]])]
    weights = [torch.tensor([[0.5, 1.0]])]
    loss = weighted_cross_entropy(logits, labels, weights, ignore_label=255)
    assert loss.item() == pytest.approx(0.5 * math.log(2))  # one valid pixel, weight 0.5
    labels = [torch.tensor([[1, 0]])]
    loss = weighted_cross_entropy(logits, labels, weights, ignore_label=255)
    assert loss.item() == pytest.approx((0.5 + 1.0) * math.log(2) / 2)
    # Another table's ignore label: 250 is skipped, 255 would be an error, not a class.
    labels = [torch.tensor([[1, 250]])]
    loss = weighted_cross_entropy(logits, labels, weights, ignore_label=250)
    assert loss.item() == pytest.approx(0.5 * math.log(2))


class TinyStudent(nn.Module):
    def __init__(self, value: float):
        super().__init__()
        self.backbone = nn.Linear(2, 2)
        self.sem_seg_head = nn.Linear(2, 1)
        self.roi_heads = nn.Linear(2, 2)  # not part of the teacher
        self.register_buffer("pixel_mean", torch.zeros(3, 1, 1), False)
        self.register_buffer("pixel_std", torch.ones(3, 1, 1), False)
        self.set(value)

    def set(self, value: float):
        with torch.no_grad():
            for p in self.parameters():
                p.fill_(value)


def test_ema_alpha_ramp():
    assert ema_alpha(0, 0.999) == 0.0
    assert ema_alpha(1, 0.999) == 0.5
    assert ema_alpha(3, 0.999) == 0.75
    assert ema_alpha(100000, 0.999) == 0.999


def test_ema_teacher_copies_then_averages_parameters():
    student = TinyStudent(1.0)
    teacher = EMATeacher(student, max_alpha=0.999)
    assert not hasattr(teacher, "roi_heads")
    assert all(not p.requires_grad for p in teacher.parameters())
    student.set(2.0)
    assert teacher.update(student, 0) == 0.0  # first call: copy
    assert all(torch.all(p == 2.0) for p in teacher.parameters())
    student.set(4.0)
    assert teacher.update(student, 3) == 0.75
    assert all(
        torch.allclose(p, torch.tensor(0.75 * 2.0 + 0.25 * 4.0)) for p in teacher.parameters()
    )

    # A resumed teacher keeps averaging instead of copying the student again.
    resumed = EMATeacher(TinyStudent(0.0), max_alpha=0.5)
    resumed.load_state_dict(teacher.state_dict())
    student.set(0.0)
    assert resumed.update(student, 10) == 0.5
    assert all(torch.allclose(p, torch.tensor(1.25)) for p in resumed.parameters())


class RecordStudent(HookBase):
    """Keeps the student's backbone / semantic head parameters after iteration 0."""

    def __init__(self):
        self.after_first = None

    def after_step(self):
        if self.trainer.iter == 0:
            self.after_first = {
                n: p.detach().clone()
                for n, p in self.trainer.model.named_parameters()
                if n.startswith(("backbone.", "sem_seg_head."))
            }


@pytest.mark.slow
def test_two_iterations_with_classmix(tmp_path):
    opts = [
        "UNLOCK.OPLL.EXTRAS.CLASSMIX_WEIGHT",
        "1.0",
        "UNLOCK.OPLL.EXTRAS.CLASSMIX_CONF",
        "0.0",
        "UNLOCK.DATA.CROP_SIZE",
        "(48, 64)",
    ]
    cfg = UnlockTrainer.generate_pseudo_labels(make_cfg(tmp_path, "classmix_target", opts))
    trainer = UnlockTrainer(cfg)
    assert isinstance(trainer._trainer, ClassMixTrainer)
    assert trainer._trainer.augment == StrongAugment(0.8, 0.2, 0.5, (0.15, 1.15))  # cfg defaults
    trainer.resume_or_load(resume=False)
    source = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    record = RecordStudent()
    trainer.register_hooks([record])
    trainer.train()

    histories = trainer.storage.histories()
    values = [v for v, _ in histories["loss_classmix"].values()]
    assert len(values) == 2 and all(math.isfinite(v) and v > 0 for v in values)
    assert [v for v, _ in histories["classmix/teacher_confident_fraction"].values()] == [1.0, 1.0]

    # Iteration 0 copies the student (= source weights); iteration 1 uses alpha = 0.5.
    teacher = dict(trainer._trainer.teacher.named_parameters())
    moved = 0
    for name, p in record.after_first.items():
        expected = 0.5 * source[name] + 0.5 * p
        assert torch.allclose(teacher[name], expected, atol=1e-6), name
        moved += int(not torch.equal(teacher[name], source[name]))
    assert moved > 0

    trainer.checkpointer.save("with_teacher")
    path = str(tmp_path / "out" / "with_teacher.pth")
    saved = torch.load(path, map_location="cpu", weights_only=False)
    assert bool(saved["classmix_teacher"]["initialized"])
    plain = UnlockTrainer.build_model(cfg)  # the student loads under the normal names
    DetectionCheckpointer(plain).load(path)
    for name, p in plain.named_parameters():
        assert torch.equal(p, dict(trainer.model.named_parameters())[name]), name


def test_classmix_config_is_validated():
    cfg = get_unlock_cfg(opts=["UNLOCK.OPLL.EXTRAS.CLASSMIX_WEIGHT", "-1.0"])
    with pytest.raises(ValueError, match="CLASSMIX_WEIGHT"):
        UnlockTrainer.build_model(cfg)
    cfg = get_unlock_cfg(
        opts=["UNLOCK.OPLL.EXTRAS.CLASSMIX_WEIGHT", "1.0", "UNLOCK.OPLL.EXTRAS.EMA_ALPHA", "1.0"]
    )
    with pytest.raises(ValueError, match="EMA_ALPHA"):
        UnlockTrainer.generate_pseudo_labels(cfg)


def _classmix_rank(dicts, dataset, cfg_yaml, out_dir):
    """Runs in each launched process: OPLL (sharded), then ClassMix training; records hashes."""
    import hashlib
    import json

    from detectron2.config import CfgNode
    from detectron2.utils import comm

    from fixtures_synthetic import register_tiny_target

    torch.set_num_threads(1)
    register_tiny_target(dataset, dicts)
    cfg = UnlockTrainer.generate_pseudo_labels(CfgNode.load_cfg(cfg_yaml))
    trainer = UnlockTrainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()

    def digest(module):  # parameters only: BatchNorm statistics are per rank (broadcast_buffers off)
        h = hashlib.sha1()
        for name, t in sorted(module.named_parameters()):
            h.update(name.encode() + t.detach().contiguous().numpy().tobytes())
        return h.hexdigest()

    losses = [v for v, _ in trainer.storage.histories()["loss_classmix"].values()]
    record = {"teacher": digest(trainer._trainer.teacher), "student": digest(trainer.model.module),
              "losses": losses, "world": comm.get_world_size()}  # fmt: skip
    with open(os.path.join(out_dir, f"rank{comm.get_rank()}.json"), "w") as f:
        json.dump(record, f)


@pytest.mark.slow
def test_two_processes_keep_identical_teachers(tmp_path):
    """Under launch with 2 CPU processes (GLOO, DDP) each rank updates its EMA teacher locally
    from the all-reduced student: students and teachers must stay identical across ranks."""
    import json

    from detectron2.engine import launch

    opts = ["UNLOCK.OPLL.EXTRAS.CLASSMIX_WEIGHT", "1.0", "UNLOCK.OPLL.EXTRAS.CLASSMIX_CONF", "0.0",
            "UNLOCK.DATA.CROP_SIZE", "(48, 64)", "SOLVER.IMS_PER_BATCH", "2",
            "DATALOADER.NUM_WORKERS", "0"]  # fmt: skip
    cfg = make_cfg(tmp_path, "classmix_dist_target", opts)
    dicts = DatasetCatalog.get("classmix_dist_target")
    launch(_classmix_rank, 2, dist_url="auto",
           args=(dicts, "classmix_dist_target", cfg.dump(), str(tmp_path)))  # fmt: skip
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world"] == 2
    assert ranks[0]["student"] == ranks[1]["student"]
    assert ranks[0]["teacher"] == ranks[1]["teacher"]
    losses = ranks[0]["losses"]  # detectron2 gathers the metrics to rank 0 and logs them there
    assert len(losses) == 2 and all(math.isfinite(v) and v > 0 for v in losses)
