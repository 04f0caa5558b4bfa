"""Generation of the three synthetic splits: seeding, multiprocessing, progress, resume, manifest.

Each image's randomness comes from ``np.random.default_rng([seed, split code, index])`` only (and,
with ``seam_share``, from the image's own seam stream, seam_share.py), so the output is
byte-identical whatever the number of workers or the order they finish in.
"""

import logging
import math
import multiprocessing as mp
import os
import time
from dataclasses import asdict
from typing import Dict, Optional

import numpy as np
from tqdm import tqdm

from unlock.utils.file_io import atomic_write_json, read_json

from .cameras import EquirectCamera, PinholeCamera
from .domain import GapKnobs, make_domain
from .render import render_scene
from .scene import sample_scene
from .seam_share import SEAM_STREAM, check_seam_share, count_seam_things, seam_turn, turned
from .writers import AMODAL_FORMATS, image_files, json_files, write_example, write_split_jsons

__all__ = [
    "GENERATOR_VERSION",
    "SPLITS",
    "stem_of",
    "render_example",
    "default_min_area",
    "generate_synthetic_benchmark",
    "default_root",
]

logger = logging.getLogger(__name__)

# 2: things within 20 m (was 50 m) and at least 40 visible pixels (was 8), a source_val split;
# see docs/results.md "Benchmark design" for the measured object sizes of both versions.
GENERATOR_VERSION = 2
# split name -> (RNG stream code, domain, stem prefix). Stems have no "_" (the BlendPASS loader
# splits names on it).
SPLITS = {
    "source_train": (0, "source", "src"),
    "source_val": (3, "source", "srcval"),
    "target_train": (1, "target", "pano"),
    "target_test": (2, "target", "syn"),
}
MANIFEST = "synthetic_manifest.json"


def default_root() -> str:
    """$DETECTRON2_DATASETS/unlock_synthetic, DETECTRON2_DATASETS defaulting to ./datasets."""
    return os.path.join(os.environ.get("DETECTRON2_DATASETS", "datasets"), "unlock_synthetic")


def stem_of(split: str, index: int, count: int) -> str:
    digits = max(5, len(str(max(count - 1, 0))))
    return f"{SPLITS[split][2]}{index:0{digits}d}"


def default_min_area(scale: float) -> int:
    """Smallest visible thing area kept: 40 px at scale 0.25 (640 px at full resolution), scaled
    with the image area, never under 8 px (below that no box is learnable at stride 4)."""
    return max(8, int(round(40 * (scale / 0.25) ** 2)))


def render_example(
    seed: int,
    split: str,
    index: int,
    scale: float = 0.25,
    gap: float = 0.5,
    knobs: GapKnobs = GapKnobs(),
    min_area: Optional[int] = None,
    seam_share: Optional[float] = None,
) -> Dict:
    """Samples and renders image ``index`` of ``split`` (see render.render_scene for the output).

    ``seam_share`` (target splits only): None keeps the natural camera yaw; a share in [0, 1]
    turns the camera so that the image has a thing on the seam with that probability and none
    otherwise (seam_share.py; the scene is the same for every value).
    """
    code, domain_name, _ = SPLITS[split]
    seam_share = check_seam_share(seam_share)
    rng = np.random.default_rng([int(seed), code, int(index)])
    domain = make_domain(domain_name, gap, knobs)
    if seam_share is not None and domain.projection != "panorama":
        raise ValueError(f"seam_share applies to the panorama (target) splits, not {split!r}")
    height = domain.cam_height + rng.normal(0.0, domain.cam_height_jitter)
    if domain.projection == "pinhole":
        camera = PinholeCamera.kitti360(scale, cam_height=height, yaw=rng.normal(0.0, 0.03))
    else:
        camera = EquirectCamera.blendpass(
            scale, cam_height=height, yaw=rng.uniform(-math.pi, math.pi)
        )
    if min_area is None:
        min_area = default_min_area(scale)
    scene = sample_scene(rng, domain)
    out = render_scene(scene, camera, min_area=min_area)
    if seam_share is None:
        return out
    # Its own stream: the main one above is left exactly as without seam_share.
    seam_rng = np.random.default_rng([int(seed), code, int(index), SEAM_STREAM])
    want_crosser = bool(seam_rng.random() < seam_share)
    columns = seam_turn(out, want_crosser, seam_rng)
    if columns is None:
        return out
    again = render_scene(scene, turned(camera, columns), min_area=min_area)
    # Kept only if the turn did what it was for (a grazing ray could in principle change a
    # boundary pixel); otherwise the natural view stays, which keeps the output deterministic.
    return again if (count_seam_things(again["things"]) > 0) == want_crosser else out


def _work(task) -> Dict:
    root, split, index, count, p = task
    # The seam share only concerns the panoramas; the pinhole splits never see it.
    seam_share = p["seam_share"] if SPLITS[split][1] == "target" else None
    out = render_example(
        p["seed"], split, index, p["scale"], p["gap"], GapKnobs(**p["knobs"]), p["min_area"],
        seam_share,
    )
    # Only the target test split is written like real BlendPASS val (polygons by default); the
    # other splits keep their RLE files byte for byte.
    amodal_format = p["target_test_amodal"] if split == "target_test" else "rle"
    stem = stem_of(split, index, count)
    return write_example(root, split, stem, index, out, p["asd_native"], amodal_format)


def _split_params(split: str, count: int, params: Dict) -> Dict:
    p = dict(params, count=count, version=GENERATOR_VERSION)
    if split != "source_train":
        p.pop("asd_native")
    # Recorded for the target test split only, so switching the format regenerates that split
    # alone and the manifest entries of the others stay as they were.
    if split != "target_test":
        p.pop("target_test_amodal")
    # Recorded for the target splits only, and only when set: the natural placement (None) keeps
    # the entries of manifests written before the option existed, so they still count as complete.
    if SPLITS[split][1] != "target" or p["seam_share"] is None:
        p.pop("seam_share")
    return p


def _is_complete(root: str, split: str, count: int, params: Dict, manifest: Dict) -> bool:
    entry = manifest.get("splits", {}).get(split)
    if not entry or entry.get("params") != _split_params(split, count, params):
        return False
    files = json_files(root, split)
    for i in range(count):
        files += image_files(root, split, stem_of(split, i, count), i, params["asd_native"])
    return all(os.path.isfile(f) for f in files)


def generate_synthetic_benchmark(
    root: Optional[str] = None,
    *,
    seed: int = 0,
    num_source: int = 600,
    num_source_val: int = 100,
    num_target_train: int = 400,
    num_target_test: int = 100,
    scale: float = 0.25,
    gap: float = 0.5,
    workers: Optional[int] = None,
    asd_native: bool = False,
    force: bool = False,
    knobs: Optional[GapKnobs] = None,
    min_area: Optional[int] = None,
    progress: bool = True,
    target_test_amodal: str = "polygon",
    seam_share: Optional[float] = None,
) -> Dict:
    """Generates (or resumes) the synthetic KITTI-360-APS-like -> BlendPASS-like benchmark.

    Args:
        root: output root (default: see default_root). seed: global seed.
        num_source / num_source_val / num_target_train / num_target_test: split sizes
            (source_val: held-out labelled pinhole images for the source model's in-domain score).
        scale: image scale w.r.t. 1408x376 (source) and 2048x400 (target).
        gap: domain-gap strength in [0, 1]; knobs: per-factor multipliers (domain.GapKnobs).
        workers: processes (None = all CPUs, <= 1 = in this process).
        asd_native: also write the source split in the AmodalSynthDrive native layout.
        force: regenerate splits even when complete. min_area: smallest visible thing area (px;
            None: default_min_area(scale)).
        progress: show tqdm bars.
        target_test_amodal: "polygon" (as real BlendPASS val; decodes to exactly the rendered
            masks) or "rle", the format of the target test split's amodal annotations.
        seam_share: None (natural camera yaw, as before the option existed) or the fraction in
            [0, 1] of target images (train and test) in which at least one thing crosses the
            seam; the other target images then have none (seam_share.py).
    Returns:
        summary dict: root, seconds, and per split {count, generated|skipped, things, occluded,
        seam_things (things whose amodal mask crosses the seam), seam_images (images with at
        least one)}. Splits skipped as complete report the stats their manifest entry holds
        (entries written before seam_things existed lack the two seam counts).
    """
    root = os.path.abspath(root or default_root())
    knobs = knobs or GapKnobs()
    params = {
        "seed": int(seed),
        "scale": float(scale),
        "gap": float(gap),
        "knobs": asdict(knobs),
        "min_area": int(default_min_area(scale) if min_area is None else min_area),
        "asd_native": bool(asd_native),
        "target_test_amodal": str(target_test_amodal),
        "seam_share": check_seam_share(seam_share),
    }
    if target_test_amodal not in AMODAL_FORMATS:
        raise ValueError(
            f"target_test_amodal must be one of {AMODAL_FORMATS}, got {target_test_amodal!r}"
        )
    counts = {
        "source_train": num_source,
        "source_val": num_source_val,
        "target_train": num_target_train,
        "target_test": num_target_test,
    }
    for name, n in counts.items():
        if n < 0:
            raise ValueError(f"{name}: number of images must be >= 0, got {n}")
    if not 0.0 <= gap <= 1.0:
        raise ValueError(f"gap must lie in [0, 1], got {gap}")
    manifest_path = os.path.join(root, MANIFEST)
    manifest = read_json(manifest_path) if os.path.isfile(manifest_path) else {}
    if manifest.get("generator_version") != GENERATOR_VERSION:
        manifest = {}
    # The amodal format and the seam share are only part of the entries of the splits they
    # concern (see _split_params).
    shared = {k: v for k, v in params.items() if k not in ("target_test_amodal", "seam_share")}
    manifest.update(
        {
            "generator_version": GENERATOR_VERSION,
            **shared,
            "domains": {d: make_domain(d, gap, knobs).to_dict() for d in ("source", "target")},
        }
    )
    manifest.setdefault("splits", {})
    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    summary = {"root": root, "splits": {}}
    t0 = time.perf_counter()
    for split, count in counts.items():
        if not force and _is_complete(root, split, count, params, manifest):
            logger.info("%s: %d images already complete, skipped", split, count)
            summary["splits"][split] = dict(manifest["splits"][split]["stats"], skipped=True)
            continue
        manifest["splits"].pop(split, None)
        tasks = [(root, split, i, count, params) for i in range(count)]
        bar = dict(total=count, desc=split, disable=not progress, unit="img")
        if workers > 1 and count > 1:
            ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
            with ctx.Pool(min(workers, count)) as pool:
                records = list(tqdm(pool.imap(_work, tasks, chunksize=4), **bar))
        else:
            records = list(tqdm(map(_work, tasks), **bar))
        write_split_jsons(root, split, records)
        stats = {
            "count": count,
            "things": sum(r["stats"]["things"] for r in records),
            "occluded": sum(r["stats"]["occluded"] for r in records),
            "seam_things": sum(r["stats"]["seam_things"] for r in records),
            "seam_images": sum(r["stats"]["seam_things"] > 0 for r in records),
        }
        # The split entry is written only once all its files exist: an interrupted run resumes.
        manifest["splits"][split] = {"params": _split_params(split, count, params), "stats": stats}
        atomic_write_json(manifest_path, manifest, indent=2)
        summary["splits"][split] = dict(stats, skipped=False)
        logger.info("%s: wrote %d images (%d things)", split, count, stats["things"])
    atomic_write_json(manifest_path, manifest, indent=2)
    summary["seconds"] = time.perf_counter() - t0
    return summary
