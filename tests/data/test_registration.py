"""Registration: names, metadata, idempotence, lazy failure with a clear message."""

import os
import uuid

import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog

import unlock.data  # noqa: F401 (registers the builtin datasets)
from amodal_fixtures import make_blendpass, make_kitti
from unlock.classes import class_metadata
from unlock.data import DatasetFormatError, register_all_unlock, register_synthetic

BUILTIN = [
    "blendpass_k2b_val",
    "blendpass_k2b_train",
    "blendpass_a2b_val",
    "blendpass_a2b_train",
    "kitti360_aps_train",
    "amodal_synth_drive_train",
    "amodal_synth_drive_val",
    "unlock_synthetic_source_train",
    "unlock_synthetic_target_train",
    "unlock_synthetic_target_test",
]


def test_builtin_names_registered_at_import():
    names = set(DatasetCatalog.list())
    assert set(BUILTIN) <= names


def test_builtin_metadata():
    m = MetadataCatalog.get("blendpass_a2b_val")
    assert m.evaluator_type == "amodal_panoptic" and m.domain == "panorama"
    assert m.class_table == "a2b" and m.thing_classes == class_metadata("a2b")["thing_classes"]
    assert m.thing_dataset_id_to_contiguous_id == {i: i - 11 for i in range(11, 18)}
    assert m.stuff_dataset_id_to_contiguous_id == {i: i for i in range(18)}
    assert m.ignore_label == 255 and m.label_divisor == 1000
    assert m.panoptic_json.endswith(os.path.join("Panoptic", "val_trainId_A2B.json"))
    assert m.instance_root.endswith(os.path.join("Instance", "val_A2B"))
    assert MetadataCatalog.get("blendpass_k2b_train").evaluator_type == "none"
    k = MetadataCatalog.get("kitti360_aps_train")
    assert k.domain == "pinhole" and k.class_table == "k2b"
    assert MetadataCatalog.get("amodal_synth_drive_train").class_table == "a2b"
    src = MetadataCatalog.get("unlock_synthetic_source_train")
    assert src.evaluator_type == "amodal_panoptic" and src.domain == "pinhole"
    assert MetadataCatalog.get("unlock_synthetic_target_train").evaluator_type == "none"


def test_idempotent_registration(tmp_path):
    before = list(DatasetCatalog.list())
    register_all_unlock(str(tmp_path))  # other root, same names: skipped, nothing changes
    register_all_unlock()
    assert list(DatasetCatalog.list()) == before
    prefix = "t_" + uuid.uuid4().hex[:8]
    names = register_synthetic(str(tmp_path), prefix=prefix)
    assert register_synthetic(str(tmp_path), prefix=prefix) == names
    assert len(DatasetCatalog.list()) == len(before) + 5


def test_missing_folder_fails_only_when_loaded(tmp_path):
    prefix = "t_" + uuid.uuid4().hex[:8]
    names = register_synthetic(str(tmp_path), prefix=prefix)  # nothing on disk: lazy, no error
    with pytest.raises(DatasetFormatError) as e:
        DatasetCatalog.get(names["source_train"])
    msg = str(e.value)
    assert os.path.join(prefix, "KITTI-360-APS", "Image", "train") in msg
    assert "datasets/README.md" in msg and names["source_train"] in msg


def test_synthetic_prefix_reads_real_layouts(tmp_path):
    prefix = "t_" + uuid.uuid4().hex[:8]
    base = os.path.join(tmp_path, prefix)
    make_kitti(base)
    make_blendpass(base, "k2b", num_train=2)
    names = register_synthetic(str(tmp_path), prefix=prefix)
    assert len(DatasetCatalog.get(names["source_train"])) == 2
    assert len(DatasetCatalog.get(names["target_train"])) == 2
    test = DatasetCatalog.get(names["target_test"])
    assert [len(d["annotations"]) for d in test] == [3, 0]
    stats = MetadataCatalog.get(names["target_test"]).load_stats
    assert stats == {"num_images": 2, "num_objects": 3, "amodal_repaired": 0}


def test_default_root_from_environment():
    root = os.getenv("DETECTRON2_DATASETS", "datasets")
    m = MetadataCatalog.get("blendpass_k2b_val")
    assert m.image_root == os.path.join(root, "BlendPASS", "leftImg8bit", "val")
    k = MetadataCatalog.get("kitti360_aps_train")
    assert k.panoptic_json == os.path.join(root, "KITTI-360-APS", "Panoptic", "train.json")
