"""EMA-teacher ClassMix semantic self-training: the authors' undocumented extra.

Not in the paper. Each step, besides the normal losses on the pseudo-labelled (ADCL-pasted)
crops, an EMA teacher labels a second stream of unlabelled target crops; half of the classes of
the labelled batch are cut out of each labelled crop and pasted onto an unlabelled crop
(ClassMix, as in DACS/DAFormer), and the student's semantic head is trained on the mixed images
with a confidence-weighted cross-entropy (``loss_classmix``).

The mixed images get the code's strong augmentation (``strong_augment.py``). Where and why this
differs from the authors' code (one backward pass, a backbone + semantic-head teacher, optional
row heuristic, mean over non-ignored pixels): docs/method.md "Authors' extras".
"""

import copy
import logging
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from detectron2.data import DatasetCatalog, build_detection_train_loader
from detectron2.data.samplers import TrainingSampler
from detectron2.engine import SimpleTrainer
from detectron2.structures import ImageList
from detectron2.utils.events import get_event_storage
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .extras import strong_augment_from_cfg

__all__ = [
    "EMATeacher",
    "ClassMixTrainer",
    "build_classmix_trainer",
    "build_unlabelled_loader",
    "classmix_batch",
    "ema_alpha",
    "pick_mix_classes",
    "semantic_logits",
    "teacher_targets",
]

logger = logging.getLogger(__name__)

# Only these keys of the target split reach the unlabelled stream: it must never see labels.
_UNLABELLED_KEYS = ("file_name", "image_id", "height", "width")


# ---------------------------------------------------------------------------- pure functions
def ema_alpha(iteration: int, max_alpha: float) -> float:
    """EMA decay at ``iteration``: ``min(1 - 1/(iteration+1), max_alpha)`` (the authors' ramp).

    It is 0 at iteration 0, so the first update copies the student into the teacher.
    """
    return min(1.0 - 1.0 / (iteration + 1), max_alpha)


def pick_mix_classes(
    labels: Sequence[torch.Tensor], generator: Optional[torch.Generator] = None
) -> List[torch.Tensor]:
    """Per image, ceil(n/2) classes drawn without replacement from the n labels present in the
    whole batch, the ignore label included as the authors do (docs/method.md, "Authors'
    extras", step 3).

    Args:
        labels: per image (H_i, W_i) long semantic labels of the labelled crops.

    Returns:
        per image a 1-D long tensor of the picked labels.
    """
    present = torch.unique(torch.cat([lab.reshape(-1).cpu() for lab in labels]))
    n = len(present)
    picks = []
    for _ in labels:
        order = torch.randperm(n, generator=generator)[: (n + 1) // 2]
        picks.append(present[order])
    return picks


def teacher_targets(
    probs: Sequence[torch.Tensor], conf_thresh: float, ignore_rows: Tuple[int, int] = (0, 0)
) -> Tuple[List[torch.Tensor], List[torch.Tensor], float]:
    """Teacher pseudo-labels and their pixel weights (docs/method.md, "Authors' extras", step 2).

    Args:
        probs: per image (C, H_i, W_i) teacher softmax probabilities.
        conf_thresh: confidence (max probability) a pixel needs to count as confident.
        ignore_rows: (top, bottom) rows of each image whose weight is set to 0.

    Returns:
        (labels, weights, fraction): per image (H_i, W_i) long argmax labels and (H_i, W_i) float
        weights, all equal to ``fraction`` = the share of the batch's pixels with confidence
        >= conf_thresh (one scalar per batch), except the ignored rows (0).
    """
    confident, total, labels = 0, 0, []
    for p in probs:
        conf, lab = p.max(dim=0)
        confident += int((conf >= conf_thresh).sum())
        total += conf.numel()
        labels.append(lab)
    fraction = confident / max(total, 1)
    weights = []
    top, bottom = (int(r) for r in ignore_rows)
    for lab in labels:
        w = torch.full(lab.shape, fraction, dtype=torch.float32, device=lab.device)
        w[:top] = 0.0
        if bottom > 0:
            w[-bottom:] = 0.0
        weights.append(w)
    return labels, weights, fraction


def classmix_batch(
    labelled_images: Sequence[torch.Tensor],
    labelled_sems: Sequence[torch.Tensor],
    unlabelled_images: Sequence[torch.Tensor],
    teacher_labels: Sequence[torch.Tensor],
    teacher_weights: Sequence[torch.Tensor],
    classes: Sequence[torch.Tensor],
) -> Tuple[List[torch.Tensor], List[torch.Tensor], List[torch.Tensor]]:
    """ClassMix of pair i = (labelled crop i, unlabelled crop i) (docs/method.md, "Authors'
    extras", step 3).

    mask = labelled sem in classes[i]; image = mask ? labelled : unlabelled; label = mask ?
    labelled sem : teacher label; weight = mask ? 1 : teacher weight.

    Args:
        labelled_images, unlabelled_images: per pair (3, H, W) images (same size within a pair).
        labelled_sems, teacher_labels: per pair (H, W) long labels.
        teacher_weights: per pair (H, W) float weights of the teacher labels.
        classes: per pair 1-D tensor of the labels to cut out of the labelled crop.

    Returns:
        (images (3, H, W) in the input dtype, labels (H, W) long, weights (H, W) float) per pair.
    """
    images, labels, weights = [], [], []
    for img_l, sem_l, img_u, lab_u, w_u, cls in zip(
        labelled_images, labelled_sems, unlabelled_images, teacher_labels, teacher_weights, classes
    ):
        if img_l.shape != img_u.shape or sem_l.shape != lab_u.shape:
            raise ValueError(
                f"ClassMix pair sizes differ: labelled {tuple(img_l.shape)}/{tuple(sem_l.shape)}, "
                f"unlabelled {tuple(img_u.shape)}/{tuple(lab_u.shape)}"
            )
        sem_l = sem_l.to(lab_u.device)
        mask = torch.isin(sem_l, cls.to(sem_l.device))
        images.append(torch.where(mask[None], img_l.to(img_u.device), img_u))
        labels.append(torch.where(mask, sem_l, lab_u))
        weights.append(torch.where(mask, torch.ones_like(w_u), w_u))
    return images, labels, weights


def semantic_logits(
    backbone: nn.Module,
    sem_seg_head: nn.Module,
    images: Sequence[torch.Tensor],
    pixel_mean: torch.Tensor,
    pixel_std: torch.Tensor,
) -> Tuple[torch.Tensor, List[Tuple[int, int]]]:
    """Semantic logits of the model's own path (AmodalPanopticFPN: normalise, pad, backbone,
    SemSegFPNHead layers, upsampling by the common stride), independent of train/eval mode.

    Args:
        images: per image (3, H_i, W_i) in cfg.INPUT.FORMAT, 0..255.
        pixel_mean, pixel_std: (3, 1, 1) normalisation of the model.

    Returns:
        (logits (N, C, Hp, Wp) at the padded size, image sizes [(H_i, W_i)]).
    """
    device = pixel_mean.device
    images = [(img.to(device).float() - pixel_mean) / pixel_std for img in images]
    batch = ImageList.from_tensors(
        images,
        backbone.size_divisibility,
        padding_constraints=getattr(backbone, "padding_constraints", None),
    )
    logits = sem_seg_head.layers(backbone(batch.tensor))
    logits = F.interpolate(
        logits.float(),
        scale_factor=sem_seg_head.common_stride,
        mode="bilinear",
        align_corners=False,
    )
    return logits, batch.image_sizes


def weighted_cross_entropy(
    logits: torch.Tensor, labels: Sequence[torch.Tensor], weights: Sequence[torch.Tensor], *,
    ignore_label: int,
) -> torch.Tensor:
    """Pixel-weighted CE of (N, C, Hp, Wp) logits against per-image (H_i, W_i) labels (top-left
    aligned; padding and ``ignore_label`` ignored), averaged over the non-ignored pixels."""
    n, _, hp, wp = logits.shape
    target = logits.new_full((n, hp, wp), ignore_label, dtype=torch.long)
    weight = logits.new_zeros((n, hp, wp))
    for i, (lab, w) in enumerate(zip(labels, weights)):
        target[i, : lab.shape[0], : lab.shape[1]] = lab
        weight[i, : w.shape[0], : w.shape[1]] = w
    ce = F.cross_entropy(logits, target, ignore_index=ignore_label, reduction="none")
    valid = (target != ignore_label).sum().clamp(min=1)
    return (ce * weight).sum() / valid


# ------------------------------------------------------------------------------ the teacher
def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


class EMATeacher(nn.Module):
    """EMA copy of the student's backbone and semantic head (docs/method.md, "Authors' extras",
    steps 1-2).

    ``initialized`` is a buffer, so a checkpoint that holds the teacher resumes it; a teacher
    that was never initialised (fresh start or a checkpoint without it) copies the student.
    Like the authors' teacher it stays in train mode (BatchNorm uses batch statistics; there is
    no dropout in these models) and never receives gradients.
    """

    def __init__(self, student: nn.Module, max_alpha: float):
        super().__init__()
        student = _unwrap(student)
        self.backbone = copy.deepcopy(student.backbone)
        self.sem_seg_head = copy.deepcopy(student.sem_seg_head)
        for p in self.parameters():
            p.requires_grad_(False)
        self.register_buffer("pixel_mean", student.pixel_mean.detach().clone(), False)
        self.register_buffer("pixel_std", student.pixel_std.detach().clone(), False)
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))
        self.max_alpha = float(max_alpha)

    def _pairs(self, student: nn.Module):
        student = _unwrap(student)
        for name in ("backbone", "sem_seg_head"):
            mine = dict(getattr(self, name).named_parameters())
            for pname, p in getattr(student, name).named_parameters():
                yield mine[pname], p

    @torch.no_grad()
    def update(self, student: nn.Module, iteration: int) -> float:
        """θ_t := α θ_t + (1 - α) θ_s over parameters only (buffers are not averaged, as in
        the authors' code); returns the α used. An uninitialised teacher copies the student
        (parameters and buffers) instead, which is also what α = 0 at iteration 0 does."""
        if not bool(self.initialized):
            student = _unwrap(student)
            for name in ("backbone", "sem_seg_head"):
                getattr(self, name).load_state_dict(getattr(student, name).state_dict())
            self.initialized.fill_(True)
            return 0.0
        alpha = ema_alpha(iteration, self.max_alpha)
        for t, s in self._pairs(student):
            t.mul_(alpha).add_(s.detach(), alpha=1.0 - alpha)
        return alpha

    @torch.no_grad()
    def forward(self, images: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        """Per image (C, H_i, W_i) softmax probabilities of (3, H_i, W_i) images."""
        logits, sizes = semantic_logits(
            self.backbone, self.sem_seg_head, images, self.pixel_mean, self.pixel_std
        )
        return [logits[i, :, :h, :w].softmax(dim=0) for i, (h, w) in enumerate(sizes)]


# ---------------------------------------------------------------------- data and training step
def build_unlabelled_loader(cfg):
    """Infinite loader of unlabelled crops of cfg.UNLOCK.OPLL.TARGET_DATASET: the training
    resize, random crop of UNLOCK.DATA.CROP_SIZE (a plain crop, no labels to constrain it, as in
    the authors' unlabelled pipeline) and flip; SOLVER.IMS_PER_BATCH images per step."""
    from ..data.dataset_mapper import AmodalDatasetMapper, build_amodal_augmentation
    from ..pseudo_labels.generator import opll_class_table

    name = cfg.UNLOCK.OPLL.TARGET_DATASET
    dicts = [{k: d[k] for k in _UNLABELLED_KEYS if k in d} for d in DatasetCatalog.get(name)]
    if not dicts:
        raise ValueError(f"UNLOCK.OPLL.TARGET_DATASET {name!r} has no images for ClassMix")
    mapper = AmodalDatasetMapper(
        is_train=True,
        augmentations=build_amodal_augmentation(cfg, is_train=True),
        class_table=opll_class_table(cfg),
        image_format=cfg.INPUT.FORMAT,
    )
    from .trainer import loader_prefetch_kwargs  # trainer imports this module

    return build_detection_train_loader(
        cfg, mapper=mapper, dataset=dicts, sampler=TrainingSampler(len(dicts)),
        **loader_prefetch_kwargs(cfg),
    )


class ClassMixTrainer(SimpleTrainer):
    """SimpleTrainer whose step adds ``loss_classmix`` on ClassMix images to the model's losses
    (one backward, one optimizer step)."""

    def __init__(
        self,
        model: nn.Module,
        data_loader,
        optimizer,
        unlabelled_loader,
        *,
        weight: float,
        ema_alpha: float,
        conf_thresh: float,
        ignore_rows: Tuple[int, int] = (0, 0),
        augment: Optional[Callable[[List[torch.Tensor]], List[torch.Tensor]]] = None,
    ):
        """
        Args:
            model, data_loader, optimizer: as SimpleTrainer; batches must carry "image" and
                "sem_seg" (the pseudo-labelled, ADCL-pasted crops).
            unlabelled_loader: batches of dicts with "image" (unlabelled target crops).
            weight: CLASSMIX_WEIGHT; ema_alpha: EMA_ALPHA; conf_thresh: CLASSMIX_CONF;
            ignore_rows: CLASSMIX_IGNORE_ROWS.
            augment: strong augmentation of the mixed images (``StrongAugment``), or None.
        """
        super().__init__(model, data_loader, optimizer)
        self.unlabelled_loader = unlabelled_loader
        self._unlabelled_iter_obj = None
        self.teacher = EMATeacher(model, ema_alpha)
        self.weight = float(weight)
        self.conf_thresh = float(conf_thresh)
        self.ignore_rows = tuple(int(r) for r in ignore_rows)
        self.augment = augment

    def classmix_loss(self, data: List[dict], unlabelled: List[dict]) -> torch.Tensor:
        """CLASSMIX_WEIGHT x weighted CE of the student's semantic head on the mixed images."""
        student = _unwrap(self.model)
        imgs_l = [d["image"] for d in data]
        sems_l = [d["sem_seg"] for d in data]
        imgs_u = [_fit(u["image"], img.shape[-2:]) for u, img in zip(unlabelled, imgs_l)]
        if len(imgs_u) < len(imgs_l):
            raise ValueError(f"{len(imgs_u)} unlabelled crops for {len(imgs_l)} labelled ones")
        labels_u, weights_u, fraction = teacher_targets(
            self.teacher(imgs_u), self.conf_thresh, self.ignore_rows
        )
        device = labels_u[0].device
        mixed = classmix_batch(
            [x.to(device) for x in imgs_l],
            sems_l,
            [x.to(device) for x in imgs_u],
            labels_u,
            weights_u,
            pick_mix_classes(sems_l),
        )
        images = self.augment(mixed[0]) if self.augment is not None else mixed[0]
        logits, _ = semantic_logits(
            student.backbone, student.sem_seg_head, images, student.pixel_mean, student.pixel_std
        )
        get_event_storage().put_scalar("classmix/teacher_confident_fraction", fraction)
        # The semantic head's own ignore value (checked against the class table when built).
        ignore = student.sem_seg_head.ignore_value
        return self.weight * weighted_cross_entropy(logits, *mixed[1:3], ignore_label=ignore)

    def run_step(self):
        assert self.model.training, "[ClassMixTrainer] model was changed to eval mode!"
        start = time.perf_counter()
        data = next(self._data_loader_iter)
        unlabelled = next(self._unlabelled_iter)
        data_time = time.perf_counter() - start
        # Before the step, as the authors do; ranks hold identical parameters
        # after DDP's all-reduce, so the local update keeps the teachers identical too.
        self.teacher.update(self.model, self.iter)

        loss_dict = self.model(data)
        loss_dict = dict(loss_dict)
        loss_dict["loss_classmix"] = self.classmix_loss(data, unlabelled)
        losses = sum(loss_dict.values())
        self.optimizer.zero_grad()
        losses.backward()
        self.after_backward()
        self._write_metrics(loss_dict, data_time)
        self.optimizer.step()

    def extra_checkpointables(self) -> Dict[str, nn.Module]:
        """State saved beside the model in every checkpoint (read by UnlockTrainer)."""
        return {"classmix_teacher": self.teacher}

    @property
    def _unlabelled_iter(self):
        if self._unlabelled_iter_obj is None:
            self._unlabelled_iter_obj = iter(self.unlabelled_loader)
        return self._unlabelled_iter_obj


def _fit(image: torch.Tensor, size) -> torch.Tensor:
    """The unlabelled image resized (bilinear) to ``size`` when the crops differ in size (only
    without cropping, UNLOCK.DATA.CROP_SIZE = (0, 0), or images smaller than the crop)."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    out = F.interpolate(image[None].float(), size=tuple(size), mode="bilinear", align_corners=False)
    return out[0].round().clamp(0, 255).to(image.dtype)


def build_classmix_trainer(cfg, model: nn.Module, data_loader, optimizer) -> ClassMixTrainer:
    """The ClassMix training step of ``UnlockTrainer.build_train_step``: a ClassMixTrainer on the
    trainer's model, loader and optimizer, with the unlabelled loader and options of
    cfg.UNLOCK.OPLL.EXTRAS. Its teacher is checkpointed as the extra state "classmix_teacher"
    (the student stays under "model"; loading MODEL.WEIGHTS without resuming never loads it)."""
    if cfg.SOLVER.AMP.ENABLED:
        raise NotImplementedError("UNLOCK.OPLL.EXTRAS.CLASSMIX_WEIGHT > 0 with SOLVER.AMP.ENABLED")
    extras = cfg.UNLOCK.OPLL.EXTRAS
    step = ClassMixTrainer(
        model,
        data_loader,
        optimizer,
        build_unlabelled_loader(cfg),
        weight=extras.CLASSMIX_WEIGHT,
        ema_alpha=extras.EMA_ALPHA,
        conf_thresh=extras.CLASSMIX_CONF,
        ignore_rows=tuple(extras.CLASSMIX_IGNORE_ROWS),
        augment=strong_augment_from_cfg(cfg),
    )
    logger.info(
        f"ClassMix self-training: weight {extras.CLASSMIX_WEIGHT}, EMA {extras.EMA_ALPHA}, "
        f"confidence {extras.CLASSMIX_CONF}, unlabelled {cfg.UNLOCK.OPLL.TARGET_DATASET}"
    )
    return step
