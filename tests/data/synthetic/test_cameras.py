"""Camera geometry: pinhole/equirectangular rays, horizon row, yaw wrap."""

import math

import numpy as np

from unlock.data.synthetic.cameras import EquirectCamera, PinholeCamera


def test_pinhole_kitti360_size_and_central_ray():
    cam = PinholeCamera.kitti360(0.25)
    assert (cam.width, cam.height) == (352, 94)
    origin, dirs = cam.rays()
    np.testing.assert_allclose(origin, [0, 0, cam.cam_height])
    np.testing.assert_allclose(np.linalg.norm(dirs, axis=1), 1.0, atol=1e-12)
    d = dirs.reshape(94, 352, 3)
    # The four centre pixels are symmetric about +x; image right is world -y, image top is +z.
    centre = d[46:48, 175:177].reshape(-1, 3).mean(0)
    np.testing.assert_allclose(centre / np.linalg.norm(centre), [1, 0, 0], atol=1e-12)
    assert d[47, -1, 1] < 0 < d[47, 0, 1]
    assert d[0, 176, 2] > 0 > d[-1, 176, 2]
    # Horizontal field of view of KITTI-360 (f = 552 px at 1408 px): 2 atan(704 / 552) ≈ 103.8°.
    hfov = math.degrees(math.atan2(-d[47, -1, 1], d[47, -1, 0]) * 2)
    assert abs(hfov - 103.8) < 0.5


def test_equirect_blendpass_size_horizon_and_azimuth():
    cam = EquirectCamera.blendpass(0.25)
    assert (cam.width, cam.height) == (512, 100)
    _, dirs = cam.rays()
    d = dirs.reshape(100, 512, 3)
    # Pitch 0: the horizon is the boundary between rows 49 and 50, symmetric elevations.
    assert (d[49, :, 2] > 0).all() and (d[50, :, 2] < 0).all()
    np.testing.assert_allclose(d[49, :, 2], -d[50, :, 2], atol=1e-12)
    # Vertical extent ≈ ±35° (BlendPASS: 400 rows at the 360°/2048 angular pitch).
    assert abs(math.degrees(math.asin(d[0, 0, 2])) - 35.15625 * (1 - 1 / 100)) < 1e-6
    # Centre column looks forward, a quarter turn to the right looks along -y, edges look back.
    assert d[50, 255, 0] > 0.99 and d[50, 256, 0] > 0.99
    az = np.arctan2(d[50, :, 1], d[50, :, 0])
    np.testing.assert_allclose(az[384], -math.pi / 2 + math.pi / 512 * -1, atol=1e-9)
    assert d[50, 0, 0] < -0.99 and d[50, -1, 0] < -0.99


def test_equirect_yaw_wraps_360_and_shifts_columns():
    base = EquirectCamera(width=64, height=10, cam_height=1.8)
    _, d0 = base.rays()
    _, d_full = EquirectCamera(width=64, height=10, cam_height=1.8, yaw=2 * math.pi).rays()
    np.testing.assert_allclose(d_full, d0, atol=1e-12)
    # Turning left by k column pitches moves the content k columns to the right.
    k = 5
    _, d_k = EquirectCamera(width=64, height=10, yaw=2 * math.pi * k / 64).rays()
    np.testing.assert_allclose(
        d_k.reshape(10, 64, 3), np.roll(d0.reshape(10, 64, 3), k, 1), atol=1e-12
    )


def test_pitch_moves_horizon():
    _, d = EquirectCamera(width=32, height=40, vfov_deg=40, pitch=math.radians(5)).rays()
    d = d.reshape(40, 32, 3)
    # 1° per row: with pitch 0 the horizon is between rows 19 and 20; looking 5° up moves it
    # 5 rows down.
    centre = d[:, 16, 2]
    assert centre[24] > 0 > centre[25]
