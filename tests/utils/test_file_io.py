"""Atomic writes: complete files only, the usual permissions, and no temporary file left."""
import os
import stat

import numpy as np
import pytest

from unlock.utils.file_io import atomic_write_image, atomic_write_json, read_json


def test_json_round_trip_and_permissions(tmp_path):
    path = tmp_path / "sub" / "a.json"
    atomic_write_json(str(path), {"x": [1, 2]})
    assert read_json(str(path)) == {"x": [1, 2]}
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    assert os.listdir(path.parent) == ["a.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.json"
    atomic_write_json(str(path), {"old": True})
    with pytest.raises(TypeError):
        atomic_write_json(str(path), {"bad": object()})
    assert read_json(str(path)) == {"old": True}
    assert os.listdir(tmp_path) == ["a.json"]


def test_image_and_bad_json(tmp_path):
    path = tmp_path / "m.png"
    atomic_write_image(str(path), np.full((3, 4), 7, dtype=np.uint8))
    from PIL import Image

    assert np.array(Image.open(path)).tolist() == [[7] * 4] * 3
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(ValueError, match="bad.json"):
        read_json(str(bad))


@pytest.mark.parametrize("indent", [None, 1, 2])
def test_json_bytes_equal_json_dump(tmp_path, indent):
    """atomic_write_json runs json.dumps (C encoder) but writes json.dump's bytes."""
    import json

    obj = {"b": [0.1, 1e-7, 2.0 / 3, -0.0, 1e300, 12345678901234567890], "a": "é\n\"x\"",
           "c": {"counts": "Y]1:N1O0", "size": [100, 512]}, "d": [None, True, False, {}], 3: []}  # fmt: skip
    path = tmp_path / "a.json"
    atomic_write_json(str(path), obj, indent=indent)
    with open(tmp_path / "ref.json", "w") as f:
        json.dump(obj, f, indent=indent)
    assert path.read_bytes() == (tmp_path / "ref.json").read_bytes()
