"""Gnomonic views of an equirectangular panorama: conventions, known points, round trips,
masks across the view border and views straddling the seam."""

import math

import numpy as np
import pytest
import torch

from unlock.data.synthetic.cameras import BLENDPASS_VFOV_DEG, EquirectCamera, PinholeCamera
from unlock.panorama.perspective import (
    ViewSpec,
    default_views,
    horizontal_overlap_deg,
    panorama_pixel_to_ray,
    ray_to_panorama_pixel,
    ray_to_view_pixel,
    sample_view,
    view_pixel_to_ray,
    view_to_panorama,
    view_to_panorama_coords,
)
from unlock.panorama.seam import crosses_seam

PANO_W, PANO_H, VFOV = 512, 100, BLENDPASS_VFOV_DEG
VIEW = ViewSpec(yaw_deg=30.0, pitch_deg=5.0, fov_deg=104.0, width=352, height=94)


def pano_ray_image():
    """(3, H, W) float64 panorama whose pixels hold their own ray direction: smooth, known."""
    uu, vv = np.meshgrid(np.arange(PANO_W) + 0.5, np.arange(PANO_H) + 0.5)
    rays = panorama_pixel_to_ray(uu, vv, PANO_W, PANO_H, VFOV)
    return torch.as_tensor(rays).permute(2, 0, 1).contiguous()


def view_ray_image(spec):
    uu, vv = np.meshgrid(np.arange(spec.width) + 0.5, np.arange(spec.height) + 0.5)
    return torch.as_tensor(view_pixel_to_ray(uu, vv, spec)).permute(2, 0, 1)


def test_rays_follow_the_project_cameras():
    _, dirs = EquirectCamera(PANO_W, PANO_H, vfov_deg=VFOV).rays()
    uu, vv = np.meshgrid(np.arange(PANO_W) + 0.5, np.arange(PANO_H) + 0.5)
    np.testing.assert_allclose(
        panorama_pixel_to_ray(uu, vv, PANO_W, PANO_H, VFOV),
        dirs.reshape(PANO_H, PANO_W, 3),
        atol=1e-12,
    )
    cam = PinholeCamera(VIEW.width, VIEW.height, VIEW.focal, yaw=math.radians(VIEW.yaw_deg),
                        pitch=math.radians(VIEW.pitch_deg))  # fmt: skip
    np.testing.assert_allclose(
        view_ray_image(VIEW).permute(1, 2, 0).numpy(),
        cam.rays()[1].reshape(94, 352, 3),
        atol=1e-12,
    )
    # The synthetic source camera is what the default views imitate: ~104° wide at 352 px.
    assert PinholeCamera.kitti360().focal == pytest.approx(
        ViewSpec(0, 0, 103.7, 352, 94).focal, rel=2e-3
    )


def test_known_points():
    yaw, pitch = math.radians(VIEW.yaw_deg), math.radians(VIEW.pitch_deg)
    centre = view_pixel_to_ray(VIEW.width / 2, VIEW.height / 2, VIEW)
    np.testing.assert_allclose(
        centre,
        [math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw), math.sin(pitch)],
        atol=1e-12,
    )
    u, v, inside = ray_to_view_pixel(centre, VIEW)
    assert (float(u), float(v), bool(inside)) == pytest.approx((176.0, 47.0, True))
    # Panorama: azimuth 30° left of the centre column, 5° above the horizon.
    pu, pv, in_band = ray_to_panorama_pixel(centre, PANO_W, PANO_H, VFOV)
    assert float(pu) == pytest.approx(PANO_W / 2 - 30.0 / 360.0 * PANO_W)
    assert float(pv) == pytest.approx(PANO_H / 2 - 5.0 / VFOV * PANO_H) and in_band

    # The middle of the right edge of a level view looks fov/2 to the right of its yaw.
    level = ViewSpec(30.0, 0.0, 104.0, 352, 94)
    edge = view_pixel_to_ray(level.width, level.height / 2, level)
    lon = math.degrees(math.atan2(edge[1], edge[0]))
    assert lon == pytest.approx(30.0 - 52.0) and edge[2] == pytest.approx(0.0, abs=1e-12)
    # The top-left corner sits at half the vertical fov only on the optical axis: check by angle.
    top = view_pixel_to_ray(level.width / 2, 0.0, level)
    assert math.degrees(math.asin(top[2])) == pytest.approx(level.vertical_fov_deg / 2)
    # Panorama corners and the seam.
    assert panorama_pixel_to_ray(0.0, 0.0, PANO_W, PANO_H, VFOV) == pytest.approx(
        [-math.cos(math.radians(VFOV / 2)), 0.0, math.sin(math.radians(VFOV / 2))], abs=1e-12
    )
    behind = np.array([-1.0, 0.0, 0.0])
    assert float(ray_to_panorama_pixel(behind, PANO_W, PANO_H, VFOV)[0]) in (
        0.0,
        float(PANO_W) - 0.0,
    )
    assert not bool(ray_to_view_pixel(behind, level)[2])  # behind the camera: never inside


def test_point_round_trip_inside_the_view():
    rng = np.random.default_rng(0)
    u, v = rng.uniform(0, PANO_W, 5000), rng.uniform(0, PANO_H, 5000)
    rays = panorama_pixel_to_ray(u, v, PANO_W, PANO_H, VFOV)
    vu, vv, inside = ray_to_view_pixel(rays, VIEW)
    assert 500 < inside.sum() < 5000
    back = view_pixel_to_ray(vu[inside], vv[inside], VIEW)
    np.testing.assert_allclose(back, rays[inside], atol=1e-12)
    pu, pv, in_band = ray_to_panorama_pixel(back, PANO_W, PANO_H, VFOV)
    np.testing.assert_allclose(pu, u[inside], atol=1e-9)
    np.testing.assert_allclose(pv, v[inside], atol=1e-9)
    assert in_band.all()


def test_image_round_trip_bilinear():
    pano = pano_ray_image()
    view, valid = sample_view(pano, VIEW, VFOV)
    assert view.shape == (3, 94, 352) and view.dtype == pano.dtype and valid.all()
    # Bilinear interpolation of a smooth image: within a small fraction of a panorama pixel.
    assert (view - view_ray_image(VIEW)).abs().max() < 2e-4
    back, covered = view_to_panorama(view, VIEW, PANO_W, PANO_H, VFOV)
    assert 0.1 < covered.float().mean() < 0.2  # 104° of 360°, |lat| < 19°
    err = (back - pano).abs().amax(dim=0)
    # Within half a view pixel of the view border the value is the border pixel's (no
    # extrapolation): off by < 0.3°, under half a panorama pixel (0.35°). Inside: interpolation.
    assert err[covered].max() < math.radians(0.3)
    u, v, _ = view_to_panorama_coords(VIEW, PANO_W, PANO_H, VFOV)
    inner = torch.tensor((u > 1) & (u < VIEW.width - 1) & (v > 1) & (v < VIEW.height - 1))
    assert err[covered & inner].max() < 1e-4
    assert (back[:, ~covered] == 0).all()


def test_index_round_trip_nearest():
    """Nearest pano -> view -> pano returns each covered panorama pixel to itself: views are
    finer than the panorama (0.42° vs 0.70° per pixel at the centre)."""
    ids = torch.arange(PANO_W * PANO_H, dtype=torch.int64).reshape(1, PANO_H, PANO_W)
    view, _ = sample_view(ids, VIEW, VFOV, mode="nearest")
    back, covered = view_to_panorama(view, VIEW, PANO_W, PANO_H, VFOV, mode="nearest")
    assert back.dtype == torch.int64
    assert (back[0][covered] == ids[0][covered]).float().mean() > 0.999


def test_mask_across_the_view_border_reprojects_its_visible_part():
    level = ViewSpec(0.0, 0.0, 90.0, 200, 100)  # right edge at azimuth -45°: column 320
    mask = torch.zeros(1, PANO_H, PANO_W, dtype=torch.bool)
    mask[0, 40:60, 300:340] = True  # straddles the view's right edge
    view_mask, _ = sample_view(mask, level, VFOV, mode="nearest")
    assert view_mask.dtype == torch.bool and view_mask[0, :, -1].any()  # cut by the view border
    back, covered = view_to_panorama(view_mask, level, PANO_W, PANO_H, VFOV, mode="nearest")
    assert not (back & ~covered).any()
    np.testing.assert_array_equal(back[0][covered].numpy(), mask[0][covered].numpy())
    assert back[0, 50, 300:320].all() and not back[0, 50, 321:].any()

    # Validity from first principles for a level view: in front, |tan(az)| <= tan(fov/2) and the
    # ray's height on the image plane within the half height.
    uu, vv = np.meshgrid(np.arange(PANO_W) + 0.5, np.arange(PANO_H) + 0.5)
    az = math.pi - 2 * math.pi * uu / PANO_W
    lat = math.radians(VFOV) * (0.5 - vv / PANO_H)
    expected = (
        (np.cos(az) > 0)
        & (np.abs(np.tan(az)) < 1.0)
        & (np.abs(np.tan(lat)) / np.maximum(np.cos(az), 1e-9) * level.focal < level.height / 2)
    )
    np.testing.assert_array_equal(covered.numpy(), expected)
    # Rows above ±atan(0.5) ≈ 26.6° are out of this view at every azimuth.
    assert not covered[:12].any() and not covered[-12:].any()


def test_view_straddling_the_seam():
    behind = ViewSpec(180.0, 0.0, 90.0, 64, 32)
    pano = torch.ones(1, PANO_H, PANO_W)
    pano[:, :, PANO_W // 2 :] = 2.0
    view, valid = sample_view(pano, behind, VFOV)
    assert valid.all()
    # Image left turns left: azimuth past +180° wraps to the right end of the panorama.
    assert torch.allclose(view[0, :, :32], torch.tensor(2.0))
    assert torch.allclose(view[0, :, 32:], torch.tensor(1.0))
    # Bilinear samples at the seam blend column W-1 and column 0 (a view finer than the panorama).
    fine, _ = sample_view(pano, ViewSpec(180.0, 0.0, 90.0, 640, 32), VFOV)
    blended = fine[0, 16, 300:340]
    assert ((blended > 1.01) & (blended < 1.99)).sum() >= 2
    assert blended[0] == pytest.approx(2.0) and blended[-1] == pytest.approx(1.0)

    centre_mask = torch.zeros(1, 32, 64, dtype=torch.bool)
    centre_mask[0, 10:20, 20:44] = True
    back, covered = view_to_panorama(centre_mask, behind, PANO_W, PANO_H, VFOV, mode="nearest")
    assert covered[:, 0].any() and covered[:, -1].any() and not covered[:, PANO_W // 2].any()
    assert crosses_seam(back[0].numpy())
    cols = np.flatnonzero(back[0].numpy().any(axis=0))
    assert set(cols) == set(range(PANO_W - cols.size // 2, PANO_W)) | set(range(cols.size // 2))


def test_default_views_spread_yaws():
    views = default_views(4, 104.0, 352, 94, pitch_deg=-3.0)
    assert [v.yaw_deg for v in views] == [0.0, 90.0, -180.0, -90.0]
    assert all(v.pitch_deg == -3.0 and (v.width, v.height) == (352, 94) for v in views)
    assert horizontal_overlap_deg(4, 104.0) == pytest.approx(14.0)
    assert [v.yaw_deg for v in default_views(3, 120.0, 8, 8, first_yaw_deg=45.0)] == [
        45.0,
        165.0,
        -75.0,
    ]
    # Views tile the horizon: with overlap every horizon pixel is seen by at least one view.
    seen = sum(view_to_panorama(torch.ones(1, 94, 352), v, PANO_W, PANO_H, VFOV)[1][49:51].int()
               for v in views)  # fmt: skip
    assert (seen >= 1).all() and (seen == 2).any()


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: ViewSpec(0, 0, 180.0, 8, 8), "fov_deg"),
        (lambda: ViewSpec(0, 95.0, 90.0, 8, 8), "pitch_deg"),
        (lambda: ViewSpec(0, 0, 90.0, 0, 8), "size"),
        (lambda: default_views(0, 90.0, 8, 8), "num_views"),
        (lambda: panorama_pixel_to_ray(0, 0, 8, 8, 0.0), "vfov_deg"),
        (lambda: sample_view(torch.zeros(8, 16), VIEW, VFOV), r"\(C, H, W\)"),
        (lambda: sample_view(torch.zeros(1, 8, 16, dtype=torch.bool), VIEW, VFOV), "floating"),
        (lambda: view_to_panorama(torch.zeros(1, 8, 16), VIEW, 16, 8, VFOV), "do not match"),
        (
            lambda: view_to_panorama(torch.zeros(1, 94, 352), VIEW, 16, 8, VFOV, mode="cubic"),
            "mode",
        ),
    ],
)
def test_bad_input_names_the_problem(call, message):
    with pytest.raises(ValueError, match=message):
        call()
