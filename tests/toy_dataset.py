"""A 7-class toy amodal panoptic dataset (tests/class_tables.py TOY) written in the layout of
docs/custom_datasets.md: the runnable example's data, shared by the tests that register it."""

import os

import numpy as np

from class_tables import TOY
from unlock.utils.file_io import atomic_write_image, atomic_write_json
from unlock.utils.masks import encode_rle

H, W = 64, 128
GROUND, ROBOT, WALL, SKY, CART, DOG = 0, 1, 2, 3, 4, 6


def _rect(y0, y1, x0, x1):
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return m


def write_toy_split(root: str, num: int):
    """``num`` labelled images: sky / wall / ground, a robot partly behind a cart, and a dog."""
    rs = np.random.RandomState(0)
    pan_anns, images, amodal = [], [], []
    colours = np.array(TOY.colors, np.uint8)
    for i in range(num):
        stem = f"toy{i:03d}"
        sem = np.full((H, W), SKY, np.int64)
        sem[24:, :] = GROUND
        sem[10:24, 80 + 4 * i : 120] = WALL
        dx = 6 * i
        things = [  # (class, amodal mask, segment id); later ones are in front
            (ROBOT, _rect(20, 50, 10 + dx, 30 + dx), ROBOT * 100 + 1),
            (CART, _rect(35, 55, 22 + dx, 50 + dx), CART * 100 + 1),
            (DOG, _rect(40, 56, 70, 90), DOG * 100 + 1),
        ]
        pan = sem.copy()
        for cls, amo, sid in things:
            sem[amo] = cls
            pan[amo] = sid
        image = colours[sem] + rs.randint(0, 20, (H, W, 3)).astype(np.uint8)
        atomic_write_image(os.path.join(root, "images", stem + ".png"), image)
        rgb = np.stack([pan % 256, pan // 256 % 256, pan // 65536], -1).astype(np.uint8)
        atomic_write_image(os.path.join(root, "panoptic", stem + "_panoptic.png"), rgb)
        segs = [{"id": int(c), "category_id": int(c), "iscrowd": 0, "area": int((pan == c).sum()),
                 "amodal_id": -1} for c in (GROUND, WALL, SKY) if (pan == c).any()]  # fmt: skip
        for cls, amo, sid in things:
            aid = (i + 1) * 1000 + sid
            segs.append({"id": sid, "category_id": cls, "iscrowd": 0,
                         "area": int((pan == sid).sum()), "amodal_id": aid})  # fmt: skip
            amodal.append({"id": aid, "image_id": i + 1, "segmentation": encode_rle(amo)})
        pan_anns.append({"image_id": stem, "file_name": stem + "_panoptic.png",
                         "segments_info": segs})  # fmt: skip
        images.append({"id": i + 1, "file_name": stem + ".png", "height": H, "width": W})
    atomic_write_json(os.path.join(root, "panoptic.json"), {"annotations": pan_anns})
    atomic_write_json(os.path.join(root, "amodal.json"), {"images": images, "annotations": amodal})


TOY_OPTS = ["MODEL.SEM_SEG_HEAD.NUM_CLASSES", "7", "MODEL.ROI_HEADS.NUM_CLASSES", "3",
            "MODEL.SEM_SEG_HEAD.IGNORE_VALUE", "250"]  # fmt: skip


def _polygon(mask):
    """The outline of a rectangle mask as one COCO polygon."""
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    return [[float(x0), float(y0), float(x1), float(y0), float(x1), float(y1), float(x0), float(y1)]]


def write_toy_instance_split(root: str, num: int, layout: str = "kins"):
    """``num`` images of the instance-only table (tests/class_tables.py INSTANCE_ONLY): a person
    partly behind a vehicle, and a second vehicle; ``instances.json`` in the KINS layout (amodal
    ``a_segm`` polygons, visible ``i_segm`` RLE) or the COCOA one (``segmentation`` /
    ``visible_mask``). JSON category ids are 7 and 3, not the table's order."""
    rs = np.random.RandomState(1)
    amodal_key, visible_key = {"kins": ("a_segm", "i_segm"), "cocoa": ("segmentation", "visible_mask")}[layout]
    images, annotations = [], []
    person, vehicle = (220, 20, 60), (0, 0, 142)
    for i in range(num):
        stem = f"inst{i:03d}"
        image = np.full((H, W, 3), 90, np.uint8)
        dx = 5 * i
        objects = [(7, _rect(14, 50, 12 + dx, 28 + dx), person),  # later ones are in front
                   (3, _rect(32, 56, 20 + dx, 52 + dx), vehicle),
                   (3, _rect(20, 44, 80, 116), vehicle)]
        front = np.zeros((H, W), bool)
        visible = []
        for _, amo, colour in reversed(objects):
            visible.append(amo & ~front)
            front |= amo
        for (cat, amo, colour), vis in zip(objects, reversed(visible)):
            image[vis] = colour
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": cat,
                                "iscrowd": 0, amodal_key: _polygon(amo),
                                visible_key: encode_rle(vis)})
        image = image + rs.randint(0, 20, (H, W, 3)).astype(np.uint8)
        atomic_write_image(os.path.join(root, "images", stem + ".png"), image)
        images.append({"id": i + 1, "file_name": stem + ".png", "height": H, "width": W})
    atomic_write_json(os.path.join(root, "instances.json"), {
        "images": images, "annotations": annotations,
        "categories": [{"id": 7, "name": "person"}, {"id": 3, "name": "vehicle"}]})


INSTANCE_OPTS = ["MODEL.META_ARCHITECTURE", "AmodalRCNN", "MODEL.ROI_HEADS.NUM_CLASSES", "2"]


def write_toy_semantic_split(root: str, num: int, labelled: bool = True):
    """``num`` images of the semantic-only table (tests/class_tables.py SEMANTIC_ONLY) with their
    ``<stem>_labelTrainIds.png`` (DensePASS / Cityscapes naming; 255 = unlabelled) under
    ``root/labels`` when ``labelled``."""
    rs = np.random.RandomState(2)
    colours = np.array([(70, 70, 70), (128, 64, 128), (70, 130, 180)], np.uint8)
    for i in range(num):
        stem = f"pano{i:03d}"
        sem = np.full((H, W), 2, np.uint8)  # sky
        sem[20 + 2 * i : 40, :] = 0  # building
        sem[40:, :] = 1  # road
        image = colours[sem] + rs.randint(0, 20, (H, W, 3)).astype(np.uint8)
        atomic_write_image(os.path.join(root, "images", stem + ".png"), image)
        if labelled:
            label = sem.copy()
            label[:, :4] = 255
            atomic_write_image(os.path.join(root, "labels", stem + "_labelTrainIds.png"), label)


SEMANTIC_OPTS = ["MODEL.META_ARCHITECTURE", "UnlockSemanticSegmentor",
                 "MODEL.SEM_SEG_HEAD.NUM_CLASSES", "3"]  # fmt: skip
