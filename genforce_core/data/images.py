"""Open image bytes with the four decoders we support and convert them to 8-bit L/RGB/RGBA.

PIL picks a decoder from a file's bytes, not its name, and knows ~40 formats (EPS even runs
Ghostscript), so :func:`open_image` allows only PNG, JPEG, WebP and BMP. :func:`to_8bit`
scales 16-bit samples down instead of letting ``Image.convert`` clip them to 255.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from genforce_core.errors import DatasetError

IMAGE_FORMATS = ('PNG', 'JPEG', 'WEBP', 'BMP')
# Integer modes whose samples are 0..65535 (16-bit greyscale PNGs open as one of these).
_WIDE_INT_MODES = ('I;16', 'I;16L', 'I;16B', 'I;16N', 'I')
_UNSUPPORTED_MODES = {'F': 'floating-point samples have no fixed 8-bit range'}


def open_image(data: bytes) -> Image.Image:
    """``Image.open`` restricted to :data:`IMAGE_FORMATS`; other formats raise DatasetError."""
    try:
        return Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
    except Image.UnidentifiedImageError as exc:
        raise DatasetError('not a PNG, JPEG, WebP or BMP image (other formats are refused '
                           'whatever the file name says); convert it to PNG') from exc


def check_mode(img: Image.Image) -> None:
    """Raise DatasetError if ``img``'s colour mode cannot be turned into 8-bit pixels."""
    why = _UNSUPPORTED_MODES.get(img.mode)
    if why:
        raise DatasetError(f'colour mode {img.mode} is not supported ({why}); save the image '
                           'as an 8- or 16-bit PNG')


def _high_byte(img: Image.Image) -> Image.Image:
    """A 16-bit greyscale image as 8-bit ``L``: each sample's high byte (0x8000 -> 128)."""
    arr = np.asarray(img)
    if arr.size and (arr.min() < 0 or arr.max() > 0xFFFF):
        raise DatasetError(f'colour mode {img.mode} image holds values outside 0..65535, so it '
                           'is not a 16-bit image; save it as an 8- or 16-bit PNG')
    # The same reduction PIL applies to 16-bit RGB(A) PNGs, so grey and colour agree.
    return Image.fromarray((arr.astype(np.int64) >> 8).astype(np.uint8))


def to_8bit(img: Image.Image, mode: str) -> Image.Image:
    """``img`` converted to the 8-bit ``mode`` (``L``, ``RGB`` or ``RGBA``).

    16-bit greyscale keeps the high byte of each sample; alpha is dropped for ``L``/``RGB``;
    a palette with transparency goes through ``RGBA``. Raises DatasetError for other modes.
    """
    check_mode(img)
    if img.mode in _WIDE_INT_MODES:
        img = _high_byte(img)
    elif img.mode == 'P' and 'transparency' in img.info:
        img = img.convert('RGBA')  # PIL warns when such a palette goes straight to RGB
    if img.mode == mode:
        return img
    try:
        return img.convert(mode)
    except ValueError as exc:
        raise DatasetError(f'colour mode {img.mode} cannot be converted to {mode} ({exc}); '
                           'save the image as an 8-bit RGB PNG') from exc
