"""Appearance of the synthetic images and the appearance half of the domain gap: material
palette (hue/saturation shift), sun lighting, world-space procedural texture (facade windows,
foliage, grain), lane paint, distance haze, white balance, exposure, sensor noise and blur.

Textures are functions of the 3D hit point, so they distort with the projection exactly like the
geometry does (a panorama bends window rows the same way it bends the building edges).
"""

import math
from typing import Dict

import cv2
import numpy as np

from .primitives import MATERIALS

__all__ = ["palette_matrix", "shade", "finish_image"]

_PAINT = np.array([0.88, 0.88, 0.85])
_WINDOW = np.array([0.16, 0.19, 0.24])


def palette_matrix(hue_shift: float, saturation: float) -> np.ndarray:
    """(3, 3) linear map on RGB that rotates hue by ``hue_shift`` turns about the grey axis and
    scales saturation (distance from grey) by ``saturation``."""
    a = 2.0 * math.pi * hue_shift
    k = np.ones(3) / math.sqrt(3.0)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    rot = np.eye(3) + math.sin(a) * kx + (1 - math.cos(a)) * kx @ kx  # Rodrigues
    grey = np.outer(k, k)
    return grey + saturation * rot @ (np.eye(3) - grey)


def _hash_noise(pos: np.ndarray, cell: float) -> np.ndarray:
    """Deterministic value noise in [-0.5, 0.5) of 3D points, constant on cubes of side ``cell``."""
    q = np.floor(pos / cell)
    v = np.sin(q @ np.array([12.9898, 78.233, 37.719])) * 43758.5453
    return v - np.floor(v) - 0.5


def shade(scene, cast: Dict, origin: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Linear RGB colour in [0, 1] of every ray, (N, 3).

    Args:
        scene: the rendered scene.Scene (its ``domain`` and ``style`` drive the look).
        cast: output of render.cast_rays; origin (3,), dirs (N, 3): the camera rays.
    """
    dom, style, prims = scene.domain, scene.style, scene.prims
    n = dirs.shape[0]
    prim, depth = cast["prim"], cast["depth"]
    hit = prim > -2
    pos = origin + np.where(hit, depth, 0.0)[:, None] * dirs
    base = np.zeros((n, 3))
    amp = np.full(n, dom.texture_amp)
    cell = np.full(n, 0.15)

    g = prim == -1
    glab = scene.ground.labels(pos[g, 0], pos[g, 1])
    gcol = np.zeros((glab.size, 3))
    for lab, col in scene.ground.colors.items():
        gcol[glab == lab] = col
    paint = scene.ground.paint(pos[g, 0], pos[g, 1]) & (glab == 0)
    gcol[paint] = _PAINT
    base[g] = gcol

    obj = prim >= 0
    pid = prim[obj]
    base[obj] = prims.color[pid]
    mat = prims.material[pid]
    foliage = np.flatnonzero(obj)[mat == MATERIALS["foliage"]]
    amp[foliage] *= 3.0
    cell[foliage] = 0.3
    facade = np.flatnonzero(obj)[mat == MATERIALS["facade"]]
    if facade.size:
        p, nrm = pos[facade], cast["normal"][facade]
        u = np.where(np.abs(nrm[:, 1]) > np.abs(nrm[:, 0]), p[:, 0], p[:, 1])
        mu, mz = np.mod(u, 3.0), np.mod(p[:, 2], 3.2)
        win = (mu > 0.9) & (mu < 2.2) & (mz > 1.0) & (mz < 2.3) & (p[:, 2] > 1.5)
        win &= np.abs(nrm[:, 2]) < 0.5
        base[facade[win]] = _WINDOW

    base = np.clip(base @ palette_matrix(dom.hue_shift, dom.saturation).T, 0.0, 1.0)
    base *= 1.0 + 2.0 * amp[:, None] * _hash_noise(pos, 1.0)[:, None] * 0.5
    base *= 1.0 + amp[:, None] * _hash_noise(pos * (0.15 / cell)[:, None], 0.15)[:, None]
    sun = np.asarray(style["sun"], dtype=np.float64)
    lambert = np.clip(cast["normal"] @ sun, 0.0, 1.0)
    colour = base * (dom.ambient + (1.0 - dom.ambient) * lambert)[:, None]

    horizon, zenith = np.asarray(style["sky_horizon"]), np.asarray(style["sky_zenith"])
    s = np.clip(dirs[:, 2] / 0.6, 0.0, 1.0)[:, None]
    sky = horizon * (1.0 - s) + zenith * s
    fog = np.exp(-np.where(hit, depth, np.inf) / dom.fog_distance)[:, None]
    colour = np.where(hit[:, None], colour * fog + horizon * (1.0 - fog), sky)
    return colour * np.asarray(dom.white_balance) * style["exposure"]


def finish_image(colour: np.ndarray, scene, camera) -> np.ndarray:
    """Sensor model: blur, gamma, Gaussian noise and 8-bit quantisation.

    Args:
        colour: (H, W, 3) linear RGB; scene: supplies ``domain`` and ``style["noise_seed"]``;
        camera: unused except for its size (kept for symmetry with render_scene).
    Returns:
        (H, W, 3) uint8 RGB.
    """
    dom = scene.domain
    img = np.clip(colour, 0.0, 1.0).astype(np.float32)
    if dom.blur_sigma > 0:
        img = cv2.GaussianBlur(img, (0, 0), sigmaX=dom.blur_sigma, borderType=cv2.BORDER_REFLECT)
    img = np.power(img, 1.0 / 1.1) * 255.0
    rng = np.random.default_rng(scene.style.get("noise_seed", 0))
    img = img + rng.normal(0.0, dom.noise_sigma, size=img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)
