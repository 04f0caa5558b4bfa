#!/usr/bin/env python
"""Packaging for detectron2-unlock (import package ``unlock`` lives in projects/UNLOCK)."""
from setuptools import find_packages, setup

setup(
    name="detectron2-unlock",
    version="0.1.0",
    description=(
        "Source-Free Occlusion-Aware Seamless Segmentation (UNLOCK) as a Detectron2 extension"
    ),
    license="Apache-2.0",
    python_requires=">=3.9",
    package_dir={"": "projects/UNLOCK"},
    packages=find_packages("projects/UNLOCK"),
    # detectron2 is not on PyPI; tools/setup_env.sh installs it (or uses the user's own build).
    install_requires=[
        "numpy",
        "opencv-python-headless",
        "pycocotools",
        "scipy",
        "tqdm",
        "tabulate",
        "Pillow",
    ],
    extras_require={"test": ["pytest", "panopticapi-lite", "cityscapesscripts==2.3.0"]},
)
