"""SSIM, PSNR, the body box, the face crop and pose distance against hand-computed values and an
independent, loop-free reference implementation of Wang et al.'s SSIM."""
from __future__ import annotations

import math

import numpy as np
import pytest
from edn_server.gan.face import face_box
from edn_server.gan.metrics import body_box, face_crop, pose_distance, psnr, ssim
from edn_server.pose.landmarks import FACE, NUM_LANDMARKS


def reference_ssim(a: np.ndarray, b: np.ndarray, L: float = 255.0) -> float:
    """Wang et al. 2004 straight from the paper: every 11x11 window fully inside the image, a 2-D
    Gaussian weighting (sigma 1.5) built directly, statistics summed explicitly per window."""
    r = np.arange(11) - 5
    w = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 1.5**2))
    w /= w.sum()
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    scores = []
    for ch in range(a.shape[2]):
        x = np.lib.stride_tricks.sliding_window_view(a[..., ch].astype(np.float64), (11, 11))
        y = np.lib.stride_tricks.sliding_window_view(b[..., ch].astype(np.float64), (11, 11))
        mx, my = (x * w).sum(axis=(-1, -2)), (y * w).sum(axis=(-1, -2))
        vx = (w * (x - mx[..., None, None]) ** 2).sum(axis=(-1, -2))
        vy = (w * (y - my[..., None, None]) ** 2).sum(axis=(-1, -2))
        cxy = (w * (x - mx[..., None, None]) * (y - my[..., None, None])).sum(axis=(-1, -2))
        m = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
        scores.append(m.mean())
    return float(np.mean(scores))


def random_images(seed: int, shape=(40, 52, 3)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, shape).astype(np.uint8)
    noise = rng.normal(0, 25, shape)
    b = np.clip(a.astype(np.float64) * 0.8 + 30 + noise, 0, 255).astype(np.uint8)
    return a, b


def test_ssim_of_identical_images_is_one_and_of_unrelated_noise_near_zero():
    a, _ = random_images(0)
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    other, _ = random_images(1)
    assert abs(ssim(a, other)) < 0.05


def test_ssim_of_flat_images_matches_the_closed_form():
    # No variance: SSIM reduces to the luminance term (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1).
    a = np.full((20, 30, 3), 100, np.uint8)
    b = np.full((20, 30, 3), 110, np.uint8)
    c1 = (0.01 * 255) ** 2
    assert ssim(a, b) == pytest.approx((2 * 100 * 110 + c1) / (100**2 + 110**2 + c1), rel=1e-12)


@pytest.mark.parametrize("seed", [2, 3])
def test_ssim_matches_an_independent_reference(seed):
    a, b = random_images(seed)
    expected = reference_ssim(a, b)
    assert 0.1 < expected < 0.95  # a meaningful, non-trivial pair
    assert ssim(a, b) == pytest.approx(expected, abs=1e-10)
    assert ssim(a, b) == pytest.approx(ssim(b, a), abs=1e-12)  # symmetric


def test_ssim_rejects_mismatched_or_too_small_images():
    a, b = random_images(0)
    with pytest.raises(ValueError, match="one shape"):
        ssim(a, b[:-1])
    with pytest.raises(ValueError, match="at least 11"):
        ssim(a[:10], b[:10])


def test_psnr_known_values():
    a = np.zeros((8, 8, 3), np.uint8)
    assert psnr(a, a) == math.inf
    assert psnr(a, a + 1) == pytest.approx(10 * math.log10(255**2), rel=1e-12)  # MSE 1: 48.13 dB
    assert psnr(a, np.full_like(a, 255)) == pytest.approx(0.0, abs=1e-12)


def pose(points: dict[int, tuple[float, float, float]]) -> np.ndarray:
    k = np.zeros((NUM_LANDMARKS, 4), np.float32)
    for i, (x, y, v) in points.items():
        k[i] = (x, y, 0.0, v)
    return k


def test_body_box_pads_fifteen_percent_sideways_and_ten_percent_vertically():
    # visible points span x 100..200, y 50..250; a hidden point far away does not count
    k = pose({0: (100, 50, 0.9), 5: (200, 250, 0.9), 9: (600, 470, 0.1)})
    x0, y0, x1, y1 = body_box(k, (640, 480))
    assert (x0, y0) == (85, 30)  # 15 px = 15% of 100, 20 px = 10% of 200
    assert (x1, y1) == (216, 271)  # end exclusive: the pixels holding x 215, y 270 are inside


def test_body_box_is_clipped_to_the_frame_and_none_without_visible_points():
    k = pose({0: (5, 5, 0.9), 5: (630, 470, 0.9)})
    assert body_box(k, (640, 480)) == (0, 0, 640, 480)
    assert body_box(pose({0: (5, 5, 0.1)}), (640, 480)) is None


def test_face_crop_is_the_face_box_region():
    image = np.random.default_rng(0).integers(0, 256, (256, 512, 3)).astype(np.uint8)
    k = pose({i: (300 + 3 * i, 60 + i, 0.9) for i in FACE})
    box = face_box(k, (512, 256))
    crop = face_crop(image, k)
    assert crop.shape == (box.side, box.side, 3) == (128, 128, 3)
    assert np.array_equal(crop, image[box.y0:box.y1, box.x0:box.x1])


def test_pose_distance_uses_landmarks_visible_in_both():
    a = pose({0: (10, 10, 0.9), 1: (20, 20, 0.9), 2: (0, 0, 0.9)})
    b = pose({0: (13, 14, 0.9), 1: (20, 20, 0.9), 2: (500, 500, 0.2)})  # landmark 2 hidden in b
    assert pose_distance(a, b) == pytest.approx(2.5)  # (5 + 0) / 2
    assert math.isnan(pose_distance(a, pose({})))
