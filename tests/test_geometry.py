import numpy as np

from core.geometry import Letterbox


def test_whole_image_letterbox_scales_longer_side_and_pads():
    frame = Letterbox.whole(200, 100, 64)
    assert frame.scaled_size == (64, 32)
    assert frame.scale_xy == (0.32, 0.32)
    out = frame.image_to_model(np.full((100, 200), 200, np.uint8))
    assert out.shape == (64, 64)
    assert (out[:32] == 200).all() and (out[32:] == 0).all()


def test_pixel_centres_map_to_pixel_centres():
    frame = Letterbox.whole(128, 64, 64)  # scale 0.5: image pixels 0,1 -> model pixel 0 (centre -0.25, 0.25)
    np.testing.assert_allclose(
        frame.points_to_model([[0, 0], [1, 1], [127, 63]]), [[-0.25] * 2, [0.25] * 2, [63.25, 31.25]]
    )
    zoom = Letterbox(200, 100, 64, (150, -20, 250, 80))  # a region reaching past the border, scale 0.64
    np.testing.assert_allclose(zoom.points_to_model([[150, -20], [200, 30]]), [[-0.18] * 2, [31.82] * 2])


def test_mask_round_trip_is_nearly_exact_for_a_large_blob():
    h, w = 90, 150
    yy, xx = np.mgrid[:h, :w]
    mask = ((xx - 70) ** 2 + (yy - 40) ** 2 < 25**2).astype(np.float32)
    frame = Letterbox.whole(w, h, 128)
    back = frame.model_to_image(frame.image_to_model(mask)) >= 0.5
    assert back.shape == (h, w)
    assert np.count_nonzero(back != mask.astype(bool)) / mask.sum() < 0.02


def test_zoom_region_crops_pads_and_maps_back():
    img = np.arange(100 * 200, dtype=np.float32).reshape(100, 200)
    frame = Letterbox.around(200, 100, 64, extent=(170, 10, 189, 29), context=2.0, min_side=8)
    assert frame.region == (160, 0, 200, 40)
    model = frame.image_to_model(img)
    assert model.shape == (64, 64)
    back = frame.model_to_image(np.ones((64, 64), np.float32))
    assert back[:40, 160:].min() == 1.0 and back[40:].max() == 0.0 and back[:, :160].max() == 0.0
    edge = Letterbox.around(200, 100, 64, extent=(190, 90, 199, 99), context=3.0, min_side=8)
    crop = edge.image_to_model(np.full((100, 200), 9, np.uint8))
    assert crop[:32, :32].max() == 9 and crop[-1, -1] == 0  # outside the image is zero


def test_model_to_image_is_one_warp_equal_to_resizing_the_region():
    """Straight from the model's grid to the image's pixels (or a box of them), as cv2.resize of the region."""
    import cv2

    rng = np.random.default_rng(0)
    model_map = rng.random((64, 64)).astype(np.float32)
    frames = (
        Letterbox.whole(150, 90, 64),
        Letterbox(150, 90, 64, (100, 60, 170, 130)),
        Letterbox(150, 90, 64, (5, 5, 25, 25)),
    )
    for frame in frames:
        (sw, sh), (rw, rh) = frame.scaled_size, frame.region_size
        region = cv2.resize(model_map[:sh, :sw], (rw, rh), interpolation=cv2.INTER_LINEAR)
        expected = np.zeros((90, 150), np.float32)
        x0, y0, x1, y1 = frame.region
        ox0, oy0, ox1, oy1 = max(x0, 0), max(y0, 0), min(x1, 150), min(y1, 90)
        expected[oy0:oy1, ox0:ox1] = region[oy0 - y0 : oy1 - y0, ox0 - x0 : ox1 - x0]
        np.testing.assert_allclose(frame.model_to_image(model_map), expected, atol=1e-5)
        box = (ox0 + 3, oy0 + 2, ox1 - 4, oy1 - 1)
        whole = frame.model_to_image(model_map)
        np.testing.assert_array_equal(frame.model_to_image(model_map, box), whole[box[1] : box[3], box[0] : box[2]])
