"""Two-pass generation with a deterministic fake source model: files, rules, resume, skip."""

import hashlib
import os

import numpy as np
import pytest
from detectron2.data import DatasetCatalog

from common import get_unlock_cfg
from fixtures_synthetic import (
    FAKE_MODEL,
    register_tiny_target,
    save_checkpoint,
    write_target_images,
)
from unlock.classes import K2B
from unlock.pseudo_labels import generator, storage
from unlock.pseudo_labels.datasets import register_pseudo_label_dataset
from unlock.pseudo_labels.thresholds import quantize_scores
from unlock.utils.masks import decode_rle


def make_cfg(tmp_path, name, out="pl", opts=()):
    dicts = write_target_images(str(tmp_path / "data"), num=6)
    register_tiny_target(name, dicts)
    cfg = get_unlock_cfg(opts=["MODEL.META_ARCHITECTURE", FAKE_MODEL])
    weights = save_checkpoint(cfg, str(tmp_path / "source.pth"))
    cfg.merge_from_list(
        [
            "MODEL.WEIGHTS",
            weights,
            "UNLOCK.OPLL.TARGET_DATASET",
            name,
            "UNLOCK.OPLL.OUTPUT_DIR",
            str(tmp_path / out),
            *opts,
        ]
    )
    return cfg


def tree_hashes(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            path = os.path.join(dirpath, f)
            out[os.path.relpath(path, root)] = hashlib.sha1(open(path, "rb").read()).hexdigest()
    return out


def test_generation_follows_the_rules(tmp_path):
    cfg = make_cfg(tmp_path, "opll_gen_rules")
    root = generator.generate_pseudo_labels(cfg)
    manifest = storage.read_manifest(root)
    assert manifest["status"] == "complete" and len(manifest["image_ids"]) == 6
    assert (
        len(manifest["thresholds"]["visible"]) == 7
        and len(manifest["thresholds"]["semantic"]) == 18
    )
    assert manifest["counts"]["images"] == 6 and manifest["counts"]["detections"] > 0
    thr_vis = np.asarray(manifest["thresholds"]["visible"])
    thr_am = np.asarray(manifest["thresholds"]["amodal"])
    for image_id in manifest["image_ids"]:
        raw = storage.read_raw_prediction(root, image_id)
        labels = storage.read_labels(root, image_id)
        m_thing = K2B.thing_mask(raw["sem_labels"])
        unc = storage.read_png(storage.label_png_path(root, image_id, "uncertain"), np.uint8)
        assert set(np.unique(unc)) <= {0, 255}
        assert not (unc.astype(bool) & ~m_thing).any()  # ∩ thing mask (authors' code)
        for obj in labels["objects"]:
            assert obj["segmentation"] is not None or obj["amodal_segmentation"] is not None
            c, s = obj["category_id"], obj["score"]
            if obj["segmentation"] is not None:
                vis = decode_rle(obj["segmentation"])
                assert s >= thr_vis[c] - 1e-4 and not (vis & ~m_thing).any()
                assert not (vis & unc.astype(bool)).any()
            else:
                assert s < thr_vis[c] + 1e-4
            if obj["amodal_segmentation"] is None:
                assert s < thr_am[c] + 1e-4
        # Every detection is either an object or an uncertain detection, never both.
        dropped = labels["uncertain_detections"]
        assert len(dropped) + len(labels["objects"]) == len(raw["detections"])
        for det in dropped:
            c = det["category_id"]
            assert det["score"] < min(thr_vis[c], thr_am[c]) + 1e-4
        sem = storage.read_png(storage.label_png_path(root, image_id, "sem"), np.uint8)
        confident = sem != 255
        np.testing.assert_array_equal(sem[confident], raw["sem_labels"][confident])

    name = register_pseudo_label_dataset("opll_gen_rules_opll", root, "opll_gen_rules")
    dicts = DatasetCatalog.get(name)
    assert [d["image_id"] for d in dicts] == manifest["image_ids"]
    assert all(os.path.isfile(d["amodal_uncertain_file_name"]) for d in dicts)
    assert sum(len(d["annotations"]) for d in dicts) == manifest["counts"]["objects"]
    assert sum(len(d["uncertain_boxes"]) for d in dicts) == (
        manifest["counts"]["detections"] - manifest["counts"]["objects"]
    )


@pytest.mark.parametrize("fail_in", ["write_raw_prediction", "write_labels"])
def test_interrupted_run_resumes_to_identical_output(tmp_path, monkeypatch, fail_in):
    clean = make_cfg(tmp_path, "opll_gen_resume", out="clean")
    generator.generate_pseudo_labels(clean)
    cfg = clean.clone()
    cfg.UNLOCK.OPLL.OUTPUT_DIR = str(tmp_path / "killed")

    real, calls = getattr(storage, fail_in), []

    def dying(*args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt("simulated kill")
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(storage, fail_in, dying)
    with pytest.raises(KeyboardInterrupt):
        generator.generate_pseudo_labels(cfg)
    assert storage.read_manifest(cfg.UNLOCK.OPLL.OUTPUT_DIR)["status"] == "running"
    monkeypatch.setattr(storage, fail_in, real)

    predicted = []
    real_call = generator.SourcePredictor.__call__
    monkeypatch.setattr(
        generator.SourcePredictor,
        "__call__",
        lambda self, d: predicted.append(d["image_id"]) or real_call(self, d),
    )
    generator.generate_pseudo_labels(cfg)
    assert len(predicted) == (4 if fail_in == "write_raw_prediction" else 0)
    assert tree_hashes(cfg.UNLOCK.OPLL.OUTPUT_DIR) == tree_hashes(clean.UNLOCK.OPLL.OUTPUT_DIR)


def test_complete_run_is_skipped_and_label_changes_redo_pass2_only(tmp_path, monkeypatch):
    cfg = make_cfg(tmp_path, "opll_gen_skip")
    root = generator.generate_pseudo_labels(cfg)
    before = tree_hashes(root)
    monkeypatch.setattr(generator, "SourcePredictor", None)  # any inference would fail
    generator.generate_pseudo_labels(cfg)
    assert tree_hashes(root) == before

    cfg.UNLOCK.OPLL.THRESHOLD_MODE = "all"
    cfg.UNLOCK.OPLL.UNCERTAINTY_REGIONS = False
    generator.generate_pseudo_labels(cfg)
    after = tree_hashes(root)
    assert {k: v for k, v in after.items() if k.startswith("raw")} == {
        k: v for k, v in before.items() if k.startswith("raw")
    }
    manifest = storage.read_manifest(root)
    assert set(manifest["thresholds"]["visible"]) == {0.0}
    # every detection is an object with both masks
    assert (
        manifest["counts"]["visible"]
        == manifest["counts"]["objects"]
        <= manifest["counts"]["detections"]
    )


def test_missing_weights_raise(tmp_path):
    cfg = make_cfg(tmp_path, "opll_gen_noweights")
    cfg.MODEL.WEIGHTS = str(tmp_path / "nope.pth")
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        generator.generate_pseudo_labels(cfg)


def test_histogram_pass_matches_label_pass_quantisation(tmp_path):
    cfg = make_cfg(tmp_path, "opll_gen_hist")
    root = generator.generate_pseudo_labels(cfg)
    ids = storage.read_manifest(root)["image_ids"]
    det, sem = generator.shard_histograms(root, [{"image_id": i} for i in ids], 10001, K2B)
    scores = [d["score"] for i in ids for d in storage.read_raw_header(root, i)["detections"]]
    assert det.counts.sum() == len(scores)
    conf = np.concatenate([storage.read_raw_prediction(root, i)["sem_conf"].ravel() for i in ids])
    np.testing.assert_array_equal(
        np.sort(np.repeat(np.arange(10001), sem.counts.sum(0))),
        np.sort(quantize_scores(conf, 10001)),
    )


@pytest.mark.parametrize("kind", ["raw", "labels"])
def test_truncated_json_is_redone_and_stale_temp_files_removed(tmp_path, kind):
    clean = make_cfg(tmp_path, f"opll_gen_trunc_{kind}", out="clean")
    generator.generate_pseudo_labels(clean)
    cfg = clean.clone()
    cfg.UNLOCK.OPLL.OUTPUT_DIR = str(tmp_path / "damaged")
    generator.generate_pseudo_labels(cfg)
    root = cfg.UNLOCK.OPLL.OUTPUT_DIR
    path = (storage.raw_json_path if kind == "raw" else storage.label_json_path)(root, "img002")
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)  # e.g. a copy cut short or a full disk
    manifest = storage.read_manifest(root)
    storage.write_manifest(root, dict(manifest, status="running"))  # as a killed run leaves it
    for stale in (os.path.join(root, ".tmp-a.json"), os.path.join(root, "raw", ".tmp-b.png")):
        open(stale, "wb").close()  # 0-byte leftovers of killed atomic writes
    # Used to fail with "not valid JSON" instead of labelling that image again.
    generator.generate_pseudo_labels(cfg)
    assert tree_hashes(root) == tree_hashes(clean.UNLOCK.OPLL.OUTPUT_DIR)
