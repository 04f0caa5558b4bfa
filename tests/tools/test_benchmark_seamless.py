"""tools/benchmark_seamless.py: times the three settings on the same weights and prints a table."""
import os

from common import TINY_CONFIG, get_unlock_cfg, load_tool
from fixtures_synthetic import save_checkpoint, write_target_images


def test_prints_one_row_per_setting(tmp_path, capsys):
    weights = save_checkpoint(get_unlock_cfg(), str(tmp_path / "w" / "model.pth"))
    write_target_images(str(tmp_path / "images"), num=2, height=32, width=64)
    tool = load_tool("benchmark_seamless.py", "benchmark_seamless_tool")
    images = os.path.dirname(
        next(os.path.join(d, f) for d, _, fs in os.walk(tmp_path / "images") for f in fs)
    )
    assert tool.main(["--config-file", TINY_CONFIG, "--weights", weights, "--images", images,
                      "--num", "2", "--rounds", "2"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert [r.split(" | ")[0] for r in rows[1:]] == [
        "| flat", "| MODEL.PANORAMA.WRAP_INFERENCE", "| MODEL.PANORAMA.WRAP_PADDING"
    ]
    assert rows[1].endswith("| 1.00 |")


def test_missing_weights_end_in_one_line_naming_the_file(tmp_path, capsys):
    write_target_images(str(tmp_path / "images"), num=1, height=32, width=64)
    images = os.path.dirname(
        next(os.path.join(d, f) for d, _, fs in os.walk(tmp_path / "images") for f in fs)
    )
    tool = load_tool("benchmark_seamless.py", "benchmark_seamless_tool")
    missing = str(tmp_path / "nope.pth")
    assert tool.main(["--config-file", TINY_CONFIG, "--weights", missing, "--images", images,
                      "--num", "1", "--rounds", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("benchmark_seamless.py: error:") and missing in err[0]
