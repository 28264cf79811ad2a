"""Reading ultrasound images: PNG, JPEG, BMP, TIFF (8/16-bit, multi-page) and DICOM, to 8-bit grayscale.

Every failure is an :class:`ImageError` with a message for the user. Sizes are checked from the
header before any pixel is decoded, so a decompression bomb is refused cheaply. Of a DICOM file only
the pixels and the pixel spacing are kept: no patient data leaves this module. A multi-frame file (DICOM
cine, multi-page TIFF) gives the frame asked for; a frame it lacks is refused. Other formats (GIF, WebP, ...)
are refused by name rather than read half-way.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

MAX_PIXELS = 40_000_000  # per frame; a 30000 x 30000 PNG is refused before decoding
MAX_BYTES = 64 * 1024 * 1024
MIN_SIDE = 16
FORMATS = "PNG, JPEG, BMP, TIFF or DICOM"
RASTER_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG", "BMP": "BMP", "DIB": "BMP", "TIFF": "TIFF"}
MULTI_FRAME = ("TIFF",)  # raster formats whose pages are frames


class ImageError(ValueError):
    """The file is not an image liverclick can read, with the reason."""


@dataclass(frozen=True)
class UltrasoundImage:
    pixels: np.ndarray  # (H, W) uint8 grayscale
    pixel_spacing_mm: tuple[float, float] | None = None  # (row, column) spacing, when the file says
    description: str = ""
    frame: int = 0
    n_frames: int = 1

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


def load_image(
    source: str | os.PathLike | bytes, frame: int = 0, max_pixels: int = MAX_PIXELS, name: str = ""
) -> UltrasoundImage:
    """Read a file (path or bytes) into an 8-bit grayscale image; ``frame`` picks a frame of a multi-frame file.
    ``name``: the file's name when ``source`` is its bytes (a .dcm name marks a DICOM without its preamble)."""
    data = _read_bytes(source)
    if not data:
        raise ImageError("the file is empty")
    if len(data) > MAX_BYTES:
        raise ImageError(f"the file is {len(data) / 2**20:.0f} MB; the limit is {MAX_BYTES // 2**20} MB")
    named = name or ("" if isinstance(source, (bytes, bytearray)) else str(source))
    if data[128:132] == b"DICM" or named.lower().endswith((".dcm", ".dicom")):
        return _load_dicom(data, frame, max_pixels)
    return _load_raster(data, frame, max_pixels)


def to_gray_uint8(array: np.ndarray) -> np.ndarray:
    """Any grayscale/RGB(A) array of integers or floats -> (H, W) uint8.

    Colour (e.g. a Doppler or annotation overlay) becomes ITU-R 601 luma, as in the BUSI
    conversion; wider-than-8-bit data is scaled linearly from its own minimum and maximum.
    """
    arr = np.asarray(array)
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        rgb = arr[..., :3].astype(np.float64)
        arr = rgb @ np.array([0.299, 0.587, 0.114])
        if np.asarray(array).dtype == np.uint8:
            return np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    elif arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise ImageError(f"expected a 2-D grayscale or colour image, got an array of shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr
    arr = arr.astype(np.float64)
    lo, hi = float(arr.min()), float(arr.max())
    if hi <= lo:
        return np.zeros(arr.shape, dtype=np.uint8)
    return np.clip(np.rint((arr - lo) * (255.0 / (hi - lo))), 0, 255).astype(np.uint8)


def _read_bytes(source) -> bytes:
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    path = Path(source)
    if not path.is_file():
        raise ImageError(f"no such file: {path}")
    return path.read_bytes()


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise _too_large(f"{width} x {height} pixels ({width * height / 1e6:.0f} MP)", max_pixels)
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"the image is {width} x {height} pixels; each side needs at least {MIN_SIDE}")


def _too_large(size: str, max_pixels: int) -> ImageError:
    return ImageError(f"the image is {size}; the limit is {max_pixels / 1e6:.0f} MP")


def _check_frame(frame: int, n_frames: int, kind: str) -> None:
    if not 0 <= frame < n_frames:
        raise ImageError(f"frame {frame} does not exist: this {kind} has {n_frames} frame(s), 0..{n_frames - 1}")


def _load_raster(data: bytes, frame: int, max_pixels: int) -> UltrasoundImage:
    try:
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:  # Pillow's own, far higher limit: say ours
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise _too_large(f"{int(found[1]) / 1e6:.0f} MP" if found else "too large", max_pixels) from None
    except UnidentifiedImageError:
        raise ImageError(f"not an image file liverclick can read ({FORMATS})") from None
    except Exception as exc:  # PIL raises several types for malformed headers
        raise ImageError(f"the image header is unreadable: {exc}") from None
    fmt = RASTER_FORMATS.get(img.format or "")
    if fmt is None:
        raise ImageError(f"{img.format or 'this'} images are not supported: send {FORMATS}")
    n_frames = int(getattr(img, "n_frames", 1) or 1) if fmt in MULTI_FRAME else 1
    _check_frame(frame, n_frames, fmt)
    try:
        img.seek(frame)
    except Exception:
        raise ImageError(f"frame {frame} of the {fmt} file is corrupt") from None
    _check_size(*img.size, max_pixels)
    try:
        img.load()
    except Exception:
        raise ImageError(f"the {fmt} file is corrupt or truncated") from None
    mode = img.mode
    if mode in ("P", "PA", "LA", "CMYK", "YCbCr", "1"):
        img = img.convert("RGB" if mode != "1" else "L")
    array = np.asarray(img)
    bits = "16-bit" if array.dtype in (np.uint16, np.int32) and mode.startswith("I") else "8-bit"
    desc = f"{fmt} {bits} {mode}" + (f", frame {frame} of {n_frames}" if n_frames > 1 else "")
    return UltrasoundImage(to_gray_uint8(array), None, desc, frame, n_frames)


def _load_dicom(data: bytes, frame: int, max_pixels: int) -> UltrasoundImage:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        rows, cols = int(ds.Rows), int(ds.Columns)
    except (InvalidDicomError, AttributeError, ValueError, EOFError, OSError):
        raise ImageError("not a readable DICOM image (no pixel rows/columns)") from None
    _check_size(cols, rows, max_pixels)
    n_frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    _check_frame(frame, n_frames, "DICOM")
    try:
        pixels = ds.pixel_array
    except Exception as exc:
        raise ImageError(f"the DICOM pixel data cannot be decoded ({exc})") from None
    if n_frames > 1:
        pixels = pixels[frame]
    gray = to_gray_uint8(pixels)
    if str(getattr(ds, "PhotometricInterpretation", "")) == "MONOCHROME1":
        gray = 255 - gray
    desc = f"DICOM {getattr(ds, 'Modality', '')} {rows}x{cols}".strip()
    if n_frames > 1:
        desc += f", frame {frame} of {n_frames}"
    return UltrasoundImage(gray, _dicom_spacing(ds), desc, frame, n_frames)


def _dicom_spacing(ds) -> tuple[float, float] | None:
    """Pixel spacing in mm: PixelSpacing, else the first ultrasound region's physical deltas (cm)."""
    spacing = getattr(ds, "PixelSpacing", None)
    if spacing is not None and len(spacing) == 2:
        return float(spacing[0]), float(spacing[1])
    for region in getattr(ds, "SequenceOfUltrasoundRegions", []) or []:
        dx, dy = getattr(region, "PhysicalDeltaX", None), getattr(region, "PhysicalDeltaY", None)
        units = (getattr(region, "PhysicalUnitsXDirection", None), getattr(region, "PhysicalUnitsYDirection", None))
        if dx and dy and units == (3, 3):  # 3 = centimetres
            return abs(float(dy)) * 10.0, abs(float(dx)) * 10.0
    return None


def load_outline(source: str | os.PathLike | bytes, width: int, height: int) -> np.ndarray:
    """An outline given back to the model (a request's ``previous_mask``): a PNG (path or bytes) of the image's
    own size holding only 0 and 255 (or 0 and 1); ImageError naming what is wrong otherwise."""
    data = _read_bytes(source)
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except Exception:
        raise ImageError("the previous mask is not a readable image (a PNG of 0 and 255)") from None
    if img.size != (width, height):
        raise ImageError(f"the previous mask is {img.size[0]} x {img.size[1]} pixels; the image is {width} x {height}")
    values = np.asarray(img.convert("L"))
    if not set(np.unique(values).tolist()) <= {0, 1, 255}:
        raise ImageError("the previous mask must be binary: only 0 and 255 (or 0 and 1)")
    return values > 0
