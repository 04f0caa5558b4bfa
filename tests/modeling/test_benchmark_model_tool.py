"""Smoke test of tools/benchmark_model.py on a tiny input (no timing assertions)."""

import importlib.util
import os

import pytest

from common import REPO_ROOT


def _load_tool():
    path = os.path.join(REPO_ROOT, "tools", "benchmark_model.py")
    spec = importlib.util.spec_from_file_location("benchmark_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_benchmark_writes_table(tmp_path):
    out = tmp_path / "bench.md"
    argv = ["--height", "32", "--width", "96", "--warmup", "0", "--iters", "1", "--threads", "1"]
    table = _load_tool().main(argv + ["--output", str(out)])
    assert out.read_text() == table
    assert "| PanopticFPN (stock, sem head 12 classes) |" in table
    assert "| fusion (panoptic / panoptic + amodal panoptic) |" in table
    assert "### worst case" in table and "### realistic case" in table
