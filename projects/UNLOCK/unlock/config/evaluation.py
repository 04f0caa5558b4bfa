"""Evaluation keys: which metrics, and which protocol."""
from detectron2.config import CfgNode as CN


def add_unlock_eval_config(cfg):
    cfg.UNLOCK = CN() if "UNLOCK" not in cfg else cfg.UNLOCK
    cfg.UNLOCK.EVAL = CN()
    # Metrics to compute: any of "sem_seg" (mIoU), "panoptic" (PQ), "amodal_panoptic" (APQ),
    # "instance" (AP, visible masks), "amodal_instance" (AAP).
    cfg.UNLOCK.EVAL.TASKS = ("sem_seg", "panoptic", "amodal_panoptic", "instance", "amodal_instance")
    # Protocols to report: "oass" (the published evaluator: its ground truth and quirks) and/or
    # "strict" (quirks fixed, repaired amodal GT); docs/evaluation.md.
    cfg.UNLOCK.EVAL.PROTOCOLS = ("oass", "strict")
    # Minimum GT region size (pixels) for AP/AAP. 100 is the published (Cityscapes) rule; the
    # synthetic configs scale it to 6. Results carry it as segm/amodal_segm "min_region_px".
    cfg.UNLOCK.EVAL.MIN_REGION_SIZE = 100
    # Export predictions in standard formats (COCO-panoptic, Cityscapes txt, COCO RLE) to
    # OUTPUT_DIR/inference/<dataset>/.
    cfg.UNLOCK.EVAL.EXPORT_PREDICTIONS = False
    # Also report the metrics restricted to objects crossing the panorama's ±180° seam
    # (AP_seam, PQ_seam, ..., docs/evaluation.md "Seam-crossing objects"), beside the headline
    # ones, which they leave unchanged. Splits whose metadata says domain "pinhole" never get them.
    cfg.UNLOCK.EVAL.SEAM_METRICS = True
