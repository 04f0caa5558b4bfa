#!/usr/bin/env python
"""CPU inference time of the seamless-360° options against flat inference (docs/benchmarks.md
"Seamless 360°"): the same weights built flat, with MODEL.PANORAMA.WRAP_INFERENCE and with
MODEL.PANORAMA.WRAP_PADDING, timed on the same panoramas in rounds that alternate the settings
(the first round warms up; medians of the others). Prints a markdown table of ms per image and
the ratio to flat.

Example (the benchmark's seed-0 source model on its test panoramas):
    OMP_NUM_THREADS=1 python tools/benchmark_seamless.py \
        --config-file configs/synthetic/source_only.yaml \
        --weights output/benchmark_default/seed0/source_only/model_final.pth \
        --images output/benchmark_default/datasets/unlock_synthetic/BlendPASS/leftImg8bit/val
"""
import argparse
import glob
import os
import statistics
import sys
import time

sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "projects", "UNLOCK")
)

TOOL = "benchmark_seamless.py"
SETTINGS = {
    "flat": [],
    "MODEL.PANORAMA.WRAP_INFERENCE": ["MODEL.PANORAMA.WRAP_INFERENCE", "True"],
    "MODEL.PANORAMA.WRAP_PADDING": ["MODEL.PANORAMA.WRAP_PADDING", "True"],
}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config-file", required=True)
    p.add_argument("--weights", required=True)
    p.add_argument("--images", required=True, help="folder of panoramas (png/jpg)")
    p.add_argument("--num", type=int, default=20, help="panoramas timed per round")
    p.add_argument("--rounds", type=int, default=3, help="rounds, the first one a warm-up")
    p.add_argument("--debug", action="store_true", help="show the traceback of input errors too")
    args = p.parse_args(argv)
    files = sorted(glob.glob(os.path.join(args.images, "*.png"))
                   + glob.glob(os.path.join(args.images, "*.jpg")))[: args.num]
    if not files or args.rounds < 2:
        p.error(f"need images in {args.images} and --rounds >= 2")
    from unlock.utils.cli import run_tool

    # The tools' error convention: a missing or mismatched weights file, an unknown key or an
    # unreadable image ends the run with one line naming it (README "Errors and crash safety").
    return run_tool(TOOL, lambda: _run(args, files), debug=args.debug)


def _run(args, files):
    import torch
    from detectron2.modeling import build_model

    from unlock.config.loading import load_config
    from unlock.data.validation import read_image_checked
    from unlock.utils.checkpoint import load_weights

    models = {}
    for name, opts in SETTINGS.items():
        cfg = load_config(args.config_file, opts + ["MODEL.WEIGHTS", args.weights, "MODEL.DEVICE", "cpu"])
        models[name] = build_model(cfg).eval()
        load_weights(models[name], args.weights)
    fmt = cfg.INPUT.FORMAT
    images = [torch.as_tensor(read_image_checked(f, fmt).astype("float32").transpose(2, 0, 1))
              for f in files]
    times = {name: [] for name in models}
    with torch.no_grad():
        for round_index in range(args.rounds):
            for name, model in models.items():
                start = time.perf_counter()
                for image in images:
                    model([{"image": image, "height": image.shape[1], "width": image.shape[2]}])
                if round_index:
                    times[name].append((time.perf_counter() - start) / len(images))
    flat = statistics.median(times["flat"])
    print(f"| setting ({len(images)} panoramas, {torch.get_num_threads()} threads) | ms per image | ÷ flat |")
    print("|---|---:|---:|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {1000 * median:.1f} | {median / flat:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
