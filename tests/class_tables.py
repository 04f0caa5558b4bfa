"""Class tables that share nothing with K2B, for tests that a module takes its classes from the
table it is given: different names, counts, thing ids interleaved with stuff, another label
divisor."""
from unlock.class_table import ClassTable
from unlock.classes import K2B

# 4 stuff + 3 things; the things are semantic ids 1, 4 and 6 (detector classes 0, 1, 2).
TOY = ClassTable(
    names=("ground", "robot", "wall", "sky", "cart", "lake", "dog"),
    colors=((10, 20, 30), (200, 0, 0), (90, 90, 90), (0, 120, 250), (0, 200, 0), (0, 0, 140),
            (250, 200, 0)),
    thing_ids=(1, 4, 6),
    ignore_label=250,
    label_divisor=100,
    name="toy",
)

# Instance-only (KINS/COCOA style): every class is a thing, there is no stuff.
INSTANCE_ONLY = ClassTable(
    names=("person", "vehicle"),
    colors=((220, 20, 60), (0, 0, 142)),
    thing_ids=(0, 1),
    name="toy_instances",
)

# K2B with the class names replaced by their trainIds ("0" .. "17"), for tests whose per-class
# result keys are checked by id (e.g. "PQ-13", "AP-11").
K2B_NUMBERED = ClassTable(
    names=tuple(str(i) for i in range(K2B.num_classes)),
    colors=K2B.colors,
    thing_ids=K2B.thing_ids,
    name="k2b_numbered",
)

# Semantic-only (DensePASS style): stuff classes only, no detector.
SEMANTIC_ONLY = ClassTable(
    names=("building", "road", "sky"),
    colors=((70, 70, 70), (128, 64, 128), (70, 130, 180)),
    thing_ids=(),
    name="toy_semantic",
)
