"""The tools' error convention (unlock.utils.cli): one line, exit status 2, tracebacks for bugs."""

import os

import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog

from unlock.config.loading import ConfigLoadError
from unlock.utils.cli import (
    EXIT_USER_ERROR,
    EmptyDatasetError,
    OutputDirError,
    UserError,
    load_dataset_checked,
    prepare_output_dir,
    remove_stale_temp_files,
    run_tool,
)


def _fail(exc):
    def fn():
        raise exc

    return fn


def test_user_error_is_one_line_and_status_2(capsys):
    status = run_tool("t.py", _fail(ConfigLoadError("a.yaml: unknown config key 'X'\n(more)")))
    assert status == EXIT_USER_ERROR == 2
    err = capsys.readouterr().err
    assert err == "t.py: error: a.yaml: unknown config key 'X' (more)\n"


def test_bugs_keep_their_traceback_and_debug_shows_user_errors():
    with pytest.raises(ZeroDivisionError):
        run_tool("t.py", lambda: 1 / 0)
    with pytest.raises(UserError):
        run_tool("t.py", _fail(UserError("f: bad")), debug=True)
    assert run_tool("t.py", lambda: None) == 0 and run_tool("t.py", lambda: 3) == 3


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(OutputDirError, match=f"{blocker}/out: OUTPUT_DIR cannot be written"):
        prepare_output_dir(str(blocker / "out"), "OUTPUT_DIR")
    assert prepare_output_dir(str(tmp_path / "new")) == str(tmp_path / "new")
    assert os.listdir(tmp_path / "new") == []  # the write test leaves nothing behind


def test_unknown_and_empty_datasets():
    with pytest.raises(UserError, match="no_such_split_xyz: dataset is not registered"):
        load_dataset_checked("no_such_split_xyz")
    name = "cli_empty_split"
    if name not in DatasetCatalog.list():
        DatasetCatalog.register(name, lambda: [])
        MetadataCatalog.get(name).set(image_root="/data/empty/images")
    with pytest.raises(EmptyDatasetError, match="/data/empty/images: dataset 'cli_empty_split'"):
        load_dataset_checked(name)


def test_stale_temp_files_are_removed(tmp_path):
    (tmp_path / "sub").mkdir()
    for path in ("a/.tmp-x.pth", ".tmp-1.pth", "sub/.tmp-2.json", "model.pth", "sub/x.json"):
        (tmp_path / path).parent.mkdir(exist_ok=True)
        (tmp_path / path).write_bytes(b"")
    assert remove_stale_temp_files(str(tmp_path)) == 1
    assert (tmp_path / "sub" / ".tmp-2.json").exists()
    assert remove_stale_temp_files(str(tmp_path), recursive=True) == 2
    left = sorted(os.path.relpath(os.path.join(r, f), tmp_path)
                  for r, _, fs in os.walk(tmp_path) for f in fs)  # fmt: skip
    assert left == ["model.pth", os.path.join("sub", "x.json")]
    assert remove_stale_temp_files(str(tmp_path / "absent")) == 0
