"""UNLOCK: source-free occlusion-aware seamless segmentation on Detectron2."""
