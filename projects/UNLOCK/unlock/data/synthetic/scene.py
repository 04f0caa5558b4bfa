"""Procedural 3D street scenes: road, sidewalks, terrain, buildings, walls, fences, poles with
traffic lights and signs, trees, and things of the 7 K2B classes standing on the ground.

The street runs along the world x axis; the camera stands on the road at (0, 0, h). Things are
placed with a footprint non-overlap test, so they never intersect in 3D but do occlude each other
(and are occluded by poles and trees) in the image, which is what makes amodal labels non-trivial.
"""

import math
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np

from .domain import DomainParams
from .primitives import Ground, PrimitiveBuilder, Primitives
from .things import THING_FOOTPRINT, add_thing

__all__ = ["Scene", "sample_scene", "THING_CLASS_WEIGHTS"]

# Relative frequency of each thing class (trainId -> weight); cars dominate as in KITTI-360.
THING_CLASS_WEIGHTS = {11: 0.25, 12: 0.08, 13: 0.35, 14: 0.05, 15: 0.04, 16: 0.12, 17: 0.11}
_BUILDING_COLORS = [
    (0.72, 0.66, 0.55),
    (0.55, 0.3, 0.22),
    (0.6, 0.6, 0.62),
    (0.85, 0.83, 0.78),
    (0.45, 0.42, 0.4),
    (0.7, 0.55, 0.4),
]
_KEEP_CLEAR = 2.5  # metres of free ground around the camera (no thing stands on the car)


@dataclass
class Scene:
    """A sampled scene.

    Attributes:
        prims: all stuff and thing primitives (see primitives.Primitives).
        ground: labelling and colours of the ground plane z = 0.
        things: trainId of each thing; ``prims.thing`` indexes this list.
        style: per-scene appearance draws (sun direction, sky colours, ...), see appearance.py.
        domain: the DomainParams the scene was sampled with.
    """

    prims: Primitives
    ground: Ground
    things: List[int]
    style: Dict = field(default_factory=dict)
    domain: DomainParams = None

    def without_things(self, drop: List[int]) -> "Scene":
        """Copy with the things in ``drop`` removed (remaining things keep their indices)."""
        keep = ~np.isin(self.prims.thing, np.asarray(drop, dtype=np.int64))
        return Scene(self.prims.subset(keep), self.ground, self.things, self.style, self.domain)


def _aabb(x, y, yaw, length, width, margin=0.0) -> Tuple[float, float, float, float]:
    c, s = abs(math.cos(yaw)), abs(math.sin(yaw))
    hx = 0.5 * (length * c + width * s) + margin
    hy = 0.5 * (length * s + width * c) + margin
    return (x - hx, x + hx, y - hy, y + hy)


def _overlaps(box, boxes) -> bool:
    return any(box[0] < b[1] and b[0] < box[1] and box[2] < b[3] and b[2] < box[3] for b in boxes)


def _jitter(rng, color, amount=0.06):
    return tuple(float(np.clip(c + rng.uniform(-amount, amount), 0.0, 1.0)) for c in color)


def _street_side(b, rng, side, y0, road_half, sidewalk, x_range, footprints):
    """Buildings, walls, fences, poles and trees along one side (side = +1 left, -1 right)."""
    terrain = rng.uniform(1.5, 4.0) if rng.random() < 0.5 else 0.0
    kerb = y0 + side * road_half
    inner = y0 + side * (road_half + sidewalk)  # sidewalk / terrain boundary
    facade = y0 + side * (road_half + sidewalk + terrain)
    x = x_range[0] + rng.uniform(-8.0, 0.0)
    while x < x_range[1]:
        width = rng.uniform(6.0, 22.0)
        cx = x + width / 2
        r = rng.random()
        if r < 0.72:
            depth, height = rng.uniform(8.0, 16.0), rng.uniform(5.0, 25.0)
            cy = facade + side * (depth / 2 + rng.uniform(0.0, 1.5))
            color = _jitter(rng, _BUILDING_COLORS[int(rng.integers(len(_BUILDING_COLORS)))])
            b.box((cx, cy, height / 2), (width, depth, height), 2, color, material="facade")
        elif r < 0.84:
            h = rng.uniform(1.0, 2.6)
            b.box(
                (cx, facade + side * 0.2, h / 2), (width, 0.3, h), 3, _jitter(rng, (0.6, 0.58, 0.5))
            )
        elif r < 0.92:
            h = rng.uniform(1.6, 3.0)
            b.box(
                (cx, facade + side * 0.6, h / 2),
                (width, 1.2, h),
                8,
                _jitter(rng, (0.2, 0.4, 0.15)),
                material="foliage",
            )
        x += width + rng.uniform(0.0, 2.5)
    if terrain > 0 and rng.random() < 0.6:  # fence between sidewalk and terrain, with gaps
        x = x_range[0]
        while x < x_range[1]:
            length = rng.uniform(5.0, 20.0)
            if rng.random() < 0.6:
                h = rng.uniform(0.9, 1.6)
                b.box(
                    (x + length / 2, inner + side * 0.1, h / 2),
                    (length, 0.08, h),
                    4,
                    _jitter(rng, (0.5, 0.45, 0.4)),
                )
            x += length + rng.uniform(1.0, 8.0)
    x = x_range[0] + rng.uniform(0.0, 15.0)
    while x < x_range[1]:  # poles at the kerb with traffic lights / signs
        py = kerb + side * 0.45
        if abs(x) > 2.0 or abs(py) > 2.0:
            top = rng.uniform(3.5, 7.0)
            b.cylinder(x, py, 0.0, top, rng.uniform(0.07, 0.14), 5, (0.45, 0.45, 0.47))
            kind = rng.random()
            if kind < 0.3:
                b.box((x, py, top + 0.45), (0.35, 0.35, 0.9), 6, (0.12, 0.12, 0.1))
            elif kind < 0.65:
                z = rng.uniform(2.2, min(3.2, top - 0.4))
                b.box((x, py, z), (0.05, 0.65, 0.65), 7, _jitter(rng, (0.85, 0.85, 0.2), 0.1))
            footprints.append(_aabb(x, py, 0.0, 0.4, 0.4))
        x += rng.uniform(12.0, 35.0)
    tree_y = (inner + facade) / 2 if terrain > 0 else inner - side * 0.6
    x = x_range[0] + rng.uniform(0.0, 10.0)
    while x < x_range[1]:
        if rng.random() < 0.6 and (abs(x) > 3.0 or abs(tree_y) > 3.0):
            trunk_top, crown = rng.uniform(1.8, 3.2), rng.uniform(1.0, 2.6)
            green = _jitter(rng, (0.25, 0.45, 0.15))
            b.cylinder(x, tree_y, 0.0, trunk_top, rng.uniform(0.12, 0.25), 8, (0.35, 0.25, 0.15))
            b.sphere((x, tree_y, trunk_top + 0.7 * crown), crown, 8, green, material="foliage")
            footprints.append(_aabb(x, tree_y, 0.0, 0.6, 0.6))
        x += rng.uniform(7.0, 20.0)
    return facade


def _place_thing(rng, label, y0, road_half, sidewalk, x_lo, x_hi):
    """Samples (x, y, yaw) of a thing of class ``label`` on its typical ground region."""
    side = 1 if rng.random() < 0.5 else -1
    length, width = THING_FOOTPRINT[label]
    x = rng.uniform(x_lo, x_hi)
    along = 0.0 if rng.random() < 0.5 else math.pi
    if label in (13, 14, 15, 16):
        if label in (13, 16) and rng.random() < 0.4:  # parked at the kerb
            return x, y0 + side * (road_half - width / 2 - 0.25), along + rng.normal(0, 0.03)
        lane = rng.uniform(width / 2 + 0.3, max(width / 2 + 0.3, road_half - width / 2 - 0.3))
        return x, y0 + side * lane, along + rng.normal(0, 0.04)
    if label == 12:
        return x, y0 + side * (road_half - rng.uniform(0.6, 1.4)), along + rng.normal(0, 0.1)
    if label == 11 and rng.random() < 0.15:  # crossing the road
        return x, y0 + rng.uniform(-road_half, road_half), side * math.pi / 2 + rng.normal(0, 0.2)
    off = road_half + rng.uniform(0.4, max(0.5, sidewalk - 0.4))
    yaw = rng.uniform(-math.pi, math.pi) if label == 11 else along + rng.normal(0, 0.3)
    return x, y0 + side * off, yaw


def sample_scene(rng: np.random.Generator, domain: DomainParams) -> Scene:
    """Samples one street scene for ``domain`` (its projection decides where things are put:
    in front of a pinhole camera, all around a panorama).

    Args:
        rng: the image's random generator (all randomness of the scene comes from it).
        domain: source or target parameters (see domain.make_domain).
    Returns:
        the Scene.
    """
    b = PrimitiveBuilder()
    pinhole = domain.projection == "pinhole"
    x_range = (-10.0, 130.0) if pinhole else (-110.0, 110.0)
    road_half = rng.uniform(3.5, 7.5)
    y0 = rng.uniform(-(road_half - 1.5), road_half - 1.5)  # camera somewhere on the road
    sidewalk = rng.uniform(1.5, 4.0)
    footprints: List[Tuple[float, float, float, float]] = []
    for side in (1, -1):
        _street_side(b, rng, side, y0, road_half, sidewalk, x_range, footprints)

    labels = np.array(sorted(THING_CLASS_WEIGHTS))
    weights = np.array([THING_CLASS_WEIGHTS[k] for k in labels])
    n_wanted = int(rng.poisson(domain.num_things))
    things: List[int] = []
    reach = domain.thing_max_distance
    x_lo, x_hi = (3.0, reach) if pinhole else (-reach, reach)
    for _ in range(4 * n_wanted):
        if len(things) >= n_wanted:
            break
        label = int(rng.choice(labels, p=weights / weights.sum()))
        x, y, yaw = _place_thing(rng, label, y0, road_half, sidewalk, x_lo, x_hi)
        scale = float(np.exp(rng.normal(math.log(domain.thing_scale_mean), domain.thing_scale_std)))
        length, width = (scale * v for v in THING_FOOTPRINT[label])
        box = _aabb(x, y, yaw, length, width, margin=0.25)
        clear = math.hypot(x, y) - 0.5 * math.hypot(length, width)
        # 52° = half the KITTI-360 horizontal field of view: keep source things inside the view.
        if clear < _KEEP_CLEAR or _overlaps(box, footprints):
            continue
        if pinhole and abs(math.degrees(math.atan2(y, x))) > 52.0:
            continue
        footprints.append(box)
        add_thing(b, label, x, y, yaw, scale, len(things), rng)
        things.append(label)

    ground_colors = {
        0: _jitter(rng, (0.28, 0.28, 0.3), 0.04),
        1: _jitter(rng, (0.6, 0.57, 0.54), 0.05),
        9: _jitter(rng, (0.4, 0.5, 0.25), 0.06),
    }
    ground = Ground(y0=y0, road_half=road_half, sidewalk=sidewalk, colors=ground_colors)
    sun_el = math.radians(float(np.clip(domain.sun_elevation_deg + rng.normal(0, 8), 5, 85)))
    sun_az = math.radians(domain.sun_azimuth_deg + rng.normal(0, 25))
    style = {
        "sun": [
            math.cos(sun_el) * math.cos(sun_az),
            math.cos(sun_el) * math.sin(sun_az),
            math.sin(sun_el),
        ],
        "exposure": float(rng.uniform(0.9, 1.1)),
        "sky_horizon": _jitter(rng, (0.78, 0.85, 0.92), 0.05),
        "sky_zenith": _jitter(rng, (0.35, 0.55, 0.85), 0.05),
        # Sensor noise is drawn from its own stream so render_scene stays a pure function.
        "noise_seed": int(rng.integers(2**31)),
    }
    return Scene(prims=b.build(), ground=ground, things=things, style=style, domain=domain)
