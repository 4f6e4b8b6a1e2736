"""A built-in, offline, deterministic dataset: coloured shapes on plain or two-tone grounds.

Each image holds one filled circle, square or triangle (label 0, 1, 2) of random colour, size,
position and rotation, drawn at 4x and box-downsampled for anti-aliasing. It is small enough
to generate in seconds and structured enough for a GAN to learn visibly in minutes.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from genforce_core.errors import DatasetError

from .writer import infer_format, read_dataset_meta, write_dataset

SHAPE_CLASSES = ('circle', 'square', 'triangle')
BUILTIN_DATASETS = ('shapes',)
_GENERATOR_VERSION = 1
_SUPERSAMPLE = 4


def _colour(rng: np.random.Generator, avoid: np.ndarray | None = None) -> np.ndarray:
    """A random RGB colour at least a fixed distance from ``avoid``."""
    while True:
        colour = rng.integers(0, 256, size=3)
        if avoid is None or np.abs(colour - avoid).sum() > 160:
            return colour


def _polygon(cx: float, cy: float, radius: float, sides: int, angle: float) -> list:
    return [(cx + radius * math.cos(angle + 2 * math.pi * k / sides),
             cy + radius * math.sin(angle + 2 * math.pi * k / sides)) for k in range(sides)]


def draw_shape_image(rng: np.random.Generator, resolution: int) -> tuple[np.ndarray, int]:
    """One ``(HWC uint8 RGB image, shape class)`` drawn with ``rng``."""
    size = resolution * _SUPERSAMPLE
    back = _colour(rng)
    canvas = Image.new('RGB', (size, size), tuple(int(v) for v in back))
    draw = ImageDraw.Draw(canvas)
    if rng.random() < 0.5:  # two-tone background split by a random line through the centre
        second = np.clip(back + rng.integers(-70, 71, size=3), 0, 255)
        angle = rng.uniform(0, math.pi)
        dx, dy = math.cos(angle) * size * 2, math.sin(angle) * size * 2
        c = size / 2
        draw.polygon([(c - dx, c - dy), (c + dx, c + dy), (c + dx + dy, c + dy - dx),
                      (c - dx + dy, c - dy - dx)], fill=tuple(int(v) for v in second))
        back = (back + second) // 2
    kind = int(rng.integers(len(SHAPE_CLASSES)))
    radius = rng.uniform(0.18, 0.4) * size
    cx, cy = rng.uniform(radius, size - radius, size=2)
    fill = tuple(int(v) for v in _colour(rng, avoid=back))
    angle = rng.uniform(0, 2 * math.pi)
    if kind == 0:
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=fill)
    elif kind == 1:
        draw.polygon(_polygon(cx, cy, radius, 4, angle), fill=fill)
    else:
        draw.polygon(_polygon(cx, cy, radius, 3, angle), fill=fill)
    small = canvas.resize((resolution, resolution), Image.Resampling.BOX)
    return np.asarray(small), kind


def make_shapes_images(num_images: int = 4000, resolution: int = 32,
                       seed: int = 0) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(name, HWC uint8 RGB array)`` shape images; the same arguments, the same pixels.

    Image ``i`` depends only on ``(seed, i)``, so a prefix of a larger set equals a smaller set.
    """
    for name, array, _ in _shapes_with_labels(num_images, resolution, seed):
        yield name, array


def _shapes_with_labels(num_images: int, resolution: int, seed: int):
    for i in range(num_images):
        rng = np.random.default_rng([seed, i])
        array, kind = draw_shape_image(rng, resolution)
        yield f'shapes/{i:06d}.png', array, kind


def ensure_builtin_dataset(dest_dir: str | os.PathLike, name: str = 'shapes',
                           resolution: int = 32, num_images: int = 4000,
                           fmt: str = 'zip', seed: int = 0) -> Path:
    """Write ``<dest_dir>/shapes<resolution>.zip`` (or ``.lmdb``) once and return its path.

    An existing file whose stored metadata matches the arguments is reused; a stale one is
    rewritten. Labels (the shape class) are stored too.
    """
    if name not in BUILTIN_DATASETS:
        raise DatasetError(f'Unknown built-in dataset {name!r}; available: '
                           f'{", ".join(BUILTIN_DATASETS)}.')
    fmt = infer_format(f'x.{fmt}', fmt)
    dest = Path(dest_dir) / f'{name}{resolution}.{fmt}'
    meta = dict(builtin=name, generator_version=_GENERATOR_VERSION, num_images=num_images,
                resolution=resolution, seed=seed)
    if dest.exists():
        try:
            stored = read_dataset_meta(dest)
        except DatasetError:
            stored = {}
        if all(stored.get(k) == v for k, v in meta.items()):
            print(f'Using the built-in {name} dataset at {dest}')
            return dest
    labels: dict[str, int] = {}

    def images():  # streams, filling in each label just before its image is written
        for image_name, array, kind in _shapes_with_labels(num_images, resolution, seed):
            labels[image_name] = kind
            yield image_name, array

    write_dataset(images(), dest, fmt, labels=labels, meta=meta, total=num_images,
                  overwrite=True, progress=False)
    print(f'Wrote the built-in {name} dataset ({num_images} images, {resolution}x{resolution}) '
          f'to {dest}')
    return dest
