"""ClassTable: built from metadata, checked against the config, the same view for every module."""

import numpy as np
import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog

from class_tables import INSTANCE_ONLY, TOY
from common import get_unlock_cfg
from unlock.class_table import ClassTable, class_table_from_config
from unlock.classes import A2B, K2B, class_metadata, get_class_table


def test_builtin_tables():
    assert K2B.num_classes == 18 and K2B.num_things == 7 and K2B.num_stuff == 11
    assert K2B.thing_ids == tuple(range(11, 18)) and K2B.stuff_ids == tuple(range(11))
    assert K2B.thing_names[0] == "pedestrians" and A2B.thing_names[0] == "person"
    assert get_class_table("A2B") is A2B
    with pytest.raises(KeyError, match="'kins'.*expected one of"):
        get_class_table("kins")


def test_lookups_with_interleaved_things():
    assert TOY.stuff_ids == (0, 2, 3, 5) and TOY.thing_names == ("robot", "cart", "dog")
    assert [TOY.thing_class(i) for i in range(7)] == [-1, 0, -1, -1, 1, -1, 2]
    assert [TOY.semantic_id(k) for k in range(3)] == [1, 4, 6]
    assert TOY.thing_class(250) == -1 and not TOY.is_thing(250)
    sem = np.array([[0, 1, 4], [6, 250, 5]])
    np.testing.assert_array_equal(TOY.thing_mask(sem), [[0, 1, 1], [1, 0, 0]])
    np.testing.assert_array_equal(TOY.thing_classes_of(sem), [[-1, 0, 1], [2, -1, -1]])


@pytest.mark.parametrize("table", [K2B, A2B, TOY, INSTANCE_ONLY], ids=lambda t: t.name)
def test_metadata_round_trip(table):
    assert ClassTable.from_metadata(table.metadata()) == table


def test_builtin_metadata_keeps_the_published_fields():
    meta = class_metadata("k2b")
    assert meta["thing_dataset_id_to_contiguous_id"] == {11 + k: k for k in range(7)}
    assert meta["stuff_dataset_id_to_contiguous_id"] == {i: i for i in range(18)}
    assert meta["ignore_label"] == 255 and meta["label_divisor"] == 1000
    assert meta["thing_colors"][2] == (0, 0, 142) and meta["stuff_classes"][10] == "sky"


def test_instance_only_metadata_without_stuff():
    table = ClassTable.from_metadata({"thing_classes": ["person", "vehicle"]})
    assert table.thing_ids == (0, 1) and table.num_stuff == 0 and len(table.colors) == 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(names=("a", "b"), colors=((0, 0, 0),), thing_ids=()), "2 class names but 1 colours"),
        (dict(names=("a",), colors=((0, 0, 0),), thing_ids=(1,)), r"thing ids \[1\] outside 0..0"),
        (dict(names=("a", "b"), colors=((0, 0, 0),) * 2, thing_ids=(1, 1)), "repeated thing id"),
        (dict(names=("a", "b"), colors=((0, 0, 0),) * 2, thing_ids=(), ignore_label=1),
         "ignore_label 1 must lie in 2..255"),
    ],
)
def test_bad_tables_are_explained(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ClassTable(**kwargs)


def test_metadata_missing_the_thing_map_is_explained():
    meta = {"thing_classes": ["car"], "stuff_classes": ["road", "car"], "name": "mine"}
    with pytest.raises(ValueError, match="'mine'.*thing_dataset_id_to_contiguous_id"):
        ClassTable.from_metadata(meta)


def _register(name, table):
    if name not in MetadataCatalog.list():
        DatasetCatalog.register(name, lambda: [])
        MetadataCatalog.get(name).set(**table.metadata())
    return name


def test_config_reads_the_datasets_and_checks_the_counts():
    name = _register("unlock_test_class_table_toy", TOY)
    opts = ["DATASETS.TRAIN", (name,), "DATASETS.TEST", ("not_registered_here",),
            "MODEL.SEM_SEG_HEAD.NUM_CLASSES", 7, "MODEL.ROI_HEADS.NUM_CLASSES", 3,
            "MODEL.SEM_SEG_HEAD.IGNORE_VALUE", 250]
    assert class_table_from_config(get_unlock_cfg(opts=opts)) == TOY
    bad = opts + ["MODEL.SEM_SEG_HEAD.NUM_CLASSES", 18]
    with pytest.raises(ValueError, match=r"NUM_CLASSES=18 but the metadata of "
                                         r"'unlock_test_class_table_toy' has 7 classes"):
        class_table_from_config(get_unlock_cfg(opts=bad))


def test_config_refuses_datasets_with_different_tables():
    toy = _register("unlock_test_class_table_toy", TOY)
    k2b = _register("unlock_test_class_table_k2b", K2B)
    cfg = get_unlock_cfg(opts=["DATASETS.TRAIN", (toy,), "DATASETS.TEST", (k2b,)])
    with pytest.raises(ValueError, match="different class tables"):
        class_table_from_config(cfg)


def test_registered_dataset_without_classes_is_explained():
    name = "unlock_test_class_table_bare"
    if name not in DatasetCatalog.list():
        DatasetCatalog.register(name, lambda: [])
    cfg = get_unlock_cfg(opts=["DATASETS.TRAIN", (name,), "DATASETS.TEST", ()])
    with pytest.raises(ValueError, match="'unlock_test_class_table_bare' has no classes"):
        class_table_from_config(cfg)


def test_no_registered_dataset_falls_back_to_the_named_builtin_table():
    cfg = get_unlock_cfg(opts=["DATASETS.TRAIN", ("nowhere",), "DATASETS.TEST", (),
                               "UNLOCK.DATA.CLASS_TABLE", "a2b"])
    assert class_table_from_config(cfg) is A2B
