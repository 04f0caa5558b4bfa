"""Vectorised numpy ray casting of a synthetic scene: image, semantic trainIds, visible instance
ids and per-thing amodal masks, all exact (no per-pixel Python loops).

Every ray is first culled against the bounding sphere of every primitive with one matrix product;
the surviving (ray, primitive) pairs are intersected by kind in one vectorised call each, and the
nearest hit per ray wins (z-buffer). The amodal mask of a thing is the union of its own
primitives' hits with everything else ignored, i.e. the thing rendered alone; the visible mask is
where that thing is the nearest hit. Hence visible ⊆ amodal and visible masks are disjoint by
construction (the OASS amodal definition, paper Sec. 3.1).
"""

from typing import Dict, List, Tuple

import numpy as np

from .appearance import finish_image, shade
from .primitives import BOX, CYLINDER, SPHERE, Primitives

__all__ = ["cast_rays", "render_scene"]

_EPS = 1e-6
_MAX_DIST = 600.0  # ground hits further away than this read as sky (horizon haze)
_BUNDLE = 16  # rays per culling bundle (see _candidate_pairs)


def _safe(d: np.ndarray) -> np.ndarray:
    return np.where(np.abs(d) < 1e-12, np.where(d < 0, -1e-12, 1e-12), d)


def _to_local(o, d, center, yaw):
    """Ray origins/dirs (M, 3) in the frame of boxes with ``center`` (M, 3) and ``yaw`` (M,)."""
    c, s = np.cos(yaw), np.sin(yaw)
    p = o - center

    def rot(v):
        return np.stack([c * v[:, 0] + s * v[:, 1], -s * v[:, 0] + c * v[:, 1], v[:, 2]], axis=1)

    return rot(p), rot(d)


def _hit_box(o, d, center, half, yaw) -> np.ndarray:
    """Entry distance of rays into oriented boxes (slab method); inf where missed. (M,)"""
    lo, ld = _to_local(o, d, center, yaw)
    inv = 1.0 / _safe(ld)
    t1, t2 = (-half - lo) * inv, (half - lo) * inv
    tnear = np.minimum(t1, t2).max(axis=1)
    tfar = np.maximum(t1, t2).min(axis=1)
    return np.where((tfar >= tnear) & (tnear > _EPS), tnear, np.inf)


def _hit_cylinder(o, d, center, size) -> np.ndarray:
    """Entry distance into vertical capped cylinders; inf where missed. (M,)"""
    p = o - center
    r, hz = size[:, 0], size[:, 2]
    a = d[:, 0] ** 2 + d[:, 1] ** 2
    bq = 2.0 * (p[:, 0] * d[:, 0] + p[:, 1] * d[:, 1])
    cq = p[:, 0] ** 2 + p[:, 1] ** 2 - r**2
    disc = bq**2 - 4.0 * a * cq
    with np.errstate(invalid="ignore", divide="ignore"):
        t_side = (-bq - np.sqrt(np.maximum(disc, 0.0))) / (2.0 * a)
    z = p[:, 2] + t_side * d[:, 2]
    side_ok = (disc >= 0) & (a > 1e-12) & (t_side > _EPS) & (np.abs(z) <= hz)
    t = np.where(side_ok, t_side, np.inf)
    # Caps: only the one facing the origin can be the entry point.
    cap_z = np.where(p[:, 2] > 0, hz, -hz)
    t_cap = (cap_z - p[:, 2]) / _safe(d[:, 2])
    q = p + t_cap[:, None] * d
    cap_ok = (t_cap > _EPS) & (q[:, 0] ** 2 + q[:, 1] ** 2 <= r**2) & (np.abs(p[:, 2]) > hz)
    return np.minimum(t, np.where(cap_ok, t_cap, np.inf))


def _hit_sphere(o, d, center, size) -> np.ndarray:
    """Entry distance into spheres; inf where missed. (M,)"""
    p = o - center
    b = (p * d).sum(axis=1)
    c = (p * p).sum(axis=1) - size[:, 0] ** 2
    disc = b * b - c
    t = -b - np.sqrt(np.maximum(disc, 0.0))
    return np.where((disc >= 0) & (t > _EPS), t, np.inf)


def _normals(kind, pos, center, size, yaw) -> np.ndarray:
    """Outward unit normals at hit points ``pos`` (M, 3) of primitives of one ``kind``."""
    p = pos - center
    if kind == SPHERE:
        n = p
    elif kind == CYLINDER:
        on_cap = np.abs(np.abs(p[:, 2]) - size[:, 2]) < 1e-4 * np.maximum(size[:, 2], 1.0)
        n = np.where(
            on_cap[:, None],
            np.stack([0 * p[:, 0], 0 * p[:, 0], np.sign(p[:, 2])], 1),
            np.stack([p[:, 0], p[:, 1], 0 * p[:, 0]], 1),
        )
    else:
        c, s = np.cos(yaw), np.sin(yaw)
        local = np.stack([c * p[:, 0] + s * p[:, 1], -s * p[:, 0] + c * p[:, 1], p[:, 2]], 1)
        rel = np.abs(local) / np.maximum(size, 1e-9)
        axis = rel.argmax(axis=1)
        nl = np.zeros_like(local)
        nl[np.arange(len(axis)), axis] = np.sign(local[np.arange(len(axis)), axis])
        n = np.stack([c * nl[:, 0] - s * nl[:, 1], s * nl[:, 0] + c * nl[:, 1], nl[:, 2]], 1)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def _candidate_pairs(prims: Primitives, origin, dirs) -> Tuple[np.ndarray, np.ndarray]:
    """(ray, prim) index pairs whose ray passes through the prim's bounding sphere.

    Two-level culling: consecutive rays are grouped into bundles of ``_BUNDLE`` (a strip of one
    image row), each bundle is bounded by a cone and tested against every bounding sphere; only
    the rays of surviving bundles are tested one by one. This keeps the (rays x prims) work
    ``_BUNDLE`` times smaller than a flat test.
    """
    n = dirs.shape[0]
    if len(prims) == 0 or n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    radius = prims.bounding_radius() * 1.01 + 1e-3
    v = prims.center - origin
    dist = np.linalg.norm(v, axis=1)
    vn = v / np.maximum(dist, 1e-9)[:, None]
    pad = (-n) % _BUNDLE
    bundles = np.concatenate([dirs, np.repeat(dirs[-1:], pad, axis=0)]).reshape(-1, _BUNDLE, 3)
    axis = bundles.mean(axis=1)
    axis /= np.maximum(np.linalg.norm(axis, axis=1, keepdims=True), 1e-12)
    cos_half = np.einsum("gbk,gk->gb", bundles, axis).min(axis=1)
    half = np.arccos(np.clip(cos_half, -1.0, 1.0))
    spread = np.arcsin(np.clip(radius / np.maximum(dist, 1e-9), 0.0, 1.0))
    ang = np.arccos(np.clip(axis @ vn.T, -1.0, 1.0))  # (G, P)
    near = dist <= radius  # origin inside the bounding sphere: every ray is a candidate
    tile, pid = np.nonzero((ang <= half[:, None] + spread[None, :] + 1e-6) | near[None, :])
    ray = (tile[:, None] * _BUNDLE + np.arange(_BUNDLE)[None, :]).ravel()
    pid = np.repeat(pid, _BUNDLE)
    ok = ray < n
    ray, pid = ray[ok], pid[ok]
    # Exact per-ray sphere test on the survivors.
    along = np.einsum("mk,mk->m", dirs[ray], v[pid])
    perp2 = dist[pid] ** 2 - along**2
    ok = ((perp2 <= radius[pid] ** 2) & (along > -radius[pid])) | near[pid]
    return ray[ok], pid[ok]


def cast_rays(prims: Primitives, ground, origin: np.ndarray, dirs: np.ndarray, num_things: int):
    """Nearest-hit ray casting.

    Args:
        prims: primitives of the scene; ground: primitives.Ground (the plane z = 0).
        origin: (3,) ray origin; dirs: (N, 3) unit directions; num_things: T.
    Returns:
        dict with ``depth`` (N,) float (inf = sky), ``prim`` (N,) int (primitive index, -1 ground,
        -2 sky), ``normal`` (N, 3) and ``amodal`` (T, N) bool (each thing rendered alone).
    """
    n = dirs.shape[0]
    depth = np.full(n, np.inf)
    prim = np.full(n, -2, dtype=np.int64)
    down = dirs[:, 2] < -1e-9
    tg = np.where(down, -origin[2] / _safe(dirs[:, 2]), np.inf)
    ground_hit = tg < _MAX_DIST
    depth[ground_hit], prim[ground_hit] = tg[ground_hit], -1
    amodal = np.zeros((num_things, n), dtype=bool)

    ray, pid = _candidate_pairs(prims, origin, dirs)
    t = np.full(ray.shape, np.inf)
    o = np.broadcast_to(origin, (ray.size, 3))
    for kind, fn in ((BOX, _hit_box), (CYLINDER, _hit_cylinder), (SPHERE, _hit_sphere)):
        sel = np.flatnonzero(prims.kind[pid] == kind)
        if sel.size == 0:
            continue
        p = pid[sel]
        args = (o[sel], dirs[ray[sel]], prims.center[p], prims.size[p])
        t[sel] = fn(*args, prims.yaw[p]) if kind == BOX else fn(*args)
    hit = np.isfinite(t)
    ray, pid, t = ray[hit], pid[hit], t[hit]
    is_thing = prims.thing[pid] >= 0
    amodal[prims.thing[pid[is_thing]], ray[is_thing]] = True
    # Nearest primitive per ray: sort by (ray, t) and keep the first pair of every ray.
    order = np.lexsort((t, ray))
    ray, pid, t = ray[order], pid[order], t[order]
    first = np.ones(ray.size, dtype=bool)
    first[1:] = ray[1:] != ray[:-1]
    ray, pid, t = ray[first], pid[first], t[first]
    closer = t < depth[ray]
    ray, pid, t = ray[closer], pid[closer], t[closer]
    depth[ray], prim[ray] = t, pid

    normal = np.zeros((n, 3))
    normal[prim == -1] = (0.0, 0.0, 1.0)
    for kind in (BOX, CYLINDER, SPHERE):
        sel = np.flatnonzero(prims.kind[pid] == kind)
        if sel.size:
            p, r = pid[sel], ray[sel]
            pos = origin + depth[r, None] * dirs[r]
            normal[r] = _normals(kind, pos, prims.center[p], prims.size[p], prims.yaw[p])
    return {"depth": depth, "prim": prim, "normal": normal, "amodal": amodal}


def _labels(scene, cast, origin, dirs) -> np.ndarray:
    sem = np.full(dirs.shape[0], 10, dtype=np.int64)  # sky where nothing is hit
    g = cast["prim"] == -1
    pos = origin + cast["depth"][g, None] * dirs[g]
    sem[g] = scene.ground.labels(pos[:, 0], pos[:, 1])
    obj = cast["prim"] >= 0
    sem[obj] = scene.prims.label[cast["prim"][obj]]
    return sem


def render_scene(scene, camera, min_area: int = 8) -> Dict:
    """Renders ``scene`` through ``camera`` with exact ground truth.

    Things whose visible area is below ``min_area`` pixels, or whose visible box is less than
    2 px wide or tall (the APQ / AAP ground truth drops those anyway, docs/evaluation.md), are
    removed from the scene and the rays they covered are cast again, so the image and every label
    show what lies behind them: no void pixel and no unlearnable instance.

    Args:
        scene: a scene.Scene; camera: cameras.PinholeCamera or cameras.EquirectCamera.
        min_area: smallest visible area (pixels) of a kept thing.
    Returns:
        dict with ``image`` (H, W, 3) uint8 RGB, ``semantic`` (H, W) uint8 trainIds,
        ``instance_ids`` (H, W) int32 (index into ``things`` or -1), ``depth`` (H, W) float32,
        and ``things``: list of {category_id (trainId), visible_mask (H, W) bool,
        amodal_mask (H, W) bool, occluded (bool)} in scene order.
    """
    h, w = camera.height, camera.width
    origin, dirs = camera.rays()
    t_all = len(scene.things)
    cast = cast_rays(scene.prims, scene.ground, origin, dirs, t_all)
    owner = np.where(cast["prim"] >= 0, scene.prims.thing[np.maximum(cast["prim"], 0)], -1)
    owner[cast["prim"] < 0] = -1
    visible = np.zeros((t_all, dirs.shape[0]), dtype=bool)
    visible[owner[owner >= 0], np.flatnonzero(owner >= 0)] = True
    drop = []
    for i in range(t_all):
        m = visible[i].reshape(h, w)
        ys, xs = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
        if m.sum() < min_area or ys.size < 2 or xs.size < 2 or ys[-1] == ys[0] or xs[-1] == xs[0]:
            drop.append(i)
    if drop:
        redo = np.flatnonzero(np.isin(owner, drop))
        sub = scene.without_things(drop)
        if redo.size:
            again = cast_rays(sub.prims, sub.ground, origin, dirs[redo], t_all)
            # Amodal masks of kept things ignore other geometry, so only these three change.
            for key in ("depth", "prim", "normal"):
                cast[key][redo] = again[key]
        # Primitive indices now refer to ``sub``; remap the untouched rays as well.
        keep_idx = np.flatnonzero(~np.isin(scene.prims.thing, drop))
        remap = np.full(len(scene.prims), -3, dtype=np.int64)
        remap[keep_idx] = np.arange(keep_idx.size)
        untouched = np.setdiff1d(np.flatnonzero(cast["prim"] >= 0), redo)
        cast["prim"][untouched] = remap[cast["prim"][untouched]]
        scene = sub
        owner = np.where(cast["prim"] >= 0, scene.prims.thing[np.maximum(cast["prim"], 0)], -1)
    keep = [i for i in range(t_all) if i not in set(drop)]
    new_index = np.full(t_all + 1, -1, dtype=np.int32)
    new_index[keep] = np.arange(len(keep), dtype=np.int32)
    instance_ids = new_index[owner].reshape(h, w)  # owner -1 -> new_index[-1] = -1
    semantic = _labels(scene, cast, origin, dirs).reshape(h, w).astype(np.uint8)
    things: List[Dict] = []
    for j, i in enumerate(keep):
        vis = instance_ids == j
        amo = cast["amodal"][i].reshape(h, w) | vis
        things.append(
            {
                "category_id": int(scene.things[i]),
                "visible_mask": vis,
                "amodal_mask": amo,
                "occluded": bool((amo & ~vis).any()),
            }
        )
    colour = shade(scene, cast, origin, dirs)
    image = finish_image(colour.reshape(h, w, 3), scene, camera)
    return {
        "image": image,
        "semantic": semantic,
        "instance_ids": instance_ids,
        "depth": cast["depth"].reshape(h, w).astype(np.float32),
        "things": things,
    }
