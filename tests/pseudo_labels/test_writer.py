"""The background writer of OPLL: same files as writing in the loop, in order, errors raised in
the caller, no write after an error, pending writes finished when the caller's block fails."""

import threading
import time

import pytest

from test_generator import make_cfg, tree_hashes
from unlock.pseudo_labels import generator, storage
from unlock.pseudo_labels.writer import BackgroundWriter


def test_writes_run_in_order_in_another_thread():
    done, threads = [], set()

    def write(i):
        time.sleep(0.002 * (i % 3))  # uneven durations must not reorder
        threads.add(threading.get_ident())
        done.append(i)

    with BackgroundWriter() as writer:
        for i in range(20):
            writer.submit(write, i)
    assert done == list(range(20))
    assert threads and threading.get_ident() not in threads


def test_error_is_raised_in_the_caller_and_stops_the_writes():
    done = []

    def write(i):
        if i == 2:
            raise KeyboardInterrupt("simulated kill")  # BaseException too
        done.append(i)

    with pytest.raises(KeyboardInterrupt, match="simulated kill"):
        with BackgroundWriter() as writer:
            for i in range(10):
                writer.submit(write, i)
                time.sleep(0.01)
    assert done == [0, 1]


def test_block_error_waits_for_pending_writes():
    done = []

    def slow(i):
        time.sleep(0.05)
        done.append(i)

    with pytest.raises(ValueError, match="predictor failed"):
        with BackgroundWriter(depth=2) as writer:
            writer.submit(slow, 0)
            writer.submit(slow, 1)
            raise ValueError("predictor failed")
    assert done == [0, 1]  # nothing handed over is cut short


def test_pass1_and_pass2_files_equal_synchronous_writes(tmp_path, monkeypatch):
    cfg = make_cfg(tmp_path, "opll_writer_sync", out="threaded")
    generator.generate_pseudo_labels(cfg)

    class Inline:  # the loop writing each image itself, as before the writer thread
        def __init__(self, *a, **k):
            pass

        def submit(self, fn, *args):
            fn(*args)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

    sync = cfg.clone()
    sync.UNLOCK.OPLL.OUTPUT_DIR = str(tmp_path / "inline")
    monkeypatch.setattr(generator, "BackgroundWriter", Inline)
    generator.generate_pseudo_labels(sync)
    hashes = tree_hashes(cfg.UNLOCK.OPLL.OUTPUT_DIR)
    assert hashes == tree_hashes(sync.UNLOCK.OPLL.OUTPUT_DIR)
    assert sum(k.startswith("raw") for k in hashes) == 18  # 6 images x (JSON + 2 PNGs)
    assert storage.read_manifest(cfg.UNLOCK.OPLL.OUTPUT_DIR)["status"] == "complete"


def test_source_predictor_skips_the_fusion_with_the_same_record(tmp_path):
    """The raw record reads sem_seg and instances only; without the two fusions they are the
    same tensors as the model with COMBINE_ON gives."""
    import numpy as np

    from common import get_unlock_cfg
    from fixtures_synthetic import register_tiny_target, save_checkpoint, write_target_images

    dicts = write_target_images(str(tmp_path / "data"), num=2)
    register_tiny_target("opll_writer_fusion", dicts)
    cfg = get_unlock_cfg(opts=["UNLOCK.OPLL.TARGET_DATASET", "opll_writer_fusion"])
    cfg.MODEL.WEIGHTS = save_checkpoint(cfg, str(tmp_path / "source.pth"))
    predictor = generator.SourcePredictor(cfg)
    assert predictor.model.combine_on is False
    reference = generator.SourcePredictor(cfg)
    reference.model.combine_on = True  # the previous behaviour: fused outputs thrown away
    for d in dicts:
        got, want = predictor(d), reference(d)
        assert set(got) == set(want)
        np.testing.assert_array_equal(got["sem_labels"], want["sem_labels"])
        np.testing.assert_array_equal(got["sem_conf"], want["sem_conf"])
        assert len(got["detections"]) == len(want["detections"]) > 0
        for a, b in zip(got["detections"], want["detections"]):
            assert {k: a[k] for k in ("category_id", "score", "bbox")} == {
                k: b[k] for k in ("category_id", "score", "bbox")
            }
            assert type(a["score"]) is float and type(a["category_id"]) is int
            assert a["mask"].dtype == bool and a["amodal_mask"].dtype == bool
            np.testing.assert_array_equal(a["mask"], b["mask"])
            np.testing.assert_array_equal(a["amodal_mask"], b["amodal_mask"])
