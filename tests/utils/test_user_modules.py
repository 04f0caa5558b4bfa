"""``--register MODULE`` (unlock/utils/user_modules.py): a user's registration file or module is
imported once, before the config is read; tools/train_net.py then trains and evaluates on a
dataset that only that file registers; a missing module is a one-line input error naming it."""

import os
import sys
import textwrap

import pytest
from detectron2.data import DatasetCatalog

from common import TINY_CONFIG, load_tool
from toy_dataset import TOY_OPTS, write_toy_split
from unlock.utils.cli import EXIT_USER_ERROR, user_error_types
from unlock.utils.user_modules import RegistrationModuleError, import_registration_modules

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _registration_file(path, dataset_name, data_root):
    """A user's registration module: registers the toy split ``data_root`` as ``dataset_name``."""
    path.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {TESTS_DIR!r})
        from class_tables import TOY
        from unlock import register_amodal_panoptic_dataset

        register_amodal_panoptic_dataset(
            {dataset_name!r}, class_table=TOY, image_root={data_root + '/images'!r},
            panoptic_json={data_root + '/panoptic.json'!r},
            panoptic_root={data_root + '/panoptic'!r}, amodal_json={data_root + '/amodal.json'!r},
        )
        IMPORTS = globals().get("IMPORTS", 0) + 1
    """))
    return str(path)


def test_a_file_is_imported_once_and_registers_its_dataset(tmp_path):
    write_toy_split(str(tmp_path / "data"), 1)
    reg = _registration_file(tmp_path / "my_datasets.py", "reg_once_toy", str(tmp_path / "data"))
    first = import_registration_modules([reg])
    second = import_registration_modules([reg])
    assert first[0] is second[0] and first[0].IMPORTS == 1
    assert len(DatasetCatalog.get("reg_once_toy")) == 1


def test_a_dotted_module_next_to_the_working_directory_is_found(tmp_path, monkeypatch):
    write_toy_split(str(tmp_path / "data"), 1)
    _registration_file(tmp_path / "reg_dotted_mod.py", "reg_dotted_toy", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    (module,) = import_registration_modules(["reg_dotted_mod"])
    assert module.__name__ == "reg_dotted_mod"
    assert "reg_dotted_toy" in DatasetCatalog.list()


def test_missing_file_or_module_is_an_input_error_naming_it(tmp_path):
    missing = str(tmp_path / "nope.py")
    with pytest.raises(RegistrationModuleError, match=f"{missing}: --register file does not"):
        import_registration_modules([missing])
    with pytest.raises(RegistrationModuleError, match="no_such_pkg.datasets: --register module"):
        import_registration_modules(["no_such_pkg.datasets"])
    assert issubclass(RegistrationModuleError, user_error_types())


def test_a_broken_import_inside_the_users_module_keeps_its_traceback(tmp_path):
    (tmp_path / "reg_broken.py").write_text("import package_that_does_not_exist\n")
    with pytest.raises(ModuleNotFoundError) as info:
        import_registration_modules([str(tmp_path / "reg_broken.py")])
    assert not isinstance(info.value, RegistrationModuleError)


def test_train_net_trains_and_evaluates_on_a_dataset_of_a_register_file(tmp_path):
    write_toy_split(str(tmp_path / "data"), 2)
    reg = _registration_file(tmp_path / "toy_reg.py", "reg_train_net_toy", str(tmp_path / "data"))
    train_net = load_tool("train_net.py", "train_net_register")
    common = [
        "--register", reg, "--config-file", TINY_CONFIG, *TOY_OPTS,
        "DATASETS.TRAIN", "('reg_train_net_toy',)", "DATASETS.TEST", "('reg_train_net_toy',)",
    ]  # fmt: skip
    out = str(tmp_path / "out")
    train_net.main(train_net.get_parser().parse_args(
        [*common, "SOLVER.MAX_ITER", "1", "OUTPUT_DIR", out]))  # fmt: skip
    results = train_net.main(train_net.get_parser().parse_args(
        ["--eval-only", *common, "MODEL.WEIGHTS", os.path.join(out, "model_final.pth"),
         "OUTPUT_DIR", str(tmp_path / "eval")]))  # fmt: skip
    # The toy table's names reach the metrics: "lake" is a TOY stuff class, "dog" a TOY thing.
    assert "PQ-lake" in results["panoptic_seg"] and "IoU-robot" in results["sem_seg"]
    assert "AP-dog" in results["segm"]


def test_train_net_reports_a_missing_register_module_in_one_line(tmp_path, capsys):
    train_net = load_tool("train_net.py", "train_net_register")
    status = train_net.invoke_main(
        ["--register", str(tmp_path / "absent.py"), "--config-file", TINY_CONFIG]
    )
    assert status == EXIT_USER_ERROR
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == f"train_net.py: error: {tmp_path / 'absent.py'}: --register file does not exist"
