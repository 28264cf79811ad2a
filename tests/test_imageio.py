import numpy as np
import pytest

from core.imageio import ImageError, load_image, to_gray_uint8


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "TIFF", "JPEG"])
def test_8bit_formats(fmt, image_bytes):
    img = np.tile(np.arange(0, 250, 5, dtype=np.uint8), (40, 1))
    out = load_image(image_bytes.encode(img, fmt))
    assert out.pixels.shape == (40, 50) and out.pixels.dtype == np.uint8
    assert np.abs(out.pixels.astype(int) - img).max() <= (6 if fmt == "JPEG" else 0)


def test_16bit_tiff_is_scaled_from_its_own_range(image_bytes):
    img = np.tile(np.linspace(1000, 5000, 64).astype(np.uint16), (32, 1))
    out = load_image(image_bytes.encode(img, "TIFF"))
    assert out.pixels.min() == 0 and out.pixels.max() == 255
    assert "16-bit" in out.description


def test_colour_becomes_luma(image_bytes):
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[..., 0] = 200  # pure red overlay
    assert load_image(image_bytes.encode(rgb, "PNG")).pixels[0, 0] == round(0.299 * 200)
    assert to_gray_uint8(np.full((5, 5, 4), 100, np.uint8))[0, 0] == 100


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"hello, I am text pretending to be a PNG", "not an image"),
    ],
)
def test_garbage_is_refused(data, message):
    with pytest.raises(ImageError, match=message):
        load_image(data)


def test_truncated_png_is_refused(image_bytes):
    rng = np.random.default_rng(0)
    data = image_bytes.encode(rng.integers(0, 255, (200, 200), dtype=np.uint8), "PNG")
    with pytest.raises(ImageError, match="corrupt or truncated"):
        load_image(data[: len(data) // 2])


def test_decompression_bomb_is_refused_before_decoding(image_bytes):
    # A 30000 x 30000 PNG compresses to a few kB; its header alone must be enough to refuse it.
    png = image_bytes.bomb_png()
    assert len(png) < 100_000
    with pytest.raises(ImageError, match="the image is 900 MP; the limit is 40 MP") as refused:
        load_image(png)  # the app's own limit, not Pillow's (178956970 pixels)
    assert "178" not in str(refused.value)


def test_large_image_over_our_limit_is_refused(image_bytes):
    with pytest.raises(ImageError, match="8000 x 6000 pixels"):
        load_image(image_bytes.encode(np.zeros((6000, 8000), np.uint8), "PNG"), max_pixels=10_000_000)


def test_missing_file():
    with pytest.raises(ImageError, match="no such file"):
        load_image("/nonexistent/image.png")


def test_multiframe_dicom_picks_the_frame_and_reads_spacing(image_bytes):
    frames = np.stack([np.full((32, 48), v, np.uint8) for v in (10, 20, 30)])
    data = image_bytes.dicom(frames, spacing=(0.2, 0.25))
    second = load_image(data, frame=1)
    assert second.pixels.shape == (32, 48) and (second.pixels == 20).all()
    assert second.n_frames == 3 and second.pixel_spacing_mm == (0.2, 0.25)
    assert "frame 1 of 3" in second.description and "Doe" not in second.description
    with pytest.raises(ImageError, match="frame 5 does not exist"):
        load_image(data, frame=5)


def _pages(*values) -> bytes:
    import io

    from PIL import Image

    pages = [Image.fromarray(np.full((24, 32), v, np.uint8)) for v in values]
    buf = io.BytesIO()
    pages[0].save(buf, format="TIFF", save_all=True, append_images=pages[1:])
    return buf.getvalue()


def test_a_multipage_tiff_gives_the_frame_asked_for_and_refuses_one_it_lacks():
    data = _pages(10, 20, 30)
    third = load_image(data, frame=2)
    assert (third.pixels == 30).all() and third.n_frames == 3 and third.frame == 2
    assert "frame 2 of 3" in third.description and (load_image(data).pixels == 10).all()
    with pytest.raises(ImageError, match="frame 3 does not exist: this TIFF has 3 frame"):
        load_image(data, frame=3)


def test_a_frame_of_a_single_frame_image_and_a_gif_are_refused(image_bytes):
    png = image_bytes.encode(np.zeros((20, 20), np.uint8), "PNG")
    assert load_image(png, frame=0).n_frames == 1
    with pytest.raises(ImageError, match="frame 1 does not exist: this PNG has 1 frame"):
        load_image(png, frame=1)
    with pytest.raises(ImageError, match="GIF images are not supported: send PNG, JPEG, BMP, TIFF or DICOM"):
        load_image(image_bytes.encode(np.zeros((20, 20), np.uint8), "GIF"))


def test_a_dicom_given_as_bytes_is_known_by_its_name(image_bytes):
    data = image_bytes.dicom(np.full((1, 20, 24), 7, np.uint8))[128 + 4 :]  # no preamble, no 'DICM'
    assert load_image(data, name="scan.dcm").pixels.shape == (20, 24)
