#!/usr/bin/env python
"""Object-size statistics (pixels) of registered amodal datasets, as a markdown table.

Example (the synthetic benchmark's data):
    DETECTRON2_DATASETS=output/benchmark_default/datasets python tools/dataset_statistics.py \
        --datasets unlock_synthetic_source_val unlock_synthetic_target_test
"""
import argparse
import os
import sys

sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "projects", "UNLOCK")
)

HEADER = (
    "| dataset | images | things/image | visible area median | p25 | under 100 px "
    "| height median | amodal area median | occluded |\n|---|---|---|---|---|---|---|---|---|"
)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", required=True, help="registered dataset names")
    p.add_argument("--debug", action="store_true", help="show the traceback of input errors too")
    args = p.parse_args(argv)
    from unlock.utils.cli import run_tool

    return run_tool("dataset_statistics.py", lambda: run(args), debug=args.debug)


def run(args) -> int:
    import unlock  # noqa: F401  (registers the datasets)
    from unlock.data.statistics import format_size_statistics, thing_size_statistics
    from unlock.data.validation import DatasetFormatError
    from unlock.utils.cli import load_dataset_checked

    print(HEADER)
    for name in args.datasets:
        try:
            stats = thing_size_statistics(load_dataset_checked(name))
        except DatasetFormatError as e:  # the split's name first: several are read in one run
            raise DatasetFormatError(f"{name}: {e}") from e
        print(format_size_statistics(name, stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
