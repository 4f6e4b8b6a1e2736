"""A built-in, offline, deterministic dataset: coloured shapes on plain grounds.

Each image holds one filled circle, square or triangle (label 0, 1, 2) from a palette of eight
colours on one of four backgrounds, of random size and position near the centre, upright (square
sides axis-aligned, triangles pointing up), drawn at 4x and box-downsampled for anti-aliasing.
It is small enough to generate in seconds and simple enough for a GAN to learn visibly in
minutes. Each image's label names its three factors as one 15-d vector, the shape one-hot,
then the colour one-hot, then the ground one-hot (:func:`shape_label`), so a conditional GAN
can be asked for any of the 3 x 8 x 4 = 96 combinations and learns what a square is from the
squares of every colour and ground.
"""
from __future__ import annotations

import contextlib
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
_GENERATOR_VERSION = 3
GENERATOR_VERSION = _GENERATOR_VERSION  # changes whenever a pixel would change
_SUPERSAMPLE = 4
_LABELS = 'factors'  # what the stored labels mean (a file with other labels is rewritten)


# Shape colours (saturated, well apart) and plain backgrounds (light and dark), so that a small
# GAN learns the distribution within minutes on a CPU while every image still needs a sharp
# circle, square or triangle of the right colour on the right ground.
SHAPE_COLOURS = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
                 (145, 30, 180), (70, 240, 240), (240, 50, 230))
BACKGROUNDS = ((250, 250, 250), (200, 200, 200), (40, 40, 40), (10, 10, 60))


def _polygon(cx: float, cy: float, radius: float, sides: int, angle: float) -> list:
    return [(cx + radius * math.cos(angle + 2 * math.pi * k / sides),
             cy + radius * math.sin(angle + 2 * math.pi * k / sides)) for k in range(sides)]


NUM_COMBINATIONS = len(SHAPE_CLASSES) * len(SHAPE_COLOURS) * len(BACKGROUNDS)


def shape_combination(shape, colour, ground):
    """The class index ``(shape * 8 + colour) * 4 + ground`` (0-95) of a combination of
    factors; works on ints and on integer tensors or arrays alike."""
    return (shape * len(SHAPE_COLOURS) + colour) * len(BACKGROUNDS) + ground


SHAPE_LABEL_DIM = len(SHAPE_CLASSES) + len(SHAPE_COLOURS) + len(BACKGROUNDS)


def shape_label(shape: int, colour: int, ground: int) -> list[float]:
    """The built-in label of a combination: ``[shape one-hot (3), colour one-hot (8), ground
    one-hot (4)]``, 15 numbers."""
    label = [0.0] * SHAPE_LABEL_DIM
    for offset, index in ((0, shape), (len(SHAPE_CLASSES), colour),
                          (len(SHAPE_CLASSES) + len(SHAPE_COLOURS), ground)):
        label[offset + int(index)] = 1.0
    return label


def draw_shape_sample(rng: np.random.Generator, resolution: int
                      ) -> tuple[np.ndarray, int, int, int]:
    """One ``(HWC uint8 RGB image, shape class, colour index, ground index)`` drawn with
    ``rng``: an upright circle, square or triangle of radius 26-40 % of the image, near the
    centre, filled with ``SHAPE_COLOURS[colour]`` on ``BACKGROUNDS[ground]``."""
    size = resolution * _SUPERSAMPLE
    ground = int(rng.integers(len(BACKGROUNDS)))
    canvas = Image.new('RGB', (size, size), BACKGROUNDS[ground])
    draw = ImageDraw.Draw(canvas)
    kind = int(rng.integers(len(SHAPE_CLASSES)))
    radius = rng.uniform(0.26, 0.4) * size
    cx, cy = size / 2 + rng.uniform(-0.1, 0.1, size=2) * size
    colour = int(rng.integers(len(SHAPE_COLOURS)))
    fill = SHAPE_COLOURS[colour]
    if kind == 0:
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=fill)
    elif kind == 1:  # about the circle's area
        half = 0.8 * radius
        draw.rectangle([cx - half, cy - half, cx + half, cy + half], fill=fill)
    else:  # pointing up, centred on its bounding box
        draw.polygon(_polygon(cx, cy + 0.2 * radius, 1.1 * radius, 3, -math.pi / 2), fill=fill)
    small = canvas.resize((resolution, resolution), Image.Resampling.BOX)
    return np.asarray(small), kind, colour, ground


def draw_shape_image(rng: np.random.Generator, resolution: int) -> tuple[np.ndarray, int]:
    """One ``(HWC uint8 RGB image, shape class)`` drawn with ``rng`` (see
    :func:`draw_shape_sample`)."""
    image, kind, _, _ = draw_shape_sample(rng, resolution)
    return image, kind


def make_shapes_images(num_images: int = 4000, resolution: int = 32,
                       seed: int = 0) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(name, HWC uint8 RGB array)`` shape images; the same arguments, the same pixels.

    Image ``i`` depends only on ``(seed, i)``, so a prefix of a larger set equals a smaller set.
    """
    for name, array, _ in _shapes_with_labels(num_images, resolution, seed):
        yield name, array


def make_shapes_samples(num_images: int, resolution: int = 32, seed: int = 0
                        ) -> Iterator[tuple[np.ndarray, int, int, int]]:
    """Yield ``(image, shape class, colour index, ground index)`` for images ``0..num_images-1``
    of the built-in set ``seed``: the pixels of :func:`make_shapes_images`, with every factor
    that drew them (what the shapes classifier of the metrics plugin learns)."""
    for i in range(num_images):
        yield draw_shape_sample(np.random.default_rng([seed, i]), resolution)


def _shapes_with_labels(num_images: int, resolution: int, seed: int):
    for i, (array, *factors) in enumerate(make_shapes_samples(num_images, resolution, seed)):
        yield f'shapes/{i:06d}.png', array, shape_label(*factors)


def ensure_builtin_dataset(dest_dir: str | os.PathLike, name: str = 'shapes',
                           resolution: int = 32, num_images: int = 4000,
                           fmt: str = 'zip', seed: int = 0) -> Path:
    """Write ``<dest_dir>/shapes<resolution>.zip`` (or ``.lmdb``) once and return its path.

    An existing file whose stored metadata matches the arguments is reused; a stale one is
    rewritten. Labels (the factors as :func:`shape_label` vectors) are stored too.
    """
    if name not in BUILTIN_DATASETS:
        raise DatasetError(f'Unknown built-in dataset {name!r}; available: '
                           f'{", ".join(BUILTIN_DATASETS)}.')
    fmt = infer_format(f'x.{fmt}', fmt)
    dest = Path(dest_dir) / f'{name}{resolution}.{fmt}'
    meta = dict(builtin=name, generator_version=_GENERATOR_VERSION, num_images=num_images,
                resolution=resolution, seed=seed, labels=_LABELS)
    with _exclusive(dest):  # two runs starting at once: one writes, the other reuses it
        if dest.exists():
            try:
                stored = read_dataset_meta(dest)
            except DatasetError:
                stored = {}
            if all(stored.get(k) == v for k, v in meta.items()):
                print(f'Using the built-in {name} dataset at {dest}')
                return dest
        labels: dict[str, list[float]] = {}

        def images():  # streams, filling in each label just before its image is written
            for image_name, array, label in _shapes_with_labels(num_images, resolution, seed):
                labels[image_name] = label
                yield image_name, array

        write_dataset(images(), dest, fmt, labels=labels, meta=meta, total=num_images,
                      overwrite=True, progress=False)
        print(f'Wrote the built-in {name} dataset ({num_images} images, '
              f'{resolution}x{resolution}) to {dest}')
        return dest


@contextlib.contextmanager
def _exclusive(dest: Path):
    """Hold an exclusive lock on ``DEST.lock`` (POSIX; elsewhere no lock)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest.with_name(dest.name + '.lock'), 'a') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


BUILTIN_PREFIX = 'builtin:'


def is_builtin_path(path: str) -> bool:
    """True for dataset paths like ``'builtin:shapes32'``."""
    return isinstance(path, str) and path.startswith(BUILTIN_PREFIX)


def builtin_dir() -> Path:
    """Where built-in datasets are written: ``$GENFORCE_CACHE_DIR/builtin`` or
    ``~/.cache/genforce/builtin``."""
    root = os.environ.get('GENFORCE_CACHE_DIR') or os.path.join('~', '.cache', 'genforce')
    return Path(root).expanduser() / 'builtin'


def parse_builtin_path(path: str) -> tuple[str, int]:
    """``'builtin:shapes32'`` -> ``('shapes', 32)``; a DatasetError for anything else."""
    spec = path[len(BUILTIN_PREFIX):] if is_builtin_path(path) else ''
    name = spec.rstrip('0123456789')
    digits = spec[len(name):]
    resolution = int(digits) if digits else 32
    if name not in BUILTIN_DATASETS or resolution < 4 or resolution > 1024 \
            or resolution & (resolution - 1):
        raise DatasetError(f'unknown built-in dataset {path!r}: use builtin:<name><resolution> '
                           f'with name in {", ".join(BUILTIN_DATASETS)} and a power-of-two '
                           'resolution from 4 to 1024, e.g. builtin:shapes32')
    return name, resolution


def resolve_builtin_path(path: str, num_images: int = 4000) -> Path:
    """The file of a ``'builtin:<name><resolution>'`` dataset (e.g. ``builtin:shapes32``),
    written on first use into :func:`builtin_dir` (deterministic, a few seconds)."""
    name, resolution = parse_builtin_path(path)
    return ensure_builtin_dataset(builtin_dir(), name=name, resolution=resolution,
                                  num_images=num_images)
