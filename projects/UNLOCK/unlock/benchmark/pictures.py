"""Pictures of the five outputs on a few target panoramas: source-only beside UNLOCK."""
import logging
import os
from typing import Dict, List

import numpy as np
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.detection_utils import read_image

from unlock.config.loading import load_config
from unlock.utils.file_io import atomic_write_image

logger = logging.getLogger(__name__)


def _predictor(config_file: str, weights: str):
    from unlock.engine.predictor import UnlockPredictor

    cfg = load_config(config_file, ["MODEL.WEIGHTS", weights])
    return cfg, UnlockPredictor(cfg)


def _titled(picture: np.ndarray, title: str) -> np.ndarray:
    import cv2

    bar = np.full((24, picture.shape[1], 3), 255, dtype=np.uint8)
    cv2.putText(bar, title, (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, picture], axis=0)


def save_comparison_pictures(summary: Dict, out_dir: str, num_images: int = 3,
                             row: str = "unlock") -> List[str]:
    """Writes ``<stem>_source_only_vs_<row>.png`` for the first ``num_images`` test panoramas."""
    from unlock.benchmark.pipeline import CONFIG_DIR, SOURCE_CONFIG
    from unlock.utils.five_outputs import draw_five_outputs

    models = {
        "source-only": _predictor(SOURCE_CONFIG, summary["weights"]["source_only"]),
        row.upper(): _predictor(os.path.join(CONFIG_DIR, f"{row}.yaml"), summary["weights"][row]),
    }
    cfg = next(iter(models.values()))[0]
    dataset = cfg.DATASETS.TEST[0]
    metadata = MetadataCatalog.get(dataset)
    written = []
    for dic in DatasetCatalog.get(dataset)[:num_images]:
        image_bgr = read_image(dic["file_name"], format="BGR")
        columns = []
        for title, (_, predictor) in models.items():
            outputs = predictor(image_bgr)
            picture = draw_five_outputs(image_bgr[:, :, ::-1], outputs, metadata)
            columns.append(_titled(picture, title))
        height = max(c.shape[0] for c in columns)
        columns = [np.pad(c, ((0, height - c.shape[0]), (0, 8), (0, 0)), constant_values=255)
                   for c in columns]
        path = os.path.join(out_dir, f"{dic['image_id']}_source_only_vs_{row}.png")
        atomic_write_image(path, np.concatenate(columns, axis=1))
        written.append(path)
        logger.info("picture: %s", path)
    return written
