import numpy as np
import pytest

from core.metrics import dice, jaccard


def test_jaccard_and_dice_on_known_masks():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[0, :3] = True  # 3 pixels
    b[0, 1:] = True  # 3 pixels, overlap 2, union 4
    assert jaccard(a, b) == pytest.approx(0.5)
    assert dice(a, b) == pytest.approx(4 / 6)


def test_empty_and_disjoint_masks():
    empty = np.zeros((3, 3), bool)
    one = empty.copy()
    one[1, 1] = True
    other = empty.copy()
    other[0, 0] = True
    assert jaccard(empty, empty) == 1.0 and dice(empty, empty) == 1.0
    assert jaccard(one, other) == 0.0 and dice(one, empty) == 0.0


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        jaccard(np.zeros((2, 2)), np.zeros((2, 3)))
