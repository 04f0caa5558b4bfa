"""Ray casting: exact GT invariants, occlusion, panorama geometry, culling, min-area drop."""

import math

import numpy as np
import pytest

from unlock.data.synthetic import render as render_mod
from unlock.data.synthetic.cameras import EquirectCamera, PinholeCamera
from unlock.data.synthetic.domain import make_domain
from unlock.data.synthetic.primitives import Ground, PrimitiveBuilder
from unlock.data.synthetic.render import cast_rays, render_scene
from unlock.data.synthetic.scene import Scene, sample_scene
from unlock.data.synthetic.things import add_thing

GREY = (0.5, 0.5, 0.5)


def _scene(builder, things, domain="target"):
    ground = Ground(
        y0=0.0, road_half=6.0, sidewalk=2.0, colors={0: GREY, 1: GREY, 9: GREY}, lane_markings=False
    )
    style = {
        "sun": [0.0, 0.0, 1.0],
        "exposure": 1.0,
        "sky_horizon": GREY,
        "sky_zenith": GREY,
        "noise_seed": 0,
    }
    return Scene(builder.build(), ground, things, style, make_domain(domain, 0.5))


def _check_invariants(out, min_area):
    sem, ids = out["semantic"], out["instance_ids"]
    assert sem.max() <= 17  # every pixel labelled: sky where nothing is hit
    covered = np.zeros(sem.shape, dtype=int)
    for j, t in enumerate(out["things"]):
        vis, amo = t["visible_mask"], t["amodal_mask"]
        assert 11 <= t["category_id"] <= 17
        assert not (vis & ~amo).any()  # visible ⊆ amodal
        assert vis.sum() >= min_area
        assert (sem[vis] == t["category_id"]).all()
        np.testing.assert_array_equal(ids == j, vis)
        assert t["occluded"] == bool((amo & ~vis).any())
        if not t["occluded"]:
            np.testing.assert_array_equal(amo, vis)
        covered += vis
    assert covered.max() <= 1  # visible masks are disjoint
    # Thing classes appear in the semantic map exactly on the visible masks.
    np.testing.assert_array_equal(sem >= 11, covered == 1)


@pytest.mark.parametrize("domain", ["source", "target"])
def test_sampled_scenes_satisfy_gt_invariants(domain):
    dom = make_domain(domain, 0.5)
    cam = PinholeCamera.kitti360(0.1) if domain == "source" else EquirectCamera.blendpass(0.1)
    n_occluded = 0
    for i in range(3):
        rng = np.random.default_rng([7, i])
        out = render_scene(sample_scene(rng, dom), cam, min_area=4)
        assert out["image"].shape == (cam.height, cam.width, 3) and out["image"].dtype == np.uint8
        assert out["semantic"].shape == (cam.height, cam.width)
        _check_invariants(out, min_area=4)
        n_occluded += sum(t["occluded"] for t in out["things"])
        assert len(out["things"]) > 0
    assert n_occluded > 0  # scenes do produce real occlusions


def test_single_object_amodal_equals_visible():
    b = PrimitiveBuilder()
    add_thing(b, 13, 10.0, 0.0, 0.0, 1.0, 0, np.random.default_rng(0))
    out = render_scene(_scene(b, [13], "source"), PinholeCamera.kitti360(0.25))
    (car,) = out["things"]
    assert not car["occluded"] and car["visible_mask"].sum() > 100
    np.testing.assert_array_equal(car["amodal_mask"], car["visible_mask"])


def test_front_car_and_pole_occlude_back_car():
    b = PrimitiveBuilder()
    rng = np.random.default_rng(0)
    add_thing(b, 13, 20.0, 0.0, 0.0, 1.0, 0, rng)  # far car
    add_thing(b, 11, 8.0, 0.3, 0.0, 1.0, 1, rng)  # pedestrian in front of it
    b.cylinder(12.0, -0.6, 0.0, 6.0, 0.15, 5, GREY)  # pole in front of it
    out = render_scene(_scene(b, [13, 11], "source"), PinholeCamera.kitti360(0.25))
    car, ped = out["things"]
    assert car["occluded"] and not ped["occluded"]
    hidden = car["amodal_mask"] & ~car["visible_mask"]
    # The hidden part of the car is exactly what the pedestrian and the pole cover.
    assert (hidden & ped["visible_mask"]).any() and (out["semantic"][hidden] == 5).any()
    assert set(np.unique(out["semantic"][hidden])) <= {5, 11}


def test_vertical_pole_is_vertical_band_in_panorama():
    b = PrimitiveBuilder()
    # Tall and close enough (closer than the ground seen at -35°) to fill every row.
    b.cylinder(-1.4, 1.4, -40.0, 40.0, 0.3, 5, GREY)
    cam = EquirectCamera(width=256, height=50, cam_height=1.8)
    out = render_scene(_scene(b, []), cam)
    pole = out["semantic"] == 5
    cols = pole.any(axis=0)
    assert 1 <= cols.sum() < 20
    for row in pole:
        np.testing.assert_array_equal(row, cols)
    # The pole stands at azimuth 135° (back left): left of the image centre, right of its edge.
    centre = np.flatnonzero(cols).mean()
    expected = (0.5 - math.radians(135) / (2 * math.pi)) * 256 - 0.5
    assert abs(centre - expected) < 1.0


def test_horizon_at_mid_height_and_straight_lines_bend():
    b = PrimitiveBuilder()
    b.box((0.0, 10.0, 2.0), (400.0, 0.3, 4.0), 3, GREY)  # long wall parallel to the street
    cam = EquirectCamera(width=256, height=100, cam_height=1.8)
    out = render_scene(_scene(b, []), cam)
    sem = out["semantic"]
    empty = sem[:, 200]  # looking right (-y): only ground and sky
    assert (empty[:50] == 10).all() and np.isin(empty[50:], [0, 1, 9]).all()
    wall = sem == 3
    top = np.array([np.flatnonzero(wall[:, c])[0] for c in range(0, 128) if wall[:, c].any()])
    # The straight top edge of the wall is a sinusoid in the panorama, highest at 90° left.
    assert top.max() - top.min() > 10
    height = wall[:, :128].sum(axis=0)
    # Tallest where the wall is nearest, at azimuth +90° (columns 63/64): symmetric about 63.5.
    assert abs((height * np.arange(128)).sum() / height.sum() - 63.5) < 0.5
    assert height[63] == height.max()


def test_yaw_360_renders_identically_and_wraps():
    rng = np.random.default_rng(3)
    scene = sample_scene(rng, make_domain("target", 0.5))
    a = render_scene(scene, EquirectCamera(width=128, height=25, yaw=0.3))
    b = render_scene(scene, EquirectCamera(width=128, height=25, yaw=0.3 + 2 * math.pi))
    assert (a["semantic"] == b["semantic"]).mean() > 0.999
    # A turn by 16 columns rolls the labels by 16 columns (up to floating-point ties).
    c = render_scene(scene, EquirectCamera(width=128, height=25, yaw=0.3 + 2 * math.pi / 8))
    assert (np.roll(a["semantic"], 16, axis=1) == c["semantic"]).mean() > 0.995


def test_bundle_culling_matches_brute_force(monkeypatch):
    rng = np.random.default_rng(11)
    scene = sample_scene(rng, make_domain("target", 0.5))
    origin, dirs = EquirectCamera(width=96, height=19).rays()
    fast = cast_rays(scene.prims, scene.ground, origin, dirs, len(scene.things))

    def all_pairs(prims, origin, dirs):
        ray, pid = np.meshgrid(np.arange(dirs.shape[0]), np.arange(len(prims)), indexing="ij")
        return ray.ravel(), pid.ravel()

    monkeypatch.setattr(render_mod, "_candidate_pairs", all_pairs)
    slow = cast_rays(scene.prims, scene.ground, origin, dirs, len(scene.things))
    for key in ("prim", "amodal"):
        np.testing.assert_array_equal(fast[key], slow[key])
    np.testing.assert_allclose(fast["depth"], slow["depth"])


def test_tiny_things_are_removed_and_background_rerendered():
    b = PrimitiveBuilder()
    rng = np.random.default_rng(0)
    add_thing(b, 13, 10.0, 0.0, 0.0, 1.0, 0, rng)
    add_thing(b, 11, 30.0, 3.0, 0.0, 1.0, 1, rng)  # a few pixels at 30 m
    cam = PinholeCamera.kitti360(0.25)
    scene = _scene(b, [13, 11], "source")
    loose = render_scene(scene, cam, min_area=1)
    assert [t["category_id"] for t in loose["things"]] == [13, 11]
    ped_pixels = loose["things"][1]["visible_mask"]
    assert 0 < ped_pixels.sum() < 30
    strict = render_scene(scene, cam, min_area=30)
    assert [t["category_id"] for t in strict["things"]] == [13]
    assert not (strict["semantic"] == 11).any() and (strict["instance_ids"] <= 0).all()
    # The dropped pedestrian's pixels now show what is behind it, exactly as if it never existed.
    alone = render_scene(scene.without_things([1]), cam, min_area=30)
    np.testing.assert_array_equal(strict["semantic"], alone["semantic"])
    np.testing.assert_array_equal(strict["image"], alone["image"])
    assert (strict["semantic"][ped_pixels] < 11).all()
    _check_invariants(strict, min_area=30)
