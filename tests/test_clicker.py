"""RITM's clicker, pinned on hand-computed cases."""

import numpy as np

from training.clicks import next_click


def _square(shape=(15, 15), y0=4, y1=11, x0=4, x1=11):
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def test_first_click_lands_at_the_lesion_deepest_point():
    ref = _square()  # 7 x 7 at rows/columns 4..10: the centre (7, 7) is 4 pixels from the outside
    click = next_click(np.zeros_like(ref), ref)
    assert (click.x, click.y, click.positive) == (7.0, 7.0, True)


def test_the_image_border_counts_as_outside():
    ref = np.zeros((15, 15), bool)
    ref[:, :5] = True  # a band along the left border, 5 wide: deepest in its middle column, not at column 0
    click = next_click(np.zeros_like(ref), ref)
    # Depth 3 (column 2, rows 2..12) is the most; of those pixels, the first in raster order.
    assert (click.x, click.y, click.positive) == (2.0, 2.0, True)


def test_the_deeper_error_wins_and_a_tie_goes_to_the_false_outline_as_in_ritm():
    ref = _square((20, 30), 5, 12, 5, 12)  # 7 x 7 lesion, entirely missed: depth 4
    pred = _square((20, 30), 5, 10, 18, 23)  # 5 x 5 false positive elsewhere: depth 3
    assert next_click(pred, ref).positive
    pred = _square((20, 30), 4, 13, 17, 26)  # 9 x 9 false positive: depth 5 beats 4
    click = next_click(pred, ref)
    assert not click.positive and (click.x, click.y) == (21.0, 8.0)
    pred = _square((20, 30), 5, 12, 18, 25)  # 7 x 7 false positive: depth 4 = 4, a tie
    click = next_click(pred, ref)  # RITM: is_positive = fn_max_dist > fp_max_dist
    assert not click.positive and (click.x, click.y) == (21.0, 8.0)


def test_never_clicks_a_pixel_already_clicked():
    ref = _square()
    clicked = np.zeros_like(ref)
    clicked[7, 7] = True
    click = next_click(np.zeros_like(ref), ref, clicked)
    assert (click.x, click.y) != (7.0, 7.0) and ref[int(click.y), int(click.x)]
    # Of the pixels at the next depth (3), the first in raster order.
    assert (click.x, click.y) == (6.0, 6.0)


def test_nothing_to_correct_gives_no_click():
    ref = _square()
    assert next_click(ref, ref) is None
    clicked = ref.copy()  # every missed pixel already clicked: nothing left to click
    assert next_click(np.zeros_like(ref), ref, clicked) is None
