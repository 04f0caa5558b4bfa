#!/usr/bin/env python
"""Scores OPLL pseudo-labels against ground truth (precision/recall of objects, semantic IoU).

Only meaningful when the pseudo-labelled split is labelled, e.g. pseudo-labels generated for the
synthetic test panoramas:
    python tools/generate_pseudo_labels.py --config-file configs/synthetic/unlock.yaml \
        MODEL.WEIGHTS <source model_final.pth> \
        UNLOCK.OPLL.TARGET_DATASET unlock_synthetic_target_test UNLOCK.OPLL.OUTPUT_DIR out/pl_test
    python tools/pseudo_label_quality.py --labels out/pl_test \
        --dataset unlock_synthetic_target_test --json out/pl_test/quality.json
With ``--pool`` it also scores the ADCL object pool built with those labels (configs with
UNLOCK.ADCL.ENABLED build it into <labels>/pool) against the split's amodal ground truth.
"""
import argparse
import os
import sys

sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "projects", "UNLOCK")
)

TOOL = "pseudo_label_quality.py"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--labels", required=True,
                   help="pseudo-label folder (UNLOCK.OPLL.OUTPUT_DIR, or its labels/ folder)")
    p.add_argument("--dataset", required=True, help="the labelled split the labels were made for")
    p.add_argument("--pool", help="also score this ADCL object pool folder (e.g. <labels>/pool)")
    p.add_argument("--json", help="also write the report as JSON to this file")
    p.add_argument("--debug", action="store_true", help="show the traceback of input errors too")
    from unlock.utils.cli import run_tool
    from unlock.utils.user_modules import add_register_argument

    args = add_register_argument(p).parse_args(argv)

    return run_tool(TOOL, lambda: run(args), debug=args.debug)


def run(args) -> int:
    import unlock  # noqa: F401  (registers the datasets)
    from unlock.class_table import dataset_class_table
    from unlock.pseudo_labels.quality import evaluate_pseudo_labels, format_quality_tables
    from unlock.utils.cli import load_dataset_checked, prepare_output_dir
    from unlock.utils.user_modules import import_registration_modules

    import_registration_modules(args.register)
    from unlock.utils.file_io import atomic_write_json

    if args.json:  # fail before reading every image, not after
        prepare_output_dir(os.path.dirname(os.path.abspath(args.json)), "--json folder")
    pool = _load_pool(args.pool) if args.pool else None  # also fails before reading images
    dicts = load_dataset_checked(args.dataset)
    table = dataset_class_table(args.dataset)
    report = evaluate_pseudo_labels(dicts, args.labels, table, dataset_name=args.dataset)
    report = dict(report, dataset=args.dataset, labels=args.labels)
    print(format_quality_tables(report))
    if pool is not None:
        from unlock.pseudo_labels import pool_quality

        report["pool"] = pool_quality.evaluate_object_pool(
            dicts, pool, table, dataset_name=args.dataset
        )
        print("\n" + pool_quality.format_pool_quality_table(report["pool"]))
    if args.json:
        atomic_write_json(args.json, report, indent=1)
    return 0


def _load_pool(path: str):
    from unlock.data.adcl import load_object_pool
    from unlock.pseudo_labels.quality import PseudoLabelQualityError

    try:
        return load_object_pool(path)
    except (FileNotFoundError, ValueError) as e:  # their messages name the index file
        raise PseudoLabelQualityError(str(e)) from e


if __name__ == "__main__":
    sys.exit(main())
