"""Domain parameters of the synthetic benchmark and the controllable pinhole -> panorama gap.

The source domain is fixed; the target domain moves away from it by ``gap`` (0 = same appearance
and scene statistics, only the projection differs; 1 = the strongest shift we generate). Each
knob scales one factor of the gap, so e.g. ``GapKnobs(appearance=0)`` isolates the geometric gap.
The default gap 0.5 is moderate on purpose: a source-only model must degrade on the target, but
the target must stay learnable so that source-free adaptation has something to recover (the
setting of paper Sec. 4.1, where source-only K2B numbers are far below the oracle).
"""

from dataclasses import asdict, dataclass, field
from typing import Dict

__all__ = ["GapKnobs", "DomainParams", "make_domain"]


@dataclass(frozen=True)
class GapKnobs:
    """Multipliers (>= 0) of the individual gap factors; the effective shift is ``gap * knob``."""

    # Appearance: hue/saturation shift of every material colour.
    palette: float = 1.0
    # Appearance: sun direction, ambient level and colour temperature.
    lighting: float = 1.0
    # Appearance: amplitude of the world-space texture noise.
    texture: float = 1.0
    # Appearance: sensor noise and blur.
    sensor: float = 1.0
    # Geometry: more things per scene in the target (BlendPASS is denser than KITTI-360).
    density: float = 1.0
    # Geometry: object scale distribution (mean and spread).
    scale: float = 1.0
    # Geometry: camera mounting height.
    camera_height: float = 1.0


@dataclass(frozen=True)
class DomainParams:
    """Everything that differs between the two domains; all values are plain numbers."""

    name: str
    projection: str  # "pinhole" | "panorama"
    cam_height: float
    cam_height_jitter: float
    num_things: float  # mean number of thing placement attempts in the camera's view
    thing_scale_mean: float  # multiplicative, lognormal mean of object size
    thing_scale_std: float
    thing_max_distance: float  # metres along the street (ahead of a pinhole camera, both ways on a panorama)
    hue_shift: float  # turns of the hue circle
    saturation: float  # multiplier
    sun_elevation_deg: float
    sun_azimuth_deg: float
    ambient: float
    white_balance: tuple  # RGB gains
    texture_amp: float
    noise_sigma: float  # in 0..255 units
    blur_sigma: float  # Gaussian blur sigma in output pixels
    fog_distance: float  # metres
    extras: Dict = field(default_factory=dict)

    def to_dict(self) -> Dict:
        return asdict(self)


def _clip01(x: float) -> float:
    return min(max(float(x), 0.0), 1.0)


def make_domain(domain: str, gap: float = 0.5, knobs: GapKnobs = GapKnobs()) -> DomainParams:
    """Returns the parameters of ``domain`` ("source" or "target") for a gap strength in [0, 1].

    Args:
        domain: "source" (pinhole, fixed) or "target" (equirectangular, shifted by ``gap``).
        gap: overall domain-gap strength in [0, 1].
        knobs: per-factor multipliers of the gap.
    """
    if domain not in ("source", "target"):
        raise ValueError(f"domain must be 'source' or 'target', got {domain!r}")
    if not 0.0 <= gap <= 1.0:
        raise ValueError(f"gap must lie in [0, 1], got {gap}")
    source = DomainParams(
        name="source",
        projection="pinhole",
        cam_height=1.55,  # KITTI-360 perspective cameras are mounted at ~1.55 m
        cam_height_jitter=0.05,
        num_things=9.0,
        thing_scale_mean=1.0,
        thing_scale_std=0.05,
        # 20 m at scale 0.25 gives things the pixel sizes that things within ~80 m have at full
        # resolution; at 50 m most were specks under 100 px (docs/results.md, benchmark design).
        thing_max_distance=20.0,
        hue_shift=0.0,
        saturation=1.0,
        sun_elevation_deg=45.0,
        sun_azimuth_deg=30.0,
        ambient=0.45,
        white_balance=(1.0, 1.0, 1.0),
        texture_amp=0.06,
        noise_sigma=1.5,
        blur_sigma=0.0,
        fog_distance=180.0,
    )
    if domain == "source":
        return source
    g = {k: _clip01(gap * v) for k, v in asdict(knobs).items()}
    # The panorama sees all around the car, so it gets more things even without a density gap.
    return DomainParams(
        name="target",
        projection="panorama",
        cam_height=source.cam_height + 0.45 * g["camera_height"],
        cam_height_jitter=0.05 + 0.1 * g["camera_height"],
        num_things=2.2 * source.num_things * (1.0 + 0.8 * g["density"]),
        thing_scale_mean=1.0 + 0.12 * g["scale"],
        thing_scale_std=source.thing_scale_std + 0.08 * g["scale"],
        thing_max_distance=source.thing_max_distance,
        hue_shift=0.08 * g["palette"],
        saturation=1.0 - 0.5 * g["palette"],
        sun_elevation_deg=source.sun_elevation_deg - 30.0 * g["lighting"],
        sun_azimuth_deg=source.sun_azimuth_deg + 120.0 * g["lighting"],
        ambient=source.ambient + 0.2 * g["lighting"],
        white_balance=(1.0 + 0.12 * g["lighting"], 1.0, 1.0 - 0.15 * g["lighting"]),
        texture_amp=source.texture_amp + 0.14 * g["texture"],
        noise_sigma=source.noise_sigma + 7.0 * g["sensor"],
        blur_sigma=1.6 * g["sensor"],
        fog_distance=source.fog_distance - 80.0 * g["lighting"],
    )
