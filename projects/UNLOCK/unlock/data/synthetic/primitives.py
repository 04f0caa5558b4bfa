"""Primitive soup of a synthetic scene: oriented boxes, vertical cylinders and spheres.

All primitives share one array layout so that the renderer can cull and intersect them by kind in
a few vectorised calls: ``center`` (P, 3), ``size`` (P, 3) = box half extents / cylinder
(radius, radius, half height) / sphere (r, r, r), ``yaw`` (P,) about +z (boxes only), ``label``
(P,) trainId, ``thing`` (P,) index into ``Scene.things`` or -1 for stuff, ``color`` (P, 3) in
[0, 1] and ``material`` (P,) (see MATERIALS).
"""

from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np

__all__ = ["BOX", "CYLINDER", "SPHERE", "MATERIALS", "PrimitiveBuilder", "Primitives", "Ground"]

BOX, CYLINDER, SPHERE = 0, 1, 2
# Material ids steer the procedural texture in appearance.py.
MATERIALS = {"plain": 0, "facade": 1, "foliage": 2, "vehicle": 3, "skin": 4}


@dataclass
class Primitives:
    kind: np.ndarray
    center: np.ndarray
    size: np.ndarray
    yaw: np.ndarray
    label: np.ndarray
    thing: np.ndarray
    color: np.ndarray
    material: np.ndarray

    def __len__(self) -> int:
        return int(self.kind.shape[0])

    def bounding_radius(self) -> np.ndarray:
        """(P,) radius of a sphere around ``center`` that contains each primitive."""
        r = np.linalg.norm(self.size, axis=1)
        cyl = self.kind == CYLINDER
        r[cyl] = np.hypot(self.size[cyl, 0], self.size[cyl, 2])
        sph = self.kind == SPHERE
        r[sph] = self.size[sph, 0]
        return r

    def subset(self, keep: np.ndarray) -> "Primitives":
        return Primitives(**{k: v[keep] for k, v in self.__dict__.items()})


class PrimitiveBuilder:
    """Collects primitives as Python rows and packs them into a :class:`Primitives`."""

    def __init__(self):
        self.rows: List[tuple] = []

    def box(self, center, size, label, color, yaw=0.0, thing=-1, material="plain"):
        """Adds a box with full extents ``size`` = (length along yaw, width, height)."""
        half = tuple(0.5 * s for s in size)
        self.rows.append((BOX, center, half, yaw, label, thing, color, MATERIALS[material]))

    def cylinder(self, x, y, z0, z1, radius, label, color, thing=-1, material="plain"):
        """Adds a vertical cylinder from height ``z0`` to ``z1`` at (x, y)."""
        center = (x, y, 0.5 * (z0 + z1))
        size = (radius, radius, 0.5 * (z1 - z0))
        self.rows.append((CYLINDER, center, size, 0.0, label, thing, color, MATERIALS[material]))

    def sphere(self, center, radius, label, color, thing=-1, material="plain"):
        size = (radius, radius, radius)
        self.rows.append((SPHERE, center, size, 0.0, label, thing, color, MATERIALS[material]))

    def build(self) -> Primitives:
        n = len(self.rows)
        cols = list(zip(*self.rows)) if n else [[]] * 8

        def arr(i, dtype, shape):
            return np.asarray(cols[i], dtype=dtype).reshape(shape)

        return Primitives(
            kind=arr(0, np.int64, (n,)),
            center=arr(1, np.float64, (n, 3)),
            size=arr(2, np.float64, (n, 3)),
            yaw=arr(3, np.float64, (n,)),
            label=arr(4, np.int64, (n,)),
            thing=arr(5, np.int64, (n,)),
            color=arr(6, np.float64, (n, 3)),
            material=arr(7, np.int64, (n,)),
        )


@dataclass
class Ground:
    """The ground plane z = 0, labelled by the lateral offset from the street axis y = ``y0``:
    road for |y - y0| <= road_half, then sidewalk, then terrain up to the building line."""

    y0: float
    road_half: float
    sidewalk: float
    colors: Dict[int, tuple] = field(default_factory=dict)
    lane_markings: bool = True

    def labels(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """trainId (0 road, 1 sidewalk, 9 terrain) of ground points at (x, y)."""
        off = np.abs(y - self.y0)
        lab = np.full(off.shape, 9, dtype=np.int64)
        lab[off <= self.road_half + self.sidewalk] = 1
        lab[off <= self.road_half] = 0
        return lab

    def paint(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Bool mask of road points covered by white lane paint (dashed centre line, edge lines)."""
        if not self.lane_markings:
            return np.zeros(x.shape, dtype=bool)
        off = y - self.y0
        centre = (np.abs(off) < 0.08) & (np.mod(x, 9.0) < 4.0)
        edge = np.abs(np.abs(off) - (self.road_half - 0.3)) < 0.07
        return centre | edge
