"""Procedural synthetic pinhole -> panorama amodal benchmark (scene, cameras, render, writers)."""

from .cameras import EquirectCamera, PinholeCamera
from .domain import DomainParams, GapKnobs, make_domain
from .generate import generate_synthetic_benchmark, render_example
from .render import cast_rays, render_scene
from .scene import Scene, sample_scene

__all__ = [
    "EquirectCamera",
    "PinholeCamera",
    "DomainParams",
    "GapKnobs",
    "make_domain",
    "cast_rays",
    "render_scene",
    "generate_synthetic_benchmark",
    "render_example",
    "Scene",
    "sample_scene",
]
