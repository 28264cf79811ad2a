import io
import zlib

import numpy as np
import pytest
from PIL import Image

from core.imageio import ImageError, load_image, to_gray_uint8


def _encode(array, fmt, **kw):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "TIFF", "JPEG"])
def test_8bit_formats(fmt):
    img = np.tile(np.arange(0, 250, 5, dtype=np.uint8), (40, 1))
    out = load_image(_encode(img, fmt))
    assert out.pixels.shape == (40, 50) and out.pixels.dtype == np.uint8
    assert np.abs(out.pixels.astype(int) - img).max() <= (6 if fmt == "JPEG" else 0)


def test_16bit_tiff_is_scaled_from_its_own_range():
    img = np.tile(np.linspace(1000, 5000, 64).astype(np.uint16), (32, 1))
    out = load_image(_encode(img, "TIFF"))
    assert out.pixels.min() == 0 and out.pixels.max() == 255
    assert "16-bit" in out.description


def test_colour_becomes_luma():
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[..., 0] = 200  # pure red overlay
    assert load_image(_encode(rgb, "PNG")).pixels[0, 0] == round(0.299 * 200)
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


def test_truncated_png_is_refused():
    rng = np.random.default_rng(0)
    data = _encode(rng.integers(0, 255, (200, 200), dtype=np.uint8), "PNG")
    with pytest.raises(ImageError, match="corrupt or truncated"):
        load_image(data[: len(data) // 2])


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A PNG header for a huge 8-bit grayscale image with only its first 64 rows of zeros: a small file."""

    def chunk(tag, payload):
        return len(payload).to_bytes(4, "big") + tag + payload + zlib.crc32(tag + payload).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    row = b"\x00" * (width + 1)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(64)) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_before_decoding():
    # A 30000 x 30000 PNG compresses to a few kB; its header alone must be enough to refuse it.
    png = bomb_png()
    assert len(png) < 100_000
    with pytest.raises(ImageError, match="too large|30000 x 30000"):
        load_image(png)


def test_large_image_over_our_limit_is_refused():
    with pytest.raises(ImageError, match="8000 x 6000 pixels"):
        load_image(_encode(np.zeros((6000, 8000), np.uint8), "PNG"), max_pixels=10_000_000)


def test_missing_file():
    with pytest.raises(ImageError, match="no such file"):
        load_image("/nonexistent/image.png")


def _dicom(frames: np.ndarray, spacing=None) -> bytes:
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, UltrasoundMultiFrameImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundMultiFrameImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("x.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.Modality = "US"
    ds.PatientName = "Doe^Jane"
    ds.Rows, ds.Columns = frames.shape[1:3]
    ds.NumberOfFrames = frames.shape[0]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    if spacing:
        ds.PixelSpacing = list(spacing)
    ds.PixelData = frames.astype(np.uint8).tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def test_multiframe_dicom_picks_the_frame_and_reads_spacing():
    frames = np.stack([np.full((32, 48), v, np.uint8) for v in (10, 20, 30)])
    data = _dicom(frames, spacing=(0.2, 0.25))
    second = load_image(data, frame=1)
    assert second.pixels.shape == (32, 48) and (second.pixels == 20).all()
    assert second.n_frames == 3 and second.pixel_spacing_mm == (0.2, 0.25)
    assert "frame 1 of 3" in second.description and "Doe" not in second.description
    with pytest.raises(ImageError, match="frame 5 does not exist"):
        load_image(data, frame=5)
