"""The class table of a dataset: one object that every module receives instead of constants.

Detectron2 keeps a dataset's classes in its ``MetadataCatalog`` entry; :class:`ClassTable` reads
them from there (:meth:`ClassTable.from_metadata`, :meth:`ClassTable.from_config`) and gives the
model, the fusion, the evaluators, OPLL, ADCL and the visualizer the same view of them:

* semantic ids ``0 .. num_classes - 1`` in the semantic head's channel order (the metadata's
  ``stuff_classes``, which in Detectron2's panoptic convention lists every class, things too);
* ``thing_ids``: the semantic ids of the thing classes, in detector order, so detector class ``k``
  is semantic class ``thing_ids[k]``; every other semantic id is stuff;
* ``ignore_label`` (unlabelled pixels) and ``label_divisor`` (panoptic id = class * divisor + k).

An instance-only dataset (KINS/COCOA style) has only things; a semantic-only one has none.
"""

from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

__all__ = ["ClassTable", "class_table_from_config", "dataset_class_table", "model_has_detector",
           "model_has_semantic_head"]

Color = Tuple[int, int, int]


@dataclass(frozen=True)
class ClassTable:
    """Names, colours and the thing/stuff split of a dataset's classes (see the module doc)."""

    names: Tuple[str, ...]
    colors: Tuple[Color, ...]
    thing_ids: Tuple[int, ...]
    ignore_label: int = 255
    label_divisor: int = 1000
    name: str = ""
    _semantic_to_thing: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        names, colors = tuple(str(n) for n in self.names), tuple(tuple(int(v) for v in c) for c in self.colors)
        thing_ids = tuple(int(i) for i in self.thing_ids)
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "colors", colors)
        object.__setattr__(self, "thing_ids", thing_ids)
        where = f"class table {self.name!r}" if self.name else "class table"
        if not names:
            raise ValueError(f"{where}: no classes")
        if len(colors) != len(names):
            raise ValueError(f"{where}: {len(names)} class names but {len(colors)} colours")
        if any(len(c) != 3 for c in colors):
            raise ValueError(f"{where}: colours must be (r, g, b) triples")
        if len(set(thing_ids)) != len(thing_ids):
            raise ValueError(f"{where}: repeated thing id in {list(thing_ids)}")
        bad = [i for i in thing_ids if not 0 <= i < len(names)]
        if bad:
            raise ValueError(f"{where}: thing ids {bad} outside 0..{len(names) - 1}")
        # Semantic maps are stored as 8-bit PNGs, so every class and the ignore label fit a byte.
        if not len(names) <= self.ignore_label <= 255:
            raise ValueError(
                f"{where}: ignore_label {self.ignore_label} must lie in {len(names)}..255 "
                f"(after the {len(names)} class ids, within an 8-bit label map)"
            )
        if self.label_divisor <= 0:
            raise ValueError(f"{where}: label_divisor must be positive, got {self.label_divisor}")
        lut = np.full(256, -1, dtype=np.int64)
        lut[list(thing_ids)] = np.arange(len(thing_ids))
        object.__setattr__(self, "_semantic_to_thing", lut)

    # ---- sizes and id sets --------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        """Semantic classes (stuff and things): the semantic head's channels."""
        return len(self.names)

    @property
    def num_things(self) -> int:
        """Thing classes: the detector's classes."""
        return len(self.thing_ids)

    @property
    def stuff_ids(self) -> Tuple[int, ...]:
        """Semantic ids of the stuff classes, ascending."""
        things = set(self.thing_ids)
        return tuple(i for i in range(self.num_classes) if i not in things)

    @property
    def num_stuff(self) -> int:
        return self.num_classes - self.num_things

    @property
    def thing_names(self) -> Tuple[str, ...]:
        return tuple(self.names[i] for i in self.thing_ids)

    @property
    def thing_colors(self) -> Tuple[Color, ...]:
        return tuple(self.colors[i] for i in self.thing_ids)

    def is_thing(self, semantic_id: int) -> bool:
        return 0 <= semantic_id < 256 and self._semantic_to_thing[semantic_id] >= 0

    def thing_mask(self, semantic: np.ndarray) -> np.ndarray:
        """Boolean map of the pixels whose semantic id is a thing class (ignore is not): OPLL's
        semantic thing mask (paper Eq. 2) when ``semantic`` is the source model's arg-max."""
        return self.thing_classes_of(semantic) >= 0

    def semantic_id(self, thing_class: int) -> int:
        """Semantic id of detector class ``thing_class``."""
        return self.thing_ids[thing_class]

    def thing_class(self, semantic_id: int) -> int:
        """Detector class of semantic id ``semantic_id``, -1 for stuff or ignore."""
        return int(self._semantic_to_thing[semantic_id]) if 0 <= semantic_id < 256 else -1

    def thing_classes_of(self, semantic: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`thing_class`: detector classes of an array of semantic ids."""
        semantic = np.asarray(semantic)
        classes = self._semantic_to_thing[np.clip(semantic, 0, 255)]
        if semantic.dtype == np.uint8:
            return classes
        return np.where((semantic >= 0) & (semantic < 256), classes, -1)

    # ---- Detectron2 metadata ------------------------------------------------------------------
    def metadata(self) -> Dict:
        """Detectron2 metadata fields of this table (``MetadataCatalog.get(name).set(**...)``).

        Dataset ids equal the semantic ids: the on-disk labels of our datasets are written in
        semantic ids (trainIds), so both ``*_dataset_id_to_contiguous_id`` maps are identities on
        the semantic side.
        """
        return {
            "class_table": self.name,
            "thing_classes": list(self.thing_names),
            "thing_colors": list(self.thing_colors),
            "stuff_classes": list(self.names),
            "stuff_colors": list(self.colors),
            "thing_dataset_id_to_contiguous_id": {s: k for k, s in enumerate(self.thing_ids)},
            "stuff_dataset_id_to_contiguous_id": {i: i for i in range(self.num_classes)},
            "ignore_label": self.ignore_label,
            "label_divisor": self.label_divisor,
        }

    @classmethod
    def from_metadata(cls, metadata, name: Optional[str] = None) -> "ClassTable":
        """Builds the table from a Detectron2 ``Metadata`` (or a dict of its fields).

        Needs ``thing_classes`` or ``stuff_classes``. With ``stuff_classes`` (every class, as in
        Detectron2's panoptic datasets) the thing classes are located through
        ``thing_dataset_id_to_contiguous_id`` and ``stuff_dataset_id_to_contiguous_id``; without it
        the dataset is instance-only and the semantic ids are the thing classes.
        """
        get = (lambda k, d=None: metadata.get(k, d)) if isinstance(metadata, Mapping) else (
            lambda k, d=None: getattr(metadata, k, d))
        label = name or get("class_table") or get("name") or ""
        where = f"metadata of {label!r}" if label else "metadata"
        things, stuff = get("thing_classes"), get("stuff_classes")
        if not things and not stuff:
            raise ValueError(f"{where}: has neither thing_classes nor stuff_classes")
        if not stuff:
            colors = get("thing_colors") or _default_colors(len(things))
            return cls(tuple(things), tuple(colors), tuple(range(len(things))),
                       ignore_label=get("ignore_label", 255),
                       label_divisor=get("label_divisor", 1000), name=label)
        colors = get("stuff_colors") or _default_colors(len(stuff))
        thing_ids = ()
        if things:
            thing_map = get("thing_dataset_id_to_contiguous_id")
            stuff_map = get("stuff_dataset_id_to_contiguous_id")
            if not thing_map or not stuff_map:
                raise ValueError(
                    f"{where}: thing_classes and stuff_classes need thing_dataset_id_to_"
                    "contiguous_id and stuff_dataset_id_to_contiguous_id to say which semantic "
                    "ids are things")
            by_detector = {k: d for d, k in thing_map.items()}
            if sorted(by_detector) != list(range(len(things))):
                raise ValueError(f"{where}: thing_dataset_id_to_contiguous_id must map onto "
                                 f"0..{len(things) - 1}, got {dict(thing_map)}")
            missing = [d for d in by_detector.values() if d not in stuff_map]
            if missing:
                raise ValueError(f"{where}: thing dataset ids {missing} have no entry in "
                                 "stuff_dataset_id_to_contiguous_id (the semantic ids)")
            thing_ids = tuple(stuff_map[by_detector[k]] for k in range(len(things)))
        return cls(tuple(stuff), tuple(colors), thing_ids, ignore_label=get("ignore_label", 255),
                   label_divisor=get("label_divisor", 1000), name=label)


def _default_colors(n: int) -> Sequence[Color]:
    rng = np.random.RandomState(n)
    return [tuple(int(v) for v in rng.randint(0, 256, 3)) for _ in range(n)]


def dataset_class_table(dataset_name: str) -> ClassTable:
    """The class table of a registered dataset's ``MetadataCatalog`` entry."""
    from detectron2.data import MetadataCatalog

    meta = MetadataCatalog.get(dataset_name)
    if not (meta.get("stuff_classes") or meta.get("thing_classes")):
        raise ValueError(f"dataset {dataset_name!r} has no classes: its MetadataCatalog entry "
                         "needs thing_classes and/or stuff_classes (register it with "
                         "ClassTable.metadata(), or pass class_table= explicitly)")
    return ClassTable.from_metadata(meta, name=meta.get("class_table") or dataset_name)


def class_table_from_config(cfg, dataset_names: Optional[Sequence[str]] = None) -> ClassTable:
    """The class table of the config's datasets, checked against the config's class counts.

    Reads the ``MetadataCatalog`` entries of ``dataset_names`` (default: ``DATASETS.TRAIN`` then
    ``DATASETS.TEST``), requires them to agree, and requires ``MODEL.SEM_SEG_HEAD.NUM_CLASSES`` and
    ``MODEL.ROI_HEADS.NUM_CLASSES`` to equal the table's class and thing counts and
    ``MODEL.SEM_SEG_HEAD.IGNORE_VALUE`` its ignore label (the two SEM_SEG_HEAD keys only for a
    meta-architecture with a semantic head, :func:`model_has_semantic_head`; ROI_HEADS only for
    one with a detector, :func:`model_has_detector`). Names not registered in this process
    are skipped; when none is registered, the built-in table ``UNLOCK.DATA.CLASS_TABLE`` is used
    (inference on images, where no dataset needs to exist).
    """
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from .classes import get_class_table

    names = list(dataset_names) if dataset_names is not None else (
        list(cfg.DATASETS.TRAIN) + list(cfg.DATASETS.TEST))
    tables = {}
    for n in names:
        if n not in MetadataCatalog.list() and n not in DatasetCatalog.list():
            # Not registered in this process (e.g. the pseudo-labelled split of an adaptation
            # config, when only predicting): it cannot disagree with the others.
            continue
        tables[n] = dataset_class_table(n)
    if tables:
        first, table = next(iter(tables.items()))
        for n, other in tables.items():
            if _semantics(other) != _semantics(table):
                raise ValueError(f"datasets {first!r} and {n!r} have different class tables "
                                 f"({table.names} vs {other.names}); one model needs one table")
        source = f"the metadata of {first!r}"
    else:
        table = get_class_table(cfg.UNLOCK.DATA.CLASS_TABLE)
        source = f"UNLOCK.DATA.CLASS_TABLE={cfg.UNLOCK.DATA.CLASS_TABLE!r}"
    semantic = model_has_semantic_head(cfg)
    checks = []
    if model_has_detector(cfg):
        checks.append(("MODEL.ROI_HEADS.NUM_CLASSES", cfg.MODEL.ROI_HEADS.NUM_CLASSES,
                       table.num_things, "thing classes"))
    if semantic:
        checks.insert(0, ("MODEL.SEM_SEG_HEAD.NUM_CLASSES", cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES,
                          table.num_classes, "classes"))
    for key, got, want, what in checks:
        if got != want:
            raise ValueError(f"{key}={got} but {source} has {want} {what} "
                             f"({table.names if what == 'classes' else table.thing_names})")
    # The semantic loss skips IGNORE_VALUE; any other ignore label would be trained as a class.
    if semantic and cfg.MODEL.SEM_SEG_HEAD.IGNORE_VALUE != table.ignore_label:
        raise ValueError(f"MODEL.SEM_SEG_HEAD.IGNORE_VALUE={cfg.MODEL.SEM_SEG_HEAD.IGNORE_VALUE} "
                         f"but {source} has ignore_label {table.ignore_label}")
    return table


def _architecture_flag(cfg, flag: str) -> bool:
    from detectron2.modeling import META_ARCH_REGISTRY

    try:
        arch = META_ARCH_REGISTRY.get(cfg.MODEL.META_ARCHITECTURE)
    except KeyError:
        return True
    return bool(getattr(arch, flag, True))


def model_has_semantic_head(cfg) -> bool:
    """Whether cfg.MODEL.META_ARCHITECTURE builds MODEL.SEM_SEG_HEAD (a meta-architecture says
    so with a ``has_semantic_head`` class attribute, e.g. AmodalRCNN; default True)."""
    return _architecture_flag(cfg, "has_semantic_head")


def model_has_detector(cfg) -> bool:
    """Whether cfg.MODEL.META_ARCHITECTURE builds the RPN and RoI heads (class attribute
    ``has_detector``, e.g. UnlockSemanticSegmentor; default True)."""
    return _architecture_flag(cfg, "has_detector")


def _semantics(table: ClassTable):
    """What must agree between datasets trained or evaluated together (colours may differ)."""
    return table.names, table.thing_ids, table.ignore_label, table.label_divisor
