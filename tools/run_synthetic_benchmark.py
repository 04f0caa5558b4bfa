#!/usr/bin/env python
"""The synthetic SFOASS benchmark end to end (the README's first command).

Generates the synthetic pinhole/panorama benchmark if missing, trains the source model on labelled
pinhole images, evaluates it on the labelled panoramas (source-only row), adapts it with UNLOCK on the
unlabelled panoramas without touching source data, evaluates again, and writes the comparison table
(markdown + JSON) and pictures of the five outputs. Finished stages are reused on a re-run.
"""
import argparse
import os
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = "run_synthetic_benchmark.py"


def _user_error(message: str) -> SystemExit:
    """The tools' error convention (README "Errors and crash safety"): one line, exit status 2.

    Imported here, not at the top: unlock must not be imported before main() has pointed
    DETECTRON2_DATASETS at this run's data (every caller runs after that)."""
    from unlock.utils.cli import EXIT_USER_ERROR, UserError, format_user_error

    print(format_user_error(TOOL, UserError(message)), file=sys.stderr)
    return SystemExit(EXIT_USER_ERROR)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke run of a few minutes (CI)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (rows: mean ± std)")
    p.add_argument("--ablations", action="store_true",
                   help="also run the Table 4/6/7 analogues (pseudo-label and mixing variants)")
    p.add_argument("--rows", nargs="+", default=None,
                   help="with --ablations: only these ablation rows (names as in unlock.benchmark.profiles)")
    p.add_argument("--ablation-seeds", type=int, nargs="+", default=None,
                   help="seeds that run the ablations (default: the first of --seeds)")
    p.add_argument("--data-seed", type=int, default=0,
                   help="seed of the generated dataset (default 0): check conclusions on another draw")
    p.add_argument("--output", default=None,
                   help="default: output/benchmark_<profile>[_data<N> for --data-seed N > 0]")
    p.add_argument("--data-root", default=None,
                   help="DETECTRON2_DATASETS for the synthetic data (default: <output>/datasets)")
    p.add_argument("--num-gpus", type=int, default=1,
                   help="processes per machine for training/evaluation (GLOO on the CPU)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    profile_name = "quick" if args.quick else "default"
    default_name = f"benchmark_{profile_name}" + (f"_data{args.data_seed}" if args.data_seed else "")
    output = os.path.abspath(args.output or os.path.join(REPO_ROOT, "output", default_name))
    data_root = os.path.abspath(args.data_root or os.path.join(output, "datasets"))
    # Registration reads DETECTRON2_DATASETS when unlock is imported, here and in every subprocess.
    os.environ["DETECTRON2_DATASETS"] = data_root

    from detectron2.utils.logger import setup_logger

    from unlock.benchmark.pictures import save_comparison_pictures
    from unlock.benchmark.pipeline import BenchmarkRunner, Progress, StageError
    from unlock.benchmark.profiles import (
        COMPARISONS, MAIN_ROWS, PROFILES, SOURCE_VAL_ROW, rows_for,
    )
    from unlock.benchmark.report import (
        aggregate, markdown_table, paired_differences, paired_markdown, per_class_markdown,
        seam_markdown,
    )
    from unlock.data.synthetic import generate_synthetic_benchmark
    from unlock.utils.file_io import atomic_write_bytes, atomic_write_json, read_json

    os.makedirs(output, exist_ok=True)
    # Trained stages are reused on a re-run, so one output folder must hold one dataset draw.
    params_path = os.path.join(output, "benchmark_params.json")
    params = {"profile": profile_name, "data_seed": args.data_seed}
    earlier = read_json(params_path) if os.path.exists(params_path) else params
    if earlier != params:
        raise _user_error(f"{params_path}: this folder holds a run with {earlier}, not {params}; "
                          "choose another --output")
    atomic_write_json(params_path, params)
    logger = setup_logger(output=os.path.join(output, "benchmark.log"), name="unlock")
    profile = PROFILES[profile_name]
    try:
        rows = rows_for(args.ablations, args.rows)
    except ValueError as e:
        raise _user_error(str(e))
    ablation_seeds = set(args.ablation_seeds or args.seeds[:1]) if args.ablations else set()
    seed_rows = {seed: rows if seed in ablation_seeds else MAIN_ROWS for seed in args.seeds}
    planned = ["data"]
    for seed in args.seeds:
        planned += ["source_train", "source_eval"]
        planned += [s for _ in seed_rows[seed] for s in ("adapt", "adapt_eval")]
    planned += ["pictures"]
    progress = Progress(planned=planned, estimates=profile.minutes)
    t_start = time.time()

    progress.begin("data: synthetic benchmark")
    summary = generate_synthetic_benchmark(
        os.path.join(data_root, "unlock_synthetic"), seed=args.data_seed, **profile.data
    )
    logger.info("synthetic data: %s", summary)
    progress.end("data")

    summaries = []
    for seed in args.seeds:
        runner = BenchmarkRunner(output, profile, seed, num_gpus=args.num_gpus)
        try:
            summaries.append(runner.run(seed_rows[seed], progress))
        except StageError as e:
            # The message names the stage and its log; finished stages are kept for a re-run.
            raise _user_error(str(e))

    table_rows = [SOURCE_VAL_ROW] + list(rows)
    table = aggregate(summaries, table_rows)
    strict = aggregate(summaries, table_rows, protocol="strict")
    text = "\n\n".join([
        # The synthetic configs keep the code-default fusion and a 6-px minimum region
        # (docs/evaluation.md "Fusion", "Minimum region size"): published GT and metrics only.
        "## Five numbers, oass protocol (published ground truth and metrics; synthetic fusion "
        "defaults, 6-px minimum region)",
        markdown_table(table, table_rows),
        "## Five numbers, strict protocol (reference-evaluator quirks fixed)",
        markdown_table(strict, table_rows, protocol="strict"),
        "## Paired differences (same seed, oass protocol)",
        paired_markdown(summaries, COMPARISONS),
        "## Objects across the 360° seam (oass protocol)",
        seam_markdown(summaries, rows),
        "## Per class: source-only vs UNLOCK (oass protocol, mean over seeds)",
        per_class_markdown(summaries),
    ])
    progress.begin("pictures: five outputs, source-only vs UNLOCK")
    pictures = save_comparison_pictures(
        summaries[0], os.path.join(output, "pictures"), num_images=profile.num_pictures
    )
    progress.end("pictures")

    total_min = (time.time() - t_start) / 60
    atomic_write_json(
        os.path.join(output, "results.json"),
        {"profile": profile_name, "data_seed": args.data_seed, "seeds": args.seeds, "table": table, "table_strict": strict,
         "paired": {f"{c.better} - {c.baseline}": paired_differences(summaries, c) for c in COMPARISONS},
         "runs": summaries,
         "pictures": pictures, "minutes": total_min},
        indent=1,
    )
    report = f"# Synthetic SFOASS benchmark ({profile_name}, data seed {args.data_seed})\n\n{text}\n\nTotal time: {total_min:.1f} min\n"
    atomic_write_bytes(os.path.join(output, "results.md"), report.encode())
    print("\n" + text + "\n")
    print(f"Results: {output}/results.md, results.json; pictures: {output}/pictures/")
    print(f"Total time: {total_min:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
