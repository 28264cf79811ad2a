import math

import cv2
import numpy as np
import pytest

from core.measure import measure


def test_rectangle_area_and_diagonal_edge_to_edge():
    mask = np.zeros((20, 30), bool)
    mask[2:5, 3:7] = True  # 3 rows x 4 columns: the outer diagonal is a 3-4-5 triangle
    m = measure(mask)
    assert m.area_px == 12
    assert m.diameter_px == pytest.approx(5.0)
    assert m.area_mm2 is None and m.diameter_mm is None
    ends = sorted(m.diameter_endpoints)
    assert math.dist(*ends) == pytest.approx(5.0)
    assert {ends[0][0], ends[1][0]} == {2.5, 6.5}  # the outer edges of columns 3 and 6


def test_anisotropic_spacing_in_mm():
    mask = np.zeros((20, 30), bool)
    mask[2:5, 3:7] = True
    m = measure(mask, (0.5, 0.25))  # rows 0.5 mm apart, columns 0.25 mm
    assert m.area_mm2 == pytest.approx(12 * 0.5 * 0.25)
    assert m.diameter_mm == pytest.approx(math.hypot(3 * 0.5, 4 * 0.25))
    assert m.diameter_px == pytest.approx(5.0)


def test_physically_longest_direction_wins_with_spacing():
    mask = np.zeros((40, 40), bool)
    mask[5:7, 5:25] = True  # 20 px wide, 2 px tall
    mask[5:15, 5:7] = True  # 10 px tall arm
    m = measure(mask, (3.0, 1.0))  # rows are 3 mm: the vertical arm is 30 mm, the horizontal 20 mm
    assert m.diameter_mm == pytest.approx(math.hypot(20 * 1.0, 10 * 3.0))
    assert m.diameter_px == pytest.approx(math.hypot(20, 10))


def test_disk_diameter_and_area():
    mask = np.zeros((200, 200), np.uint8)
    cv2.circle(mask, (100, 100), 40, 1, -1)
    m = measure(mask.astype(bool), (0.1, 0.1))
    assert m.diameter_px == pytest.approx(81, abs=1.5)  # 81 pixels across, edge to edge
    assert m.area_px == int(mask.sum())
    assert m.area_mm2 == pytest.approx(m.area_px * 0.01)
    assert m.diameter_mm == pytest.approx(m.diameter_px * 0.1)


def test_single_pixel_and_empty_mask():
    one = np.zeros((5, 5), bool)
    one[2, 2] = True
    assert measure(one).diameter_px == pytest.approx(math.sqrt(2))
    empty = measure(np.zeros((5, 5), bool), (1.0, 1.0))
    assert (empty.area_px, empty.diameter_px, empty.diameter_endpoints) == (0, 0.0, None)
    assert empty.area_mm2 == 0.0 and empty.diameter_mm == 0.0


def test_two_blobs_measured_together_and_to_dict():
    mask = np.zeros((10, 50), bool)
    mask[0, 0] = mask[0, 49] = True
    m = measure(mask)
    assert m.area_px == 2
    assert m.diameter_px == pytest.approx(math.hypot(50, 1))
    d = m.to_dict()
    assert d["area_px"] == 2 and len(d["diameter_endpoints"]) == 2 and d["diameter_mm"] is None
