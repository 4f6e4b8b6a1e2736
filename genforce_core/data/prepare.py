"""Turn a folder (or zip / LMDB) of images into a training dataset: crop, resize, label, write."""
from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from genforce_core.errors import DatasetError

from .images import open_image, to_8bit
from .labels import labels_to_mapping, load_labels_file
from .readers import open_reader
from .writer import infer_format, write_dataset

TRANSFORMS = ('center-crop', 'center-crop-wide', 'none')
_LANCZOS = Image.Resampling.LANCZOS


def center_crop(img: Image.Image, resolution: int) -> Image.Image:
    """Crop the centred square of the short side, then resize to ``resolution`` (Lanczos)."""
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    img = img.crop((left, top, left + side, top + side))
    return img if side == resolution else img.resize((resolution, resolution), _LANCZOS)


def center_crop_wide(img: Image.Image, resolution: int) -> Image.Image:
    """Crop the centred 2:1 box, resize it to ``R x R/2`` and letterbox it on a black square."""
    w, h = img.size
    if w >= 2 * h:
        box_w, box_h = 2 * h, h
    else:
        box_w, box_h = w, max(1, w // 2)
    left, top = (w - box_w) // 2, (h - box_h) // 2
    band_h = resolution // 2
    band = img.crop((left, top, left + box_w, top + box_h)).resize((resolution, band_h), _LANCZOS)
    canvas = Image.new(img.mode, (resolution, resolution))
    canvas.paste(band, (0, (resolution - band_h) // 2))
    return canvas


def _transform(img: Image.Image, name: str, transform: str, resolution: int | None):
    if transform == 'none':
        w, h = img.size
        if resolution is not None and (w, h) != (resolution, resolution):
            raise DatasetError(f'{name} is {w}x{h}, not {resolution}x{resolution}, and '
                               '--transform none does not resize. Use --transform center-crop.')
        return img
    if resolution is None:
        raise DatasetError(f'--transform {transform} needs --resolution R.')
    if transform == 'center-crop':
        return center_crop(img, resolution)
    if transform == 'center-crop-wide':
        return center_crop_wide(img, resolution)
    raise DatasetError(f'Unknown transform {transform!r}; choose one of {", ".join(TRANSFORMS)}.')


def prepare_dataset(src: str | os.PathLike, dest: str | os.PathLike, fmt: str | None = None,
                    resolution: int | None = None, transform: str | None = None,
                    labels: str | os.PathLike | None = None, max_images: int | None = None,
                    channels: int = 3, overwrite: bool = False, skip_bad: bool = False,
                    compress_level: int = 1, progress: bool = True) -> Path:
    """Convert the images under ``src`` into a ``zip``/``lmdb`` dataset at ``dest``.

    ``transform`` defaults to ``center-crop`` when ``resolution`` is given, else ``none``.
    Labels come from the ``labels`` JSON file, else from the source's own ``dataset.json``.
    Images are converted to RGB (``channels=3``) or grayscale (``channels=1``).
    """
    if channels not in (1, 3):
        raise DatasetError(f'--channels must be 1 or 3, got {channels}.')
    fmt = infer_format(dest, fmt)
    transform = transform or ('center-crop' if resolution else 'none')
    if transform not in TRANSFORMS:
        raise DatasetError(f'Unknown transform {transform!r}; choose one of '
                           f'{", ".join(TRANSFORMS)}.')
    reader = open_reader(src)
    names = list(reader.names)
    if not names:
        raise DatasetError(f'{src} holds no images (looked for .png, .jpg, .jpeg, .webp, .bmp).')
    if labels is not None:
        mapping = load_labels_file(labels)
        where = f'labels file {labels}'
    else:
        mapping = labels_to_mapping(reader.raw_labels(), f'labels of {src}')
        where = f'labels of {src}'
    if mapping is not None:
        known = set(names)
        extra = [k for k in mapping if k not in known]
        if extra:
            raise DatasetError(f'{where}: the entry {extra[0]!r} names no image under {src} '
                               f'({len(extra)} such entries). Fix the path (relative to {src}) '
                               'or remove the entry.')
        missing = [n for n in names if n not in mapping]
        if missing:
            raise DatasetError(f'{where}: image {reader.describe(missing[0])} has no label '
                               f'({len(missing)} unlabelled). Add the entries.')
    if max_images is not None:
        names = names[:max_images]
    mode = 'RGB' if channels == 3 else 'L'
    bad: list[str] = []
    # Mutable on purpose: a skipped image's label is dropped before the writer checks extras.
    out_labels = None if mapping is None else {n: mapping[n] for n in names}

    def images() -> Iterator[tuple[str, np.ndarray]]:
        for name in names:
            try:
                with open_image(reader.read(name)) as img:
                    img.load()
                    img = to_8bit(img, mode)
            except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError,
                    DatasetError) as exc:
                if skip_bad:
                    bad.append(name)
                    if out_labels is not None:
                        del out_labels[name]
                    continue
                raise DatasetError(f'{reader.describe(name)}: cannot decode the image ({exc}). '
                                   'Remove it or pass --skip-bad.') from exc
            yield name, np.asarray(_transform(img, reader.describe(name), transform, resolution))

    try:
        path = write_dataset(images(), dest, fmt, labels=out_labels, total=len(names),
                             overwrite=overwrite, compress_level=compress_level,
                             progress=progress, meta=dict(source=str(src), transform=transform))
    finally:
        reader.close()
    if bad:
        warnings.warn(f'Skipped {len(bad)} unreadable image(s) of {src} (first: '
                      f'{reader.describe(bad[0])}).', stacklevel=2)
    return path

