import numpy as np
import pytest

from core.metrics import cohen_kappa, dice, jaccard


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


def test_lesion_mask_keeps_the_clicked_component_and_fills_holes():
    from core.geometry import Letterbox
    from core.postprocess import lesion_mask

    prob = np.zeros((64, 64), np.float32)  # the model's map; the 60 x 40 image fills 60 x 40 of it, 1:1
    prob[5:25, 5:25] = 0.9
    prob[12:16, 12:16] = 0.1  # a hole
    prob[30:38, 40:55] = 0.8  # another blob
    frame = Letterbox(60, 40, 64, (0, 0, 64, 64))
    mask = lesion_mask(prob, frame, 0.5, np.array([[10, 10]]))
    assert mask.shape == (40, 60)
    assert mask[14, 14] and mask[5:25, 5:25].all() and not mask[30:38, 40:55].any()
    assert mask.sum() == 400
    nearest = lesion_mask(prob, frame, 0.5, np.array([[50, 28]]))  # click just off the second blob
    assert nearest[30:38, 40:55].all() and not nearest[10, 10] and nearest.sum() == 8 * 15


def test_lesion_mask_at_the_model_resolution_matches_the_image_size_map():
    """Chosen on the model's grid, warped back once: the same outline as thresholding the map at image size."""
    from core.geometry import Letterbox
    from core.postprocess import lesion_mask

    yy, xx = np.mgrid[:64, :64]
    prob = np.clip(1.2 - np.hypot(xx - 30.3, yy - 20.6) / 12, 0, 1).astype(np.float32)  # a soft disk
    prob[50:60, 50:60] = 0.9  # a blob elsewhere, dropped
    frame = Letterbox.around(300, 200, 64, extent=(120, 50, 180, 110), context=1.5, min_side=16)  # 90 px
    mask = lesion_mask(prob, frame, 0.5, np.array([[150, 80]]))
    full = frame.model_to_image(prob) >= 0.5
    disk = full.copy()
    disk[frame.image_box((45, 45, 64, 64))[1] :] = False  # without the other blob (it lies lower right)
    assert mask.shape == (200, 300) and np.array_equal(mask, disk)


def test_cohen_kappa_by_hand_and_against_scikit_learn():
    from sklearn.metrics import cohen_kappa_score

    a = ["benign", "benign", "malignant", "malignant", "benign"]
    b = ["benign", "malignant", "malignant", "malignant", "benign"]
    # observed 4/5; chance 3/5 * 2/5 + 2/5 * 3/5 = 0.48; kappa (0.8 - 0.48) / 0.52
    assert cohen_kappa(a, b) == pytest.approx(0.32 / 0.52)
    rng = np.random.default_rng(0)
    x, y = (list(rng.choice(["cyst", "hcc", "metastasis"], 40)) for _ in range(2))
    assert cohen_kappa(x, y) == pytest.approx(cohen_kappa_score(x, y))
    assert cohen_kappa(["a"] * 3, ["a"] * 3) == 1.0 and np.isnan(cohen_kappa([], []))
    with pytest.raises(ValueError, match="3 and 2 items"):
        cohen_kappa(["a"] * 3, ["a"] * 2)
