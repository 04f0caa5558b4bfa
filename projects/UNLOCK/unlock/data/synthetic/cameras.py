"""Camera models of the synthetic benchmark: a pinhole camera (source, KITTI-360-APS-like) and an
equirectangular 360° camera (target, BlendPASS-like).

World frame: x forward along the street, y to the left, z up (metres). Every camera sits at
``(0, 0, height)`` and casts one ray through each pixel centre; the ray directions are unit vectors
in row-major pixel order, so ``dirs.reshape(H, W, 3)`` lines up with the image.
"""

import math
from dataclasses import dataclass
from typing import Tuple

import numpy as np

__all__ = ["PinholeCamera", "EquirectCamera", "rotation_yaw_pitch"]

# KITTI-360 perspective camera (paper Sec. 4.1: 1408x376 pinhole images); its rectified focal
# length is about 552 px, i.e. a ~104° horizontal field of view.
KITTI360_SIZE = (1408, 376)
KITTI360_FOCAL = 552.0
# BlendPASS panoramas (paper Sec. 4.1: 2048x400) cover 360° horizontally; 400 rows of the same
# angular pitch as the 2048 columns span 400/2048*360 ≈ 70°, i.e. about ±35° around the horizon.
BLENDPASS_SIZE = (2048, 400)
BLENDPASS_VFOV_DEG = 70.3125


def rotation_yaw_pitch(yaw: float, pitch: float) -> np.ndarray:
    """(3, 3) rotation that turns a camera looking along +x by ``pitch`` (up positive, radians,
    about the camera's left axis) and then by ``yaw`` (left positive, about +z)."""
    cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    r_yaw = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    # Positive pitch lifts the optical axis (+x) towards +z.
    r_pitch = np.array([[cp, 0.0, -sp], [0.0, 1.0, 0.0], [sp, 0.0, cp]])
    return r_yaw @ r_pitch


@dataclass(frozen=True)
class PinholeCamera:
    """Ideal pinhole camera (no distortion).

    Attributes:
        width, height: image size in pixels.
        focal: focal length in pixels (square pixels); principal point at the image centre.
        cam_height: height of the optical centre above the ground (m).
        yaw, pitch: viewing direction (radians); 0, 0 looks along +x.
    """

    width: int
    height: int
    focal: float
    cam_height: float = 1.55
    yaw: float = 0.0
    pitch: float = 0.0

    kind = "pinhole"

    @classmethod
    def kitti360(cls, scale: float = 0.25, **kwargs) -> "PinholeCamera":
        """KITTI-360-APS geometry (1408x376, f≈552 px) scaled by ``scale``."""
        w, h = (max(8, int(round(s * scale))) for s in KITTI360_SIZE)
        return cls(width=w, height=h, focal=KITTI360_FOCAL * w / KITTI360_SIZE[0], **kwargs)

    @property
    def origin(self) -> np.ndarray:
        return np.array([0.0, 0.0, self.cam_height])

    def rays(self) -> Tuple[np.ndarray, np.ndarray]:
        """Returns ``origin`` (3,) and unit ``dirs`` (H*W, 3) through the pixel centres."""
        u = np.arange(self.width) + 0.5 - self.width / 2.0
        v = np.arange(self.height) + 0.5 - self.height / 2.0
        uu, vv = np.meshgrid(u, v)
        # Image right = world -y, image down = world -z for a camera looking along +x.
        d = np.stack([np.full_like(uu, self.focal), -uu, -vv], axis=-1).reshape(-1, 3)
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        return self.origin, d @ rotation_yaw_pitch(self.yaw, self.pitch).T


@dataclass(frozen=True)
class EquirectCamera:
    """Equirectangular panorama: column -> azimuth over the full 360°, row -> elevation.

    The centre column looks along the camera yaw; moving right in the image turns right (towards
    -y), so straight 3D lines that are not vertical bend into sinusoids, as in real panoramas.
    Each row spans ``vfov_deg / height`` degrees, elevation +vfov/2 at the top edge, so with
    pitch 0 the horizon lies exactly on the boundary between rows ``H/2 - 1`` and ``H/2``.

    Attributes:
        width, height: image size in pixels.
        vfov_deg: vertical field of view (degrees), centred on the horizon.
        cam_height: optical centre height above ground (m).
        yaw, pitch: orientation (radians).
    """

    width: int
    height: int
    vfov_deg: float = BLENDPASS_VFOV_DEG
    cam_height: float = 1.8
    yaw: float = 0.0
    pitch: float = 0.0

    kind = "panorama"

    @classmethod
    def blendpass(cls, scale: float = 0.25, **kwargs) -> "EquirectCamera":
        """BlendPASS geometry (2048x400, 360° x ~70°) scaled by ``scale``."""
        w, h = (max(8, int(round(s * scale))) for s in BLENDPASS_SIZE)
        return cls(width=w, height=h, **kwargs)

    @property
    def origin(self) -> np.ndarray:
        return np.array([0.0, 0.0, self.cam_height])

    def angles(self) -> Tuple[np.ndarray, np.ndarray]:
        """Azimuth (W,) and elevation (H,) of the pixel centres in the camera frame (radians)."""
        azimuth = -((np.arange(self.width) + 0.5) / self.width - 0.5) * 2.0 * math.pi
        half = math.radians(self.vfov_deg) / 2.0
        elevation = half - (np.arange(self.height) + 0.5) / self.height * 2.0 * half
        return azimuth, elevation

    def rays(self) -> Tuple[np.ndarray, np.ndarray]:
        """Returns ``origin`` (3,) and unit ``dirs`` (H*W, 3) through the pixel centres."""
        az, el = self.angles()
        aa, ee = np.meshgrid(az, el)
        d = np.stack(
            [np.cos(ee) * np.cos(aa), np.cos(ee) * np.sin(aa), np.sin(ee)], axis=-1
        ).reshape(-1, 3)
        return self.origin, d @ rotation_yaw_pitch(self.yaw, self.pitch).T
