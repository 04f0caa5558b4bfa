"""Perspective (gnomonic, tangent-plane) views of an equirectangular panorama and back.

A source model trained on pinhole images sees undistorted, pinhole-like objects in a gnomonic view
of the panorama; its predictions there are projected back onto the equirectangular grid
(docs/method.md "Perspective-view pseudo-labels", our extension of the paper's OPLL, Sec. 3.2).

Conventions (the same as ``unlock/data/synthetic/cameras.py``; the tests check both cameras):

* Frame of the panorama camera: x forward (the direction of the centre column), y left, z up.
* Panorama of W x H pixels, continuous pixel coordinates (u, v) with pixel centres at
  (j + 0.5, i + 0.5): azimuth ``lon = pi - 2 pi u / W`` (left positive, so column 0 starts at
  +180° and moving right turns right), latitude ``lat = vfov/2 - vfov * v / H``: the rows cover a
  vertical band of ``vfov_deg`` centred on the horizon (BlendPASS: 70.3125°, not 180°). The
  seam, u = 0 = W, is at azimuth ±180°, behind the camera.
* A view (``ViewSpec``) is an ideal pinhole camera at the panorama's centre turned by ``pitch``
  (up positive) and then ``yaw`` (left positive); image right = camera -y, image down = camera
  -z; square pixels, principal point at the image centre, focal = (width / 2) / tan(fov / 2).

Sampling uses torch ``grid_sample`` (bilinear, for images and probabilities) or a gather of the
pixel holding the sample point (nearest, for masks, so that binary masks stay binary).
"""

import functools
import math
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "ViewSpec",
    "default_views",
    "horizontal_overlap_deg",
    "panorama_pixel_to_ray",
    "ray_to_panorama_pixel",
    "view_pixel_to_ray",
    "ray_to_view_pixel",
    "panorama_to_view_coords",
    "view_to_panorama_coords",
    "sample_view",
    "view_to_panorama",
    "view_to_panorama_pixels",
]


@dataclass(frozen=True)
class ViewSpec:
    """One perspective view: direction (degrees), horizontal field of view, output size (px)."""

    yaw_deg: float
    pitch_deg: float
    fov_deg: float
    width: int
    height: int

    def __post_init__(self):
        if not 0.0 < self.fov_deg < 180.0:
            raise ValueError(
                f"ViewSpec: horizontal fov_deg must be in (0, 180), got {self.fov_deg}"
            )
        if not -90.0 < self.pitch_deg < 90.0:
            raise ValueError(f"ViewSpec: pitch_deg must be in (-90, 90), got {self.pitch_deg}")
        if int(self.width) != self.width or int(self.height) != self.height:
            raise ValueError(
                f"ViewSpec: width/height must be integers, got {self.width}x{self.height}"
            )
        if self.width < 1 or self.height < 1:
            raise ValueError(f"ViewSpec: size must be positive, got {self.width}x{self.height}")

    @property
    def focal(self) -> float:
        return self.width / 2.0 / math.tan(math.radians(self.fov_deg) / 2.0)

    @property
    def vertical_fov_deg(self) -> float:
        return math.degrees(2.0 * math.atan(self.height / 2.0 / self.focal))

    def rotation(self) -> np.ndarray:
        """(3, 3) camera-to-panorama rotation: pitch about the left axis, then yaw about +z."""
        yaw, pitch = math.radians(self.yaw_deg), math.radians(self.pitch_deg)
        cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
        r_yaw = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
        r_pitch = np.array([[cp, 0.0, -sp], [0.0, 1.0, 0.0], [sp, 0.0, cp]])
        return r_yaw @ r_pitch


def default_views(
    num_views: int,
    fov_deg: float,
    width: int,
    height: int,
    pitch_deg: float = 0.0,
    first_yaw_deg: float = 0.0,
) -> List[ViewSpec]:
    """``num_views`` views spread evenly around 360°, the first at ``first_yaw_deg`` (0 = the
    panorama's centre column). Neighbours overlap by ``horizontal_overlap_deg`` at the horizon
    (negative: gaps, which keep the panorama prediction)."""
    if int(num_views) != num_views or num_views < 1:
        raise ValueError(f"default_views: num_views must be a positive integer, got {num_views}")
    return [
        ViewSpec((first_yaw_deg + 360.0 * k / num_views + 180.0) % 360.0 - 180.0, pitch_deg,
                 fov_deg, int(width), int(height))
        for k in range(int(num_views))
    ]  # fmt: skip


def horizontal_overlap_deg(num_views: int, fov_deg: float) -> float:
    """Azimuth overlap of two neighbouring views of ``default_views`` on the horizon."""
    return fov_deg - 360.0 / num_views


def _check_vfov(vfov_deg: float) -> None:
    if not 0.0 < vfov_deg <= 180.0:
        raise ValueError(f"panorama vertical extent vfov_deg must be in (0, 180], got {vfov_deg}")


# ---------------------------------------------------------------------------------------------
# point mappings (numpy, float64; broadcast over any leading shape)


def panorama_pixel_to_ray(u, v, width: int, height: int, vfov_deg: float) -> np.ndarray:
    """Unit rays (..., 3) through continuous panorama coordinates (u, v)."""
    _check_vfov(vfov_deg)
    lon = math.pi - 2.0 * math.pi * np.asarray(u, np.float64) / width
    half = math.radians(vfov_deg) / 2.0
    lat = half - 2.0 * half * np.asarray(v, np.float64) / height
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)


def ray_to_panorama_pixel(
    rays: np.ndarray, width: int, height: int, vfov_deg: float
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Continuous panorama coordinates of rays (..., 3, any length): u in [0, W), v, and whether v
    lies inside the panorama's vertical band [0, H)."""
    _check_vfov(vfov_deg)
    rays = np.asarray(rays, np.float64)
    lon = np.arctan2(rays[..., 1], rays[..., 0])
    lat = np.arctan2(rays[..., 2], np.hypot(rays[..., 0], rays[..., 1]))
    u = np.mod((math.pi - lon) / (2.0 * math.pi) * width, width)
    half = math.radians(vfov_deg) / 2.0
    v = (half - lat) / (2.0 * half) * height
    return u, v, (v >= 0.0) & (v < height)


def view_pixel_to_ray(u, v, spec: ViewSpec) -> np.ndarray:
    """Unit rays (..., 3), panorama frame, through continuous view coordinates (u, v)."""
    u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
    x, y = u - spec.width / 2.0, v - spec.height / 2.0
    d = np.stack(np.broadcast_arrays(np.full_like(x, spec.focal), -x, -y), axis=-1)
    d = d / np.linalg.norm(d, axis=-1, keepdims=True)
    return d @ spec.rotation().T


def ray_to_view_pixel(
    rays: np.ndarray, spec: ViewSpec
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Continuous view coordinates of rays (..., 3) and whether each ray lands inside the view
    (in front of the camera and within [0, width) x [0, height))."""
    cam = np.asarray(rays, np.float64) @ spec.rotation()  # R^T d, row vectors
    forward = cam[..., 0]
    front = forward > 1e-9
    safe = np.where(front, forward, 1.0)  # rays behind the camera get finite, invalid coordinates
    u = spec.width / 2.0 - spec.focal * cam[..., 1] / safe
    v = spec.height / 2.0 - spec.focal * cam[..., 2] / safe
    inside = front & (u >= 0.0) & (u < spec.width) & (v >= 0.0) & (v < spec.height)
    return u, v, inside


def _pixel_centres(width: int, height: int) -> Tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)


# Coordinate grids depend only on the geometry: one computation per (view, panorama size), shared
# by every image of a dataset. Returned arrays are read-only so that the cache cannot be altered.
@functools.lru_cache(maxsize=64)
def panorama_to_view_coords(
    spec: ViewSpec, pano_width: int, pano_height: int, vfov_deg: float
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every view pixel centre: panorama (u, v) it shows and whether v is inside the band;
    each (height, width) of the view."""
    uu, vv = _pixel_centres(spec.width, spec.height)
    out = ray_to_panorama_pixel(view_pixel_to_ray(uu, vv, spec), pano_width, pano_height, vfov_deg)
    return _read_only(out)


@functools.lru_cache(maxsize=64)
def view_to_panorama_coords(
    spec: ViewSpec, pano_width: int, pano_height: int, vfov_deg: float
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every panorama pixel centre: view (u, v) of its ray and whether the view sees it; each
    (pano_height, pano_width)."""
    uu, vv = _pixel_centres(pano_width, pano_height)
    rays = panorama_pixel_to_ray(uu, vv, pano_width, pano_height, vfov_deg)
    return _read_only(ray_to_view_pixel(rays, spec))


def _read_only(arrays):
    for a in arrays:
        a.setflags(write=False)
    return arrays


# ---------------------------------------------------------------------------------------------
# map sampling (torch)


def _check_maps(maps: torch.Tensor, what: str) -> None:
    if not isinstance(maps, torch.Tensor) or maps.dim() != 3:
        shape = tuple(maps.shape) if hasattr(maps, "shape") else type(maps).__name__
        raise ValueError(f"{what}: expected a (C, H, W) tensor, got {shape}")


def _mode_check(mode: str, maps: torch.Tensor, what: str) -> None:
    if mode not in ("bilinear", "nearest"):
        raise ValueError(f"{what}: mode must be 'bilinear' or 'nearest', got {mode!r}")
    if mode == "bilinear" and not maps.is_floating_point():
        raise ValueError(f"{what}: bilinear sampling needs floating-point maps, got {maps.dtype}")


def _gather_nearest(maps: torch.Tensor, cols: np.ndarray, rows: np.ndarray) -> torch.Tensor:
    """maps[:, rows, cols] for integer index grids (any shape) of in-range pixels."""
    flat = torch.as_tensor(rows * maps.shape[-1] + cols, dtype=torch.int64, device=maps.device)
    return maps.flatten(1)[:, flat.flatten()].reshape(maps.shape[0], *rows.shape)


def sample_view(
    panorama: torch.Tensor,
    spec: ViewSpec,
    vfov_deg: float,
    mode: str = "bilinear",
    fill: float = 0.0,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """The perspective view ``spec`` of a (C, H, W) panorama.

    The panorama wraps around the seam (bilinear samples between column W-1 and column 0 blend
    the two). View pixels whose rays leave the panorama's vertical band get ``fill``.
    Returns the (C, spec.height, spec.width) view (the panorama's dtype) and its (height, width)
    bool validity mask.
    """
    _check_maps(panorama, "sample_view")
    _mode_check(mode, panorama, "sample_view")
    c, h, w = panorama.shape
    u, v, inside = panorama_to_view_coords(spec, w, h, float(vfov_deg))
    valid = torch.tensor(inside, device=panorama.device)  # a copy: the cached grid is read-only
    if mode == "nearest":
        cols = np.floor(u).astype(np.int64) % w
        rows = np.clip(np.floor(v).astype(np.int64), 0, h - 1)
        view = _gather_nearest(panorama, cols, rows)
    else:
        # One column copied from each opposite side makes bilinear sampling seam-aware.
        padded = torch.cat([panorama[:, :, -1:], panorama, panorama[:, :, :1]], dim=2)
        grid = np.stack([2.0 * (u + 1.0) / (w + 2) - 1.0, 2.0 * v / h - 1.0], axis=-1)
        grid = torch.as_tensor(grid, dtype=panorama.dtype, device=panorama.device)[None]
        view = F.grid_sample(
            padded[None], grid, mode="bilinear", padding_mode="border", align_corners=False
        )[0]
    view = view.masked_fill(~valid, fill) if fill is not None else view
    return view, valid


@functools.lru_cache(maxsize=64)
def _back_projection_tables(spec: ViewSpec, pano_width: int, pano_height: int, vfov_deg: float):
    """Flat indices of the panorama pixels the view sees, the flat index of the view pixel holding
    each one's ray (nearest) and its normalised grid_sample point (bilinear)."""
    u, v, inside = view_to_panorama_coords(spec, pano_width, pano_height, vfov_deg)
    u, v = u[inside], v[inside]
    cols = np.clip(np.floor(u).astype(np.int64), 0, spec.width - 1)
    rows = np.clip(np.floor(v).astype(np.int64), 0, spec.height - 1)
    grid = np.stack([2.0 * u / spec.width - 1.0, 2.0 * v / spec.height - 1.0], axis=-1)
    return _read_only((np.flatnonzero(inside), rows * spec.width + cols, grid))


def view_to_panorama_pixels(
    view_maps: torch.Tensor,
    spec: ViewSpec,
    pano_width: int,
    pano_height: int,
    vfov_deg: float,
    mode: str = "bilinear",
) -> Tuple[torch.Tensor, torch.Tensor]:
    """The sparse form of ``view_to_panorama``: (C, P) values at the P panorama pixels the view
    sees and their (P,) int64 flat indices (row-major, ascending). A view covers a small part of
    the panorama, so merging on these pixels only is several times cheaper than on dense maps."""
    _check_maps(view_maps, "view_to_panorama")
    _mode_check(mode, view_maps, "view_to_panorama")
    if tuple(view_maps.shape[1:]) != (spec.height, spec.width):
        raise ValueError(
            f"view_to_panorama: maps of size {tuple(view_maps.shape[1:])} do not match the view "
            f"{spec.height}x{spec.width} (height x width)"
        )
    pixels, nearest, grid = _back_projection_tables(
        spec, int(pano_width), int(pano_height), float(vfov_deg)
    )
    device = view_maps.device
    if mode == "nearest":
        values = view_maps.flatten(1)[:, torch.tensor(nearest, device=device)]
    else:
        grid = torch.tensor(grid, dtype=view_maps.dtype, device=device)[None, None]
        values = F.grid_sample(
            view_maps[None], grid, mode="bilinear", padding_mode="border", align_corners=False
        )[0, :, 0]
    return values, torch.tensor(pixels, device=device)


def view_to_panorama(
    view_maps: torch.Tensor,
    spec: ViewSpec,
    pano_width: int,
    pano_height: int,
    vfov_deg: float,
    mode: str = "bilinear",
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Projects (C, spec.height, spec.width) maps of a view back onto the panorama grid.

    Each panorama pixel takes the view's value at its ray (bilinear: probabilities; nearest: the
    view pixel holding the ray, for masks of any dtype). Returns (C, pano_height, pano_width) maps
    of the input dtype, zero (False) where the view does not see the pixel, and that validity
    mask (pano_height, pano_width) bool: only the part of a view mask inside the view comes back.
    """
    values, pixels = view_to_panorama_pixels(
        view_maps, spec, pano_width, pano_height, vfov_deg, mode
    )
    c, size = view_maps.shape[0], int(pano_width) * int(pano_height)
    out = torch.zeros(c, size, dtype=view_maps.dtype, device=view_maps.device)
    out[:, pixels] = values
    valid = torch.zeros(size, dtype=torch.bool, device=view_maps.device)
    valid[pixels] = True
    return out.reshape(c, int(pano_height), int(pano_width)), valid.reshape(
        int(pano_height), int(pano_width)
    )
