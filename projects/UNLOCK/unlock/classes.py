"""Class tables of the OASS benchmarks (K2B: KITTI-360-APS -> BlendPASS, A2B: AmodalSynthDrive ->
BlendPASS). 18 classes with trainIds 0..17; 0..10 are stuff, 11..17 are things (detector ids 0..6)."""
from typing import Dict

from .class_table import ClassTable

_STUFF = [
    ("road", (128, 64, 128)),
    ("sidewalk", (244, 35, 232)),
    ("building", (70, 70, 70)),
    ("wall", (102, 102, 156)),
    ("fence", (190, 153, 153)),
    ("pole", (153, 153, 153)),
    ("traffic light", (250, 170, 30)),
    ("traffic sign", (220, 220, 0)),
    ("vegetation", (107, 142, 35)),
    ("terrain", (152, 251, 152)),
    ("sky", (70, 130, 180)),
]
_K2B_THINGS = [
    ("pedestrians", (220, 20, 60)),
    ("cyclists", (255, 0, 0)),
    ("car", (0, 0, 142)),
    ("truck", (0, 0, 70)),
    ("other vehicles", (0, 60, 100)),
    ("van", (0, 80, 100)),
    ("two-wheeler", (0, 0, 230)),
]
_A2B_THINGS = [
    ("person", (220, 20, 60)),
    ("rider", (255, 0, 0)),
    ("car", (0, 0, 142)),
    ("truck", (0, 0, 70)),
    ("bus", (0, 60, 100)),
    ("motor", (0, 0, 230)),
    ("bike", (119, 11, 32)),
]


def _table(name: str, things) -> ClassTable:
    names, colors = zip(*(_STUFF + things))
    return ClassTable(names, colors, tuple(range(len(_STUFF), len(_STUFF) + len(things))),
                      ignore_label=255, label_divisor=1000, name=name)


K2B = _table("k2b", _K2B_THINGS)
A2B = _table("a2b", _A2B_THINGS)
CLASS_TABLES = {"k2b": K2B, "a2b": A2B}


def get_class_table(name: str) -> ClassTable:
    """Returns the built-in class table called ``name`` ("k2b" or "a2b")."""
    try:
        return CLASS_TABLES[name.lower()]
    except KeyError:
        raise KeyError(f"Unknown class table {name!r}; expected one of {sorted(CLASS_TABLES)}")


def class_metadata(name: str = "k2b") -> Dict:
    """Detectron2 metadata fields shared by every split that uses built-in table ``name``."""
    return get_class_table(name).metadata()
