"""Stages of the synthetic SFOASS benchmark, each resumable from its finished results.

data -> source model (labelled pinhole images) -> source-only evaluation on labelled panoramas ->
UNLOCK adaptation from the source weights alone (pseudo-labels, object pool, training on unlabelled
panoramas) -> evaluation -> comparison table, JSON and pictures.
"""
import json
import logging
import os
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

from unlock.benchmark.profiles import SOURCE_VAL_ROW, Profile, Row
from unlock.utils.file_io import atomic_write_json, read_json

logger = logging.getLogger(__name__)

REPO_ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
)
CONFIG_DIR = os.path.join(REPO_ROOT, "configs", "synthetic")
TRAIN_NET = os.path.join(REPO_ROOT, "tools", "train_net.py")
SOURCE_CONFIG = os.path.join(CONFIG_DIR, "source_only.yaml")


class StageError(RuntimeError):
    """A benchmark stage failed; the message names the stage and its log file."""


class Progress:
    """Logs which stage runs and a rough time left: the profile's per-stage estimates, scaled by
    how fast the stages that really ran went (stages reused from an earlier run take no time and
    are dropped from the plan instead)."""

    def __init__(self, planned: List[str], estimates: Dict[str, float]):
        self.planned = list(planned)
        self.estimates = estimates
        self.start = time.time()
        self.done = 0
        self.ran_seconds = 0.0
        self.ran_estimated_min = 0.0
        self._stage_start = self.start

    def begin(self, stage: str):
        self.done += 1
        self._stage_start = time.time()
        remaining = sum(self._estimate(s) for s in self.planned[self.done - 1 :])
        speed = 1.0
        if self.ran_seconds > 120 and self.ran_estimated_min > 0:
            speed = min(max(self.ran_seconds / (self.ran_estimated_min * 60), 0.5), 3.0)
        logger.info(
            "[%d/%d] %s | elapsed %.1f min | about %.1f min left",
            self.done, len(self.planned), stage, (time.time() - self.start) / 60, remaining * speed,
        )

    def end(self, stage: str):
        seconds = time.time() - self._stage_start
        if seconds < 5:  # reused from an earlier run
            self.planned[self.done - 1] = "reused"
            return
        self.ran_seconds += seconds
        self.ran_estimated_min += self._estimate(stage)

    def _estimate(self, stage: str) -> float:
        if stage == "reused":
            return 0.0
        return self.estimates.get(stage.split(":")[0], 1.0)


def _stage_marker(path: str) -> Optional[Dict]:
    return read_json(path) if os.path.exists(path) else None


def run_logged(cmd: Sequence[str], log_path: str, env: Dict[str, str], stage: str) -> float:
    """Runs ``cmd`` with its output streamed to the console and appended to ``log_path``."""
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    t0 = time.time()
    with open(log_path, "a") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.Popen(
            list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
            cwd=REPO_ROOT,
        )
        for line in proc.stdout:
            log.write(line)
            if _is_progress_line(line):
                sys.stdout.write("    " + line)
                sys.stdout.flush()
        rc = proc.wait()
    if rc != 0:
        tail = "".join(open(log_path).readlines()[-25:])
        raise StageError(f"stage {stage} failed (exit {rc}); full log: {log_path}\n{tail}")
    return time.time() - t0


def _is_progress_line(line: str) -> bool:
    keys = ("eta:", "OPLL ", "ADCL pool:", "Traceback", "Error:")
    return any(k in line for k in keys)


class BenchmarkRunner:
    """Runs every stage for one seed; finished stages are skipped (their marker file exists)."""

    def __init__(self, output_dir: str, profile: Profile, seed: int, num_gpus: int = 1,
                 env: Optional[Dict[str, str]] = None):
        self.output_dir = output_dir
        self.profile = profile
        self.seed = seed
        self.num_gpus = num_gpus
        self.run_dir = os.path.join(output_dir, f"seed{seed}")
        self.env = dict(os.environ if env is None else env)

    # -- helpers ---------------------------------------------------------------------------
    def _train_cmd(self, config: str, out: str, opts: Sequence[str]) -> List[str]:
        return [
            sys.executable, TRAIN_NET, "--config-file", config, "--num-gpus", str(self.num_gpus),
            "--resume", "OUTPUT_DIR", out, "SEED", str(self.seed),
            # Evaluation is its own stage (results JSON); no test pass at the end of training.
            "DATASETS.TEST", "()", *opts,
        ]

    def _eval_cmd(self, config: str, weights: str, out_json: str, opts: Sequence[str] = ()) -> List[str]:
        return [
            sys.executable, "-m", "unlock.benchmark.evaluate", "--config-file", config,
            "--weights", weights, "--output", out_json, "--num-gpus", str(self.num_gpus),
            *self.profile.eval_opts, *opts,
        ]

    # -- stages ----------------------------------------------------------------------------
    def train_source(self) -> str:
        out = os.path.join(self.run_dir, "source_only")
        weights = os.path.join(out, "model_final.pth")
        if not os.path.exists(weights):
            run_logged(
                self._train_cmd(SOURCE_CONFIG, out, self.profile.source_opts),
                os.path.join(out, "stage.log"), self.env, "source_train",
            )
        return weights

    def evaluate(self, name: str, config: str, weights: str, opts: Sequence[str] = ()) -> Dict:
        out_json = os.path.join(self.run_dir, name, "eval", "results.json")
        if not os.path.exists(out_json):
            run_logged(self._eval_cmd(config, weights, out_json, opts),
                       os.path.join(self.run_dir, name, "eval", "stage.log"), self.env, f"eval:{name}")
        return read_json(out_json)

    def adapt(self, row: Row, source_weights: str) -> str:
        out = os.path.join(self.run_dir, row.name)
        weights = os.path.join(out, "model_final.pth")
        if not os.path.exists(weights):
            # The rows of a seed share one pseudo-label folder: the source predictions (pass 1)
            # are the same for them and are reused; labels and pool are redone when a row's
            # options differ (their keys are in the manifest). Rows that predict differently
            # name their own folder (Row.pseudo_labels).
            opts = list(self.profile.adapt_opts) + [
                "MODEL.WEIGHTS", source_weights,
                "UNLOCK.OPLL.OUTPUT_DIR", os.path.join(self.run_dir, row.pseudo_labels),
            ]
            run_logged(self._train_cmd(os.path.join(CONFIG_DIR, row.config), out, opts),
                       os.path.join(out, "stage.log"), self.env, f"adapt:{row.name}")
        return weights

    def run(self, rows: Sequence[Row], progress: Progress) -> Dict:
        """Returns {"source_only": results, row.name: results, ...} and the timing of each stage."""
        marker = os.path.join(self.run_dir, "results.json")
        cached = _stage_marker(marker)
        wanted = {r.name for r in rows} | {SOURCE_VAL_ROW.name}
        if cached is not None and wanted <= set(cached["results"]):
            logger.info("seed %d: all stages finished earlier (%s)", self.seed, marker)
            return cached
        timings, results, weights = {}, {}, {}
        t = time.time()
        progress.begin(f"source_train: seed {self.seed}")
        weights["source_only"] = self.train_source()
        timings["source_train"] = time.time() - t
        progress.end("source_train")
        t = time.time()
        progress.begin(f"source_eval: seed {self.seed}")
        results["source_only"] = self.evaluate("source_only", SOURCE_CONFIG, weights["source_only"])
        # The in-domain score (held-out pinhole images, at their own size): the domain drop
        # to the row above is what adaptation has to recover.
        results[SOURCE_VAL_ROW.name] = self.evaluate(
            SOURCE_VAL_ROW.name, SOURCE_CONFIG, weights["source_only"], self.profile.source_val_opts()
        )
        timings["source_eval"] = time.time() - t
        progress.end("source_eval")
        for row in rows:
            t = time.time()
            progress.begin(f"adapt: {row.name}, seed {self.seed}")
            source = weights["source_only"]
            weights[row.name] = self.adapt(row, source) if row.adapt else source
            timings[f"adapt:{row.name}"] = time.time() - t
            progress.end("adapt")
            t = time.time()
            progress.begin(f"adapt_eval: {row.name}, seed {self.seed}")
            results[row.name] = self.evaluate(
                row.name, os.path.join(CONFIG_DIR, row.config), weights[row.name]
            )
            timings[f"eval:{row.name}"] = time.time() - t
            progress.end("adapt_eval")
        summary = {"seed": self.seed, "results": results, "weights": weights, "timings_s": timings}
        atomic_write_json(marker, summary, indent=1)
        return summary


def load_json(path: str) -> Dict:
    with open(path) as f:
        return json.load(f)
