"""Image datasets over a folder, a zip or an LMDB, with resolution checks, labels and x-flip.

At construction the dataset reads every image header (cheap: size and mode only) and checks
that the images are square, of one resolution and of one colour mode; with ``skip_bad=True``
it also decodes each image once and drops those that fail. Pixels are decoded in
``__getitem__``; a decode failure there names the entry.
"""
from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from genforce_core.errors import DatasetError
from genforce_core.registry import DATASETS

from .builtin import is_builtin_path, resolve_builtin_path
from .images import check_mode, open_image, to_8bit
from .labels import count_classes, encode_labels, label_vector, labels_to_mapping, match_labels
from .readers import FolderReader, LMDBReader, StorageReader, ZipReader, open_reader

# PIL mode -> the mode we decode to. Modes with the same target are treated as one mode.
_CANONICAL_MODES = {
    '1': 'L', 'L': 'L', 'I': 'L', 'I;16': 'L', 'I;16B': 'L', 'I;16L': 'L', 'F': 'L',
    'LA': 'RGBA', 'PA': 'RGBA', 'RGBA': 'RGBA', 'RGBa': 'RGBA', 'La': 'RGBA',
    'RGB': 'RGB', 'P': 'RGB', 'CMYK': 'RGB', 'YCbCr': 'RGB', 'LAB': 'RGB', 'HSV': 'RGB',
    'RGBX': 'RGB',
}
_MODE_CHANNELS = {'L': 1, 'RGB': 3, 'RGBA': 4}
_CHANNEL_MODES = {v: k for k, v in _MODE_CHANNELS.items()}
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError,
                  DatasetError)


def _canonical_mode(img: Image.Image) -> str:
    if img.mode == 'P' and 'transparency' in img.info:
        return 'RGBA'
    return _CANONICAL_MODES.get(img.mode, img.mode)


def _header(data: bytes) -> tuple[tuple[int, int], str]:
    with open_image(data) as img:
        check_mode(img)
        return img.size, _canonical_mode(img)


def _probe(reader: StorageReader, name: str) -> tuple[tuple[int, int], str]:
    """Size and canonical mode of an entry from its header; raises a decode error if bad."""
    try:
        return _header(reader.read_prefix(name))
    except _DECODE_ERRORS:
        # A long header (e.g. JPEG with a big EXIF block) may not fit in the prefix.
        return _header(reader.read(name))


class ImageDataset(Dataset):
    """Square uint8 images from a folder, ``.zip`` or LMDB directory (detected from ``path``).

    ``dataset[i]`` is ``dict(img=uint8 [C, R, R], label=float32 [c_dim], idx=i)``. With
    ``xflip`` the length doubles and indices ``>= n`` are the mirrored copies of ``i - n``.
    ``max_size`` keeps a fixed random subset (seeded by ``max_size_seed``, as NVIDIA's code).
    ``skip_bad`` drops entries that cannot be decoded (one warning gives the count); size and
    colour-mode mismatches are always errors because they need ``genforce prepare-dataset``.
    ``path='builtin:shapes32'`` names the built-in shapes dataset, written on first use.
    """

    expected_format: str | None = None

    def __init__(self, path: str | os.PathLike, resolution: int | None = None,
                 use_labels: bool = False, xflip: bool = False, max_size: int | None = None,
                 skip_bad: bool = False, channels: int = 3, max_size_seed: int = 0):
        if channels not in _CHANNEL_MODES:
            raise DatasetError(f'channels must be 1, 3 or 4, got {channels}.')
        if is_builtin_path(path):
            path = resolve_builtin_path(str(path))
        self.path = str(path)
        self.reader = open_reader(path)
        if self.expected_format and self.reader.format != self.expected_format:
            raise DatasetError(f'{type(self).__name__} expects a {self.expected_format} dataset '
                               f'but {path} is a {self.reader.format}. Use type=ImageDataset '
                               'to detect the storage automatically.')
        self.xflip = bool(xflip)
        self._use_labels = bool(use_labels)
        self._channels = channels
        self._mode = _CHANNEL_MODES[channels]
        names = list(self.reader.names)
        if not names:
            raise DatasetError(f'Dataset {path} ({self.reader.format}) holds no images '
                               '(looked for .png, .jpg, .jpeg, .webp, .bmp). Check the path.')
        names = self._scan(names, resolution, skip_bad)
        if max_size is not None and len(names) > max_size:
            keep = np.random.RandomState(max_size_seed).permutation(len(names))[:max_size]
            names = [names[i] for i in sorted(keep)]
        self.names = names
        self._labels, self._label_dim = self._load_labels()

    # ----------------------------------------------------------------------------- checks
    def _scan(self, names: list[str], resolution: int | None, skip_bad: bool) -> list[str]:
        describe = self.reader.describe
        good, bad = [], []
        first_mode: tuple[str, str] | None = None
        first_name: str | None = None
        for name in names:
            try:
                size, mode = _probe(self.reader, name)
                if skip_bad:
                    self._decode(name)
            except _DECODE_ERRORS as exc:
                if skip_bad:
                    bad.append(name)
                    continue
                raise DatasetError(f'{describe(name)}: cannot read the image ({exc}). Delete or '
                                   'replace the file, or pass skip_bad=True to skip it.') from exc
            width, height = size
            if width != height:
                raise DatasetError(
                    f'{describe(name)} is {width}x{height}, not square. Crop the images with '
                    f'`genforce prepare-dataset SRC DEST --resolution {resolution or height} '
                    '--transform center-crop`.')
            if resolution is None:
                resolution, first_name = width, name
            elif width != resolution:
                expected = (f'the first image {describe(first_name)} is '
                            f'{resolution}x{resolution}' if first_name else
                            f'the dataset was asked for resolution={resolution}')
                raise DatasetError(
                    f'{describe(name)} is {width}x{height} but {expected}. Resize the dataset '
                    f'with `genforce prepare-dataset SRC DEST --resolution {resolution}`.')
            if first_mode is None:
                first_mode = (name, mode)
            elif mode != first_mode[1]:
                raise DatasetError(
                    f'{describe(name)} has colour mode {mode} but {describe(first_mode[0])} has '
                    f'{first_mode[1]}; all images must have one mode. Convert them with '
                    '`genforce prepare-dataset SRC DEST` (writes RGB).')
            good.append(name)
        if bad:
            warnings.warn(f'Skipped {len(bad)} unreadable image(s) of {len(names)} in {self.path} '
                          f'(first: {describe(bad[0])}).', stacklevel=3)
        if not good:
            raise DatasetError(f'Dataset {self.path} has no readable images '
                               f'({len(bad)} bad entries skipped).')
        if first_mode[1] != self._mode:
            raise DatasetError(
                f'{describe(first_mode[0])} and the other images have colour mode {first_mode[1]} '
                f'({_MODE_CHANNELS.get(first_mode[1], "?")} channels) but the dataset was asked '
                f'for channels={self._channels} ({self._mode}). Set channels='
                f'{_MODE_CHANNELS.get(first_mode[1], 3)} or convert the images with `genforce '
                'prepare-dataset SRC DEST`.')
        self._resolution = int(resolution)
        return good

    def _load_labels(self) -> tuple[np.ndarray, int]:
        if not self._use_labels:
            return np.zeros((len(self.names), 0), np.float32), 0
        where = f'labels of {self.path}'
        mapping = labels_to_mapping(self.reader.raw_labels(), where)
        if mapping is None:
            raise DatasetError(
                f'use_labels=True but {self.path} has no labels (no dataset.json, or "labels": '
                'null). Write them with `genforce prepare-dataset SRC DEST --labels FILE`, or '
                'set use_labels=False.')
        # Entries dropped by skip_bad / max_size keep their labels; the one-hot width still
        # counts every class of the table.
        kept, stored = set(self.names), set(self.reader.names)
        width = count_classes(mapping)
        mapping = {k: v for k, v in mapping.items() if k in kept or k not in stored}
        values = match_labels(mapping, self.names, where, self.reader.describe)
        return encode_labels(values, num_classes=width)

    # ----------------------------------------------------------------------------- access
    def _decode(self, name: str) -> np.ndarray:
        with open_image(self.reader.read(name)) as img:
            img.load()
            arr = np.asarray(to_8bit(img, self._mode))
        if arr.ndim == 2:
            arr = arr[:, :, None]
        return arr

    def __len__(self) -> int:
        return len(self.names) * (2 if self.xflip else 1)

    def __getitem__(self, idx: int) -> dict[str, Any]:
        n = len(self.names)
        if not -len(self) <= idx < len(self):
            raise IndexError(f'index {idx} out of range for a dataset of {len(self)}')
        idx = int(idx) % len(self)
        raw = idx % n
        name = self.names[raw]
        try:
            arr = self._decode(name)
        except _DECODE_ERRORS as exc:
            raise DatasetError(f'{self.reader.describe(name)}: cannot decode the image ({exc}). '
                               'Delete or replace it, or pass skip_bad=True.') from exc
        if arr.shape[0] != self._resolution or arr.shape[1] != self._resolution:
            raise DatasetError(f'{self.reader.describe(name)} is {arr.shape[1]}x{arr.shape[0]}, '
                               f'expected {self._resolution}x{self._resolution}.')
        arr = arr.transpose(2, 0, 1)
        if idx >= n:
            arr = arr[:, :, ::-1]
        arr = np.ascontiguousarray(arr)
        if not arr.flags.writeable:  # PIL's buffer; torch wants memory it may write
            arr = arr.copy()
        img = torch.from_numpy(arr)
        return dict(img=img, label=torch.from_numpy(self.get_label(raw)), idx=idx)

    def get_label(self, idx: int) -> np.ndarray:
        """The float32 label vector of dataset index ``idx`` (x-flipped copies share it)."""
        return label_vector(self._labels, self._label_dim, int(idx) % len(self.names))

    # ----------------------------------------------------------------------------- properties
    @property
    def resolution(self) -> int:
        return self._resolution

    @property
    def num_channels(self) -> int:
        return self._channels

    @property
    def label_dim(self) -> int:
        return self._label_dim

    @property
    def has_labels(self) -> bool:
        return self.label_dim > 0

    @property
    def num_images(self) -> int:
        """Distinct images (``len`` counts x-flipped copies too)."""
        return len(self.names)

    @property
    def metainfo(self) -> dict:
        return dict(path=self.path, format=self.reader.format, resolution=self.resolution,
                    num_channels=self.num_channels, label_dim=self.label_dim,
                    has_labels=self.has_labels, num_images=self.num_images, xflip=self.xflip,
                    length=len(self))

    def __repr__(self) -> str:
        info = ', '.join(f'{k}={v!r}' for k, v in self.metainfo.items())
        return f'{type(self).__name__}({info})'


DATASETS.register_module(module=ImageDataset)


@DATASETS.register_module()
class ImageFolderDataset(ImageDataset):
    """:class:`ImageDataset` that insists on a folder of image files."""

    expected_format = FolderReader.format


@DATASETS.register_module()
class ZipDataset(ImageDataset):
    """:class:`ImageDataset` that insists on a ``.zip`` archive."""

    expected_format = ZipReader.format


@DATASETS.register_module()
class LMDBDataset(ImageDataset):
    """:class:`ImageDataset` that insists on an LMDB directory written by genforce."""

    expected_format = LMDBReader.format
