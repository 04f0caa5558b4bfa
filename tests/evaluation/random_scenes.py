"""Random-but-plausible GT and predictions for the cross-checks against the official tools."""

from typing import Dict, List, Tuple

import numpy as np


def random_gt(rng: np.random.Generator, h: int = 48, w: int = 64, n_things: int = 8):
    """Returns (pan_ids (H,W) int64, segments_info, amodal {seg_id: mask}).

    Stuff bands, things drawn as rectangles/ellipses in depth order (later ones occlude), at most
    one crowd region per thing class, and a void patch (255)."""
    pan = np.zeros((h, w), np.int64)
    cuts = np.sort(rng.choice(np.arange(4, w - 4), 3, replace=False))
    for c, (a, b) in zip(rng.choice(11, 4, replace=False), zip(np.r_[0, cuts], np.r_[cuts, w])):
        pan[:, a:b] = c
    yy, xx = np.mgrid[:h, :w]
    amodal: Dict[int, np.ndarray] = {}
    crowd_done = set()
    counters: Dict[int, int] = {}
    for _ in range(n_things):
        c = int(rng.integers(11, 18))
        y0, x0 = int(rng.integers(0, h - 4)), int(rng.integers(0, w - 4))
        hh, ww = int(rng.integers(3, h // 2)), int(rng.integers(3, w // 3))
        if rng.random() < 0.5:
            m = (yy >= y0) & (yy < y0 + hh) & (xx >= x0) & (xx < x0 + ww)
        else:
            cy, cx = y0 + hh / 2, x0 + ww / 2
            m = ((yy - cy) / (hh / 2)) ** 2 + ((xx - cx) / (ww / 2)) ** 2 <= 1
        if c not in crowd_done and rng.random() < 0.15:
            crowd_done.add(c)
            pan[m] = c
            continue
        counters[c] = counters.get(c, 0) + 1
        sid = c * 1000 + counters[c]
        pan[m] = sid
        amodal[sid] = m
    if rng.random() < 0.8:
        y0, x0 = int(rng.integers(0, h - 6)), int(rng.integers(0, w - 6))
        pan[y0 : y0 + 5, x0 : x0 + int(rng.integers(3, 12))] = 255
    ids, counts = np.unique(pan, return_counts=True)
    segs = []
    for i, n in zip(ids.tolist(), counts.tolist()):
        if i == 255:
            continue
        cat = i if i < 1000 else i // 1000
        segs.append({"id": i, "category_id": cat, "area": n, "iscrowd": int(11 <= i < 1000)})
    amodal = {k: v for k, v in amodal.items() if (pan == k).any()}
    return pan, segs, amodal


def _shift(m: np.ndarray, dy: int, dx: int) -> np.ndarray:
    return np.roll(np.roll(m, dy, axis=0), dx, axis=1)


def random_panoptic_pred(rng, pan: np.ndarray, void_frac: float = 0.05) -> Tuple[np.ndarray, List]:
    """Perturbed GT in detectron2 format (ids from 1, 0 = void)."""
    out = np.zeros_like(pan, dtype=np.int32)
    segs = []
    next_id = 1
    for gid in np.unique(pan):
        if gid == 255:
            continue
        m = pan == gid
        thing = gid >= 1000 or 11 <= gid < 1000
        if thing:
            m = _shift(m, int(rng.integers(-2, 3)), int(rng.integers(-3, 4)))
        cat = int(gid if gid < 1000 else gid // 1000)
        if thing and rng.random() < 0.1:  # wrong class (stuff stays one segment per class)
            cat = int(rng.integers(11, 18))
        out[m] = next_id
        segs.append(
            {
                "id": next_id,
                "isthing": bool(cat >= 11),
                "category_id": cat - 11 if cat >= 11 else cat,
            }
        )
        next_id += 1
    out[rng.random(pan.shape) < void_frac] = 0
    present = set(np.unique(out).tolist())
    return out, [s for s in segs if s["id"] in present]


def random_instances(rng, pan: np.ndarray, amodal: Dict[int, np.ndarray]):
    """(visible masks, amodal masks, scores, classes 0..6): shifted GT, duplicates, FPs."""
    vis, amo, scores, classes = [], [], [], []
    h, w = pan.shape
    for sid, am in amodal.items():
        c = sid // 1000 - 11
        for _ in range(int(rng.integers(0, 3))):
            dy, dx = int(rng.integers(-2, 3)), int(rng.integers(-2, 3))
            vis.append(_shift(pan == sid, dy, dx))
            amo.append(_shift(am, dy, dx))
            scores.append(float(np.round(rng.random(), 3)))
            classes.append(c if rng.random() > 0.1 else int(rng.integers(0, 7)))
    for _ in range(int(rng.integers(0, 4))):
        m = np.zeros((h, w), bool)
        y0, x0 = int(rng.integers(0, h - 8)), int(rng.integers(0, w - 8))
        m[y0 : y0 + int(rng.integers(2, 12)), x0 : x0 + int(rng.integers(2, 16))] = True
        vis.append(m)
        amo.append(m)
        scores.append(float(np.round(rng.random(), 3)))
        classes.append(int(rng.integers(0, 7)))
    if not vis:
        z = np.zeros((0, h, w), bool)
        return z, z, np.zeros(0), np.zeros(0, np.int64)
    return np.stack(vis), np.stack(amo), np.array(scores), np.array(classes)
