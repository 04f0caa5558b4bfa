"""Training step of AmodalPanopticFPN against detectron2's stock PanopticFPN (issue 11, item 4).

Both models are built from the same config (the synthetic R18-FPN of
``configs/synthetic/source_only.yaml``: same backbone, FPN, RPN, box and visible mask heads and
widths) with every same-named, same-shaped weight shared, and trained on the *same* batches: a few
batches of the real train loader (AmodalDatasetMapper, batch IMS_PER_BATCH, the multi-scale input
sizes of the config) are drawn once, and round r feeds batch ``r % len(batches)`` to both models.
The stock model gets what PanopticFPN expects: a semantic head over the stuff classes + one
"things" class (K2B: NUM_CLASSES 12, thing pixels relabelled 11) and instances with boxes, classes
and visible masks only; its mask loss is detectron2's ``mask_rcnn_loss``. Ours keeps the semantic
head over every class, the amodal mask head and the ignore-aware mask losses.

A step is what detectron2's SimpleTrainer times: forward with losses, zero_grad + backward,
optimizer step (+ LR scheduler step). Rounds alternate the two models (and which goes first), so
both see the same machine load; medians over rounds. A second, shorter series with forward hooks
splits the forward time by module (hooks cost a little, so it is not used for the ratio).
"""

import math
import statistics
import time
from typing import Callable, Dict, List

import torch

from unlock.class_table import ClassTable

# Module paths timed by the forward hooks (those a model lacks are skipped).
FORWARD_PARTS = (
    "backbone",
    "sem_seg_head",
    "proposal_generator",
    "roi_heads.box_pooler",
    "roi_heads.box_head",
    "roi_heads.mask_pooler",
    "roi_heads.mask_head",
    "roi_heads.amodal_mask_pooler",
    "roi_heads.amodal_mask_head",
)


def stock_config(cfg, class_table: ClassTable):
    """The stock PanopticFPN config of ``cfg``: same backbone, heads and widths; detectron2's
    StandardROIHeads and mask head; semantic head over the stuff classes + "things"."""
    stock = cfg.clone()
    stock.defrost()
    stock.MODEL.META_ARCHITECTURE = "PanopticFPN"
    stock.MODEL.ROI_HEADS.NAME = "StandardROIHeads"
    stock.MODEL.ROI_MASK_HEAD.NAME = "MaskRCNNConvUpsampleHead"
    stock.MODEL.SEM_SEG_HEAD.NUM_CLASSES = class_table.num_stuff + 1
    stock.freeze()
    return stock


def stock_semantic(sem_seg: torch.Tensor, class_table: ClassTable) -> torch.Tensor:
    """Semantic ids -> PanopticFPN's target: stuff class i of ``class_table.stuff_ids`` -> i,
    every thing -> ``num_stuff`` (K2B: stuff 0..10 kept, things -> 11), ignore kept."""
    lut = torch.full((256,), class_table.ignore_label, dtype=sem_seg.dtype)
    lut[list(class_table.stuff_ids)] = torch.arange(class_table.num_stuff, dtype=sem_seg.dtype)
    lut[list(class_table.thing_ids)] = class_table.num_stuff
    return lut.to(sem_seg.device)[sem_seg.long()]


def stock_batch(batch: List[Dict], class_table: ClassTable) -> List[Dict]:
    """The same images and objects as PanopticFPN's input: instances with gt_boxes, gt_classes
    and gt_masks (the visible masks), semantic target of :func:`stock_semantic`."""
    from detectron2.structures import Instances

    out = []
    for d in batch:
        inst = d["instances"]
        stock = Instances(inst.image_size)
        for name in ("gt_boxes", "gt_classes", "gt_masks"):
            stock.set(name, inst.get(name))
        out.append({**d, "instances": stock, "sem_seg": stock_semantic(d["sem_seg"], class_table)})
    return out


def build_pair(cfg):
    """(ours, stock) in training mode, ours loaded from cfg.MODEL.WEIGHTS, the stock model with
    every weight of the same name and shape copied from ours."""
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    from unlock.engine import UnlockTrainer

    torch.manual_seed(0)
    ours = UnlockTrainer.build_model(cfg)
    if cfg.MODEL.WEIGHTS:
        DetectionCheckpointer(ours).load(cfg.MODEL.WEIGHTS)
    stock = build_model(stock_config(cfg, ours.class_table))
    own = stock.state_dict()
    shared = {k: v for k, v in ours.state_dict().items() if k in own and own[k].shape == v.shape}
    stock.load_state_dict(shared, strict=False)
    return ours.train(), stock.train(), len(shared), len(own)


def make_step(cfg, model) -> Callable:
    """One SimpleTrainer step of ``model`` with the trainer's optimizer and LR schedule; returns
    (forward, backward, optimizer) seconds and whether the loss was finite."""
    from unlock.engine import UnlockTrainer

    optimizer = UnlockTrainer.build_optimizer(cfg, model)
    scheduler = UnlockTrainer.build_lr_scheduler(cfg, optimizer)

    def step(data):
        t0 = time.perf_counter()
        losses = sum(model(data).values())
        t1 = time.perf_counter()
        optimizer.zero_grad()
        losses.backward()
        t2 = time.perf_counter()
        optimizer.step()
        scheduler.step()
        t3 = time.perf_counter()
        return (t1 - t0, t2 - t1, t3 - t2), math.isfinite(losses.item())

    return step


def draw_batches(cfg, count: int) -> List[List[Dict]]:
    """``count`` batches of the real train loader (mapped once, reused by both models)."""
    from unlock.engine import UnlockTrainer

    loader = UnlockTrainer.build_train_loader(cfg)
    it = iter(loader)
    batches = [next(it) for _ in range(count)]
    del it, loader  # stops the loader's worker processes
    return batches


class ForwardTimer:
    """Forward hooks that add up the wall time spent in named submodules (training forward of
    a head includes its loss, as in detectron2's mask heads)."""

    def __init__(self, model, names=FORWARD_PARTS):
        modules = dict(model.named_modules())
        self.totals = {n: 0.0 for n in names if n in modules}
        self._start: Dict[str, float] = {}
        self._handles = []
        for name in self.totals:
            m = modules[name]
            self._handles.append(m.register_forward_pre_hook(self._pre(name)))
            self._handles.append(m.register_forward_hook(self._post(name)))

    def _pre(self, name):
        def hook(module, args):
            self._start[name] = time.perf_counter()

        return hook

    def _post(self, name):
        def hook(module, args, output):
            self.totals[name] += time.perf_counter() - self._start.pop(name)

        return hook

    def remove(self):
        for h in self._handles:
            h.remove()


def time_train_step(cfg, warmup: int, iters: int, num_batches: int = 4, part_iters: int = 0) -> Dict:
    """Median step times (ms per batch) of ours and the stock model on the same batches.

    Returns:
        dict with ``ours`` / ``stock``: {step_ms, forward_ms, backward_ms, optimizer_ms,
        parts_ms: {module: forward ms}}, ``ratio`` (ours / stock step), ``finite``,
        ``batch``, ``sizes`` (input sizes of the batches), ``shared`` weights.
    """
    from detectron2.utils.events import EventStorage

    ours, stock, n_shared, n_stock = build_pair(cfg)
    batches = draw_batches(cfg, max(1, num_batches))
    stock_batches = [stock_batch(b, ours.class_table) for b in batches]
    models = {"ours": (make_step(cfg, ours), batches), "stock": (make_step(cfg, stock), stock_batches)}
    samples = {k: [] for k in models}
    finite = True
    with EventStorage(0) as storage:

        def run(r, record=True):
            nonlocal finite
            order = ("ours", "stock") if r % 2 == 0 else ("stock", "ours")
            for key in order:
                step, data = models[key]
                torch.manual_seed(r)  # same proposal sampling stream for both
                times, ok = step(data[r % len(data)])
                finite &= ok
                if record:
                    samples[key].append(times)
            storage.iter = r + 1

        for r in range(warmup):
            run(r, record=False)
        for r in range(warmup, warmup + iters):
            run(r)
        parts = {}
        if part_iters > 0:
            timers = {"ours": ForwardTimer(ours), "stock": ForwardTimer(stock)}
            for r in range(warmup + iters, warmup + iters + part_iters):
                run(r, record=False)
            for key, t in timers.items():
                t.remove()
                parts[key] = {n: 1e3 * s / part_iters for n, s in t.totals.items()}
    out = {}
    for key, rows in samples.items():
        med = [1e3 * statistics.median(x[i] for x in rows) for i in range(3)]
        out[key] = {
            "step_ms": 1e3 * statistics.median(sum(x) for x in rows),
            "forward_ms": med[0],
            "backward_ms": med[1],
            "optimizer_ms": med[2],
            "parts_ms": parts.get(key, {}),
        }
    sizes = sorted({tuple(d["image"].shape[-2:]) for b in batches for d in b})
    return {
        **out,
        "ratio": out["ours"]["step_ms"] / out["stock"]["step_ms"],
        "finite": finite,
        "batch": len(batches[0]),
        "rounds": iters,
        "sizes": [f"{w}x{h}" for h, w in sizes],
        "shared": f"{n_shared} of {n_stock}",
        "objects": sum(len(d["instances"]) for b in batches for d in b) / sum(map(len, batches)),
    }
