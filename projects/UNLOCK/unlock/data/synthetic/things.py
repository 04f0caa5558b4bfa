"""Class-typical thing models built from a few primitives (K2B thing trainIds 11..17).

Sizes follow common vehicle/person dimensions (car ~4.2x1.8x1.5 m, pedestrian ~0.6x0.6x1.75 m,
...). Every model is described in its own frame (x = heading, y = left, z = up, origin on the
ground at the footprint centre) and placed with a yaw; the footprint radius drives the
non-overlap test of the scene sampler.
"""

import math
from typing import Callable, Dict, Tuple

import numpy as np

from .primitives import PrimitiveBuilder

__all__ = ["THING_MODELS", "THING_FOOTPRINT", "add_thing"]

# (length, width) of each class at scale 1; used for the footprint radius.
THING_FOOTPRINT: Dict[int, Tuple[float, float]] = {
    11: (0.6, 0.6),
    12: (1.8, 0.6),
    13: (4.2, 1.8),
    14: (8.0, 2.5),
    15: (11.0, 2.55),
    16: (5.0, 2.0),
    17: (1.9, 0.7),
}

_VEHICLE_PAINT = [
    (0.75, 0.75, 0.78),
    (0.1, 0.1, 0.12),
    (0.6, 0.08, 0.08),
    (0.12, 0.2, 0.5),
    (0.85, 0.85, 0.8),
    (0.35, 0.37, 0.4),
    (0.5, 0.45, 0.3),
    (0.15, 0.35, 0.2),
]
_CLOTHES = [(0.1, 0.1, 0.3), (0.5, 0.1, 0.1), (0.2, 0.2, 0.2), (0.7, 0.6, 0.4), (0.1, 0.3, 0.2)]
_SKIN = [(0.85, 0.65, 0.5), (0.55, 0.38, 0.25), (0.35, 0.22, 0.15)]
_TYRE = (0.05, 0.05, 0.05)
_GLASS = (0.15, 0.2, 0.25)


class _Placer:
    """Adds primitives of one thing, mapping local offsets to world coordinates."""

    def __init__(self, b: PrimitiveBuilder, x, y, yaw, s, label, thing):
        self.b, self.x, self.y, self.yaw, self.s = b, x, y, yaw, s
        self.label, self.thing = label, thing
        self.c, self.sn = math.cos(yaw), math.sin(yaw)

    def _xy(self, ox, oy):
        ox, oy = ox * self.s, oy * self.s
        return self.x + self.c * ox - self.sn * oy, self.y + self.sn * ox + self.c * oy

    def box(self, ox, oy, z0, z1, length, width, color, material="vehicle"):
        x, y = self._xy(ox, oy)
        s = self.s
        self.b.box(
            (x, y, 0.5 * (z0 + z1) * s),
            (length * s, width * s, (z1 - z0) * s),
            self.label,
            color,
            yaw=self.yaw,
            thing=self.thing,
            material=material,
        )

    def sphere(self, ox, oy, z, r, color, material="skin"):
        x, y = self._xy(ox, oy)
        self.b.sphere((x, y, z * self.s), r * self.s, self.label, color, self.thing, material)

    def wheels(self, length, width, radius, inset=0.18):
        for sx in (-1, 1):
            for sy in (-1, 1):
                ox = sx * (0.5 * length - radius - inset)
                self.box(ox, sy * (0.5 * width - 0.13), 0.0, 2 * radius, 2 * radius, 0.26, _TYRE)


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def _person(p: _Placer, rng, with_legs=True):
    cloth = _pick(rng, _CLOTHES)
    if with_legs:
        p.box(0.0, 0.0, 0.0, 0.85, 0.25, 0.38, _pick(rng, _CLOTHES), "plain")
    p.box(0.0, 0.0, 0.85, 1.48, 0.3, 0.5, cloth, "plain")
    p.sphere(0.0, 0.0, 1.61, 0.12, _pick(rng, _SKIN))


def _cyclist(p: _Placer, rng):
    frame = _pick(rng, _VEHICLE_PAINT)
    for ox in (-0.55, 0.55):
        p.box(ox, 0.0, 0.0, 0.66, 0.66, 0.06, _TYRE)
    p.box(0.0, 0.0, 0.45, 0.85, 1.0, 0.08, frame)
    p.box(-0.1, 0.0, 0.55, 1.0, 0.3, 0.32, _pick(rng, _CLOTHES), "plain")
    p.box(0.0, 0.0, 1.0, 1.55, 0.32, 0.45, _pick(rng, _CLOTHES), "plain")
    p.sphere(0.05, 0.0, 1.68, 0.12, _pick(rng, _SKIN))


def _car(p: _Placer, rng):
    paint = _pick(rng, _VEHICLE_PAINT)
    p.box(0.0, 0.0, 0.3, 0.95, 4.2, 1.8, paint)
    p.box(-0.25, 0.0, 0.95, 1.5, 2.3, 1.6, _GLASS)
    p.wheels(4.2, 1.8, 0.32)


def _truck(p: _Placer, rng):
    p.box(2.9, 0.0, 0.5, 3.0, 2.2, 2.4, _pick(rng, _VEHICLE_PAINT))
    p.box(-1.1, 0.0, 0.9, 3.6, 5.8, 2.5, _pick(rng, [(0.8, 0.8, 0.8), (0.6, 0.5, 0.3)]))
    p.wheels(8.0, 2.4, 0.5)


def _bus(p: _Placer, rng):
    paint = _pick(rng, [(0.8, 0.7, 0.1), (0.7, 0.1, 0.1), (0.85, 0.85, 0.85), (0.2, 0.4, 0.7)])
    p.box(0.0, 0.0, 0.35, 3.1, 11.0, 2.55, paint)
    p.box(0.0, 0.0, 1.3, 2.5, 10.4, 2.6, _GLASS)
    p.wheels(11.0, 2.5, 0.5, inset=1.2)


def _van(p: _Placer, rng):
    paint = _pick(rng, _VEHICLE_PAINT)
    p.box(-0.4, 0.0, 0.35, 2.35, 4.2, 2.0, paint)
    p.box(2.0, 0.0, 0.35, 1.1, 0.8, 1.9, paint)
    p.wheels(5.0, 1.9, 0.35)


def _two_wheeler(p: _Placer, rng):
    paint = _pick(rng, _VEHICLE_PAINT)
    for ox in (-0.65, 0.65):
        p.box(ox, 0.0, 0.0, 0.6, 0.6, 0.12, _TYRE)
    p.box(0.0, 0.0, 0.35, 0.85, 1.3, 0.35, paint)
    p.box(0.55, 0.0, 0.85, 1.1, 0.08, 0.7, _TYRE)


THING_MODELS: Dict[int, Callable] = {
    11: _person,
    12: _cyclist,
    13: _car,
    14: _truck,
    15: _bus,
    16: _van,
    17: _two_wheeler,
}


def add_thing(
    b: PrimitiveBuilder,
    label: int,
    x: float,
    y: float,
    yaw: float,
    scale: float,
    thing: int,
    rng: np.random.Generator,
) -> None:
    """Adds the primitives of one thing of class ``label`` (trainId 11..17) standing at (x, y)."""
    THING_MODELS[label](_Placer(b, x, y, yaw, scale, label, thing), rng)
