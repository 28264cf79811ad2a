import numpy as np
import pytest

from core.distance import POINTWISE_MAX_POINTS, distance_map, distance_maps


def test_single_click_gives_euclidean_distances():
    d = distance_map(np.array([[2, 1]]), size=8, truncation=255)
    assert d[1, 2] == 0
    assert d[1, 5] == pytest.approx(3)  # 3 to the right
    assert d[5, 5] == pytest.approx(5)  # 3-4-5 triangle
    assert d[7, 0] == pytest.approx(np.hypot(2, 6), rel=1e-5)


def test_nearest_of_several_clicks_and_truncation():
    d = distance_map(np.array([[0, 0], [9, 9]]), size=10, truncation=5)
    assert d[0, 3] == pytest.approx(3)
    assert d[9, 6] == pytest.approx(3)
    assert d[0, 9] == 5 and d[9, 0] == 5  # sqrt(81) = 9 truncated to 5
    assert d.max() == 5 and d.dtype == np.float32


def test_points_are_rounded_and_clipped_into_the_grid():
    d = distance_map(np.array([[2.4, 1.6], [-3, 50]]), size=8, truncation=255)
    assert d[2, 2] == 0 and d[7, 0] == 0


def test_no_click_channel_is_all_truncation():
    maps = distance_maps(np.array([[3, 3]]), np.empty((0, 2)), size=16, truncation=255)
    assert maps.shape == (2, 16, 16)
    assert (maps[1] == 255).all()
    assert maps[0, 3, 3] == 0


def test_matches_brute_force_on_random_clicks():
    rng = np.random.default_rng(1)
    pts = rng.integers(0, 64, size=(15, 2))
    yy, xx = np.mgrid[:64, :64]
    brute = np.min([np.hypot(xx - x, yy - y) for x, y in pts], axis=0)
    np.testing.assert_allclose(distance_map(pts, 64, 1e9), brute, atol=1e-4)


@pytest.mark.parametrize("n_points", [1, 3, POINTWISE_MAX_POINTS, POINTWISE_MAX_POINTS + 1, 30])
def test_both_ways_give_the_exact_distance_in_float32(n_points):
    """Point by point (few clicks) the map is the exact distance rounded to float32, to the bit; through
    OpenCV's transform (more clicks) within one unit in the last place (OpenCV's one-thread path rounds some
    distances up by one)."""
    rng = np.random.default_rng(n_points)
    yy, xx = np.mgrid[:96, :96]
    for _ in range(20):
        pts = rng.uniform(-4, 100, size=(n_points, 2))
        idx = np.clip(np.rint(pts), 0, 95).astype(int)
        squared = np.min([(xx - x) ** 2 + (yy - y) ** 2 for x, y in idx], axis=0)
        exact = np.minimum(np.sqrt(squared.astype(np.float64)).astype(np.float32), np.float32(60))
        got = distance_map(pts, 96, 60)
        if n_points <= POINTWISE_MAX_POINTS:
            assert np.array_equal(got, exact)
        else:
            assert np.all(np.abs(got - exact) <= np.spacing(exact))
