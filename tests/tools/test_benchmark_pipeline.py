"""tools/benchmark_pipeline.py: one tiny run writes every row with positive numbers into its own
section of the markdown file and leaves the file's other sections untouched. No timing is
asserted (the machine is shared); only presence, positivity and consistency."""

import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest

from common import REPO_ROOT

SCRIPT = os.path.join(REPO_ROOT, "tools", "benchmark_pipeline.py")
OTHER = "# Benchmarks\n\n## Model inference\n\nkeep me\n\n"
LATER = "## Evaluation speed\n\nkeep me too\n"


def load_script():
    spec = importlib.util.spec_from_file_location("benchmark_pipeline", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cells(text, first):
    """Cells of the markdown table row whose first cells are ``first`` (a tuple)."""
    for line in text.splitlines():
        parts = [c.strip() for c in line.strip().strip("|").split("|")]
        if tuple(parts[: len(first)]) == first:
            return parts
    raise AssertionError(f"no row {first} in:\n{text}")


def number(cell):
    return float(re.sub(r"[*,]", "", cell))


def test_replace_section_keeps_the_other_sections(tmp_path):
    bp = load_script()
    path = tmp_path / "b.md"
    path.write_text(OTHER + bp.SECTION + "\n\nold numbers\n\n" + LATER)
    bp.replace_section(str(path), bp.SECTION + "\n\nnew numbers\n")
    text = path.read_text()
    assert text == OTHER + bp.SECTION + "\n\nnew numbers\n\n" + LATER
    bp.replace_section(str(path), bp.SECTION + "\n\nnewer\n")  # idempotent layout
    assert text.replace("new numbers", "newer") == path.read_text()
    fresh = tmp_path / "fresh.md"
    fresh.write_text(OTHER)
    bp.replace_section(str(fresh), bp.SECTION + "\n\nx\n")
    assert fresh.read_text() == OTHER.rstrip("\n") + "\n\n" + bp.SECTION + "\n\nx\n"


@pytest.mark.slow
def test_tiny_run_writes_every_measurement(tmp_path):
    md = tmp_path / "benchmarks.md"
    md.write_text(OTHER + "## Pipeline throughput and memory\n\nold numbers\n\n" + LATER)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, SCRIPT, "--scale", "0.1", "--small", "4", "--large", "8", "--iters", "2",
         "--warmup", "1", "--num-eval", "3", "--num-source", "4", "--mapper-samples", "3",
         "--workdir", str(tmp_path / "work"), "--output-md", str(md)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = md.read_text()
    assert text.startswith(OTHER) and text.endswith(LATER)
    section = text[len(OTHER) : -len(LATER)]
    assert section.startswith("## Pipeline throughput and memory") and "load average" in section
    assert "old numbers" not in section and section.strip() in proc.stdout
    assert "tools/benchmark_pipeline.py --scale 0.1" in section

    rows = [
        ("training", "source-only, AmodalDatasetMapper, source split"),
        ("training", "UNLOCK, ObjectPasteDatasetMapper, pseudo-labels"),
        ("inference", "eval mode, five outputs, target panoramas"),
        ("pseudo-labels", "OPLL pass 1 (source inference + raw files)"),
        ("pseudo-labels", "OPLL pass 2 (histograms, thresholds, labels)"),
        ("pseudo-labels", "OPLL end to end (model load, pass 1 + 2)"),
        ("evaluation", "five evaluators: process() + evaluate()"),
    ]
    expected_images = [8, 8, 3, 8, 8, 8, 3]  # batch 4 x 2 iterations; eval images; large split
    for row, n in zip(rows, expected_images):
        c = cells(section, row)
        assert int(c[2]) == n, row
        ips, ms = number(c[3]), number(c[4])
        assert ips > 0 and ms > 0, row
        assert abs(ms - 1e3 / ips) <= 0.01 * ms + 1, row  # the two columns agree
        if row[0] == "training":
            assert "losses finite: True" in c[5]

    for name in ("AmodalDatasetMapper per sample", "ObjectPasteDatasetMapper per sample",
                 "UNLOCK training step per image"):  # fmt: skip
        assert number(cells(section, (name,))[1]) > 0, name
    extra = number(cells(section, ("pasting cost per sample (difference)",))[1])
    step = number(cells(section, ("UNLOCK training step per image",))[1])
    ratio = number(cells(section, ("ratio pasting / training step",))[1])
    assert ratio == pytest.approx(extra / step, abs=2e-3)
    results = json.loads((tmp_path / "work" / "results.json").read_text())
    assert results["mappers"]["pool"] > 0 and results["mappers"]["pasted"] > 0

    peaks = []
    for n in ("4", "8"):
        c = cells(section, (n,))
        peak, before = number(c[1]), number(c[2])
        assert peak >= before > 0
        peaks.append(peak)
    assert re.search(r"Peak RSS ratio 8 / 4 images: \*\*[0-9.]+\*\*", section)
    assert results["large"]["counts"]["images"] == 8 and results["small"]["counts"]["images"] == 4
