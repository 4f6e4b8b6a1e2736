"""Write images as a zip (NVIDIA's layout) or an LMDB, atomically.

Zip: ``00000/img00000000.png`` ... plus ``dataset.json`` ``{"labels": [[name, label], ...]}``
(or ``null``). LMDB: keys ``b'00000000'`` ... with PNG bytes, and ``b'__meta__'`` holding JSON
``{count, resolution, channels, labels, names, genforce}``. Both are written to
``DEST + '.tmp-<pid>'`` and renamed when complete, so a killed run leaves no half dataset and
two processes writing the same DEST never write into each other's file.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from genforce_core.errors import DatasetError

from .labels import check_labels
from .readers import LABELS_FILE, LMDB_META_KEY, lmdb_key

FORMATS = ('zip', 'lmdb')
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same images give the same bytes


def zip_entry_name(index: int) -> str:
    """NVIDIA's archive name of image ``index``: ``00000/img00000000.png``."""
    return f'{index // 1000:05d}/img{index:08d}.png'


def infer_format(dest: str | os.PathLike, fmt: str | None) -> str:
    """``fmt`` if given, else ``zip`` for a ``.zip`` destination and ``lmdb`` otherwise."""
    if fmt is None:
        fmt = 'zip' if str(dest).lower().endswith('.zip') else 'lmdb'
    if fmt not in FORMATS:
        raise DatasetError(f'Unknown dataset format {fmt!r}; choose one of {", ".join(FORMATS)}.')
    return fmt


def encode_png(array: np.ndarray, compress_level: int = 1) -> bytes:
    """PNG bytes of a uint8 ``HWC`` (C = 1, 3 or 4) or ``HW`` array."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format='png', compress_level=compress_level)
    return buf.getvalue()


def _check_image(name: str, array: np.ndarray, first: tuple | None) -> tuple:
    if not isinstance(array, np.ndarray) or array.dtype != np.uint8:
        raise DatasetError(f'Image {name}: expected a uint8 numpy array, got '
                           f'{getattr(array, "dtype", type(array).__name__)}.')
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise DatasetError(f'Image {name} has shape {array.shape}; expected HxWxC with C in '
                           '1, 3, 4.')
    h, w, c = array.shape
    if h != w:
        raise DatasetError(f'Image {name} is {w}x{h}, not square. Use --transform center-crop '
                           'or center-crop-wide with --resolution R.')
    if first is not None and first[1] != array.shape:
        raise DatasetError(f'Image {name} has shape {array.shape} (HxWxC) but {first[0]} has '
                           f'{first[1]}; all images must match. Pass --resolution R.')
    return first or (name, array.shape)


class _ZipSink:
    def __init__(self, path: Path):
        self.zip = zipfile.ZipFile(path, 'w', compression=zipfile.ZIP_STORED)

    def add(self, index: int, png: bytes) -> str:
        name = zip_entry_name(index)
        self._write(name, png)
        return name

    def _write(self, name: str, data: bytes) -> None:
        info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
        info.external_attr = 0o644 << 16
        self.zip.writestr(info, data)

    def finish(self, meta: dict, labels: list | None) -> None:
        table = {'labels': labels, 'genforce': meta}
        self._write(LABELS_FILE, json.dumps(table, sort_keys=True).encode())
        self.zip.close()

    def abort(self) -> None:
        self.zip.close()


class _LMDBSink:
    _BATCH = 256

    def __init__(self, path: Path):
        import lmdb

        self.map_size = 1 << 28
        self.env = lmdb.open(str(path), map_size=self.map_size, subdir=True, lock=True,
                             meminit=False, map_async=True)
        self.pending: list[tuple[bytes, bytes]] = []

    def _flush(self) -> None:
        import lmdb

        while self.pending:
            try:
                with self.env.begin(write=True) as txn:
                    for key, value in self.pending:
                        txn.put(key, value)
                self.pending = []
            except lmdb.MapFullError:
                self.map_size *= 2
                self.env.set_mapsize(self.map_size)

    def add(self, index: int, png: bytes) -> str:
        key = lmdb_key(index)
        self.pending.append((key, png))
        if len(self.pending) >= self._BATCH:
            self._flush()
        return key.decode('ascii')

    def finish(self, meta: dict, labels: list | None) -> None:
        full = dict(meta, labels=labels)
        self.pending.append((LMDB_META_KEY, json.dumps(full, sort_keys=True).encode()))
        self._flush()
        self.env.sync(True)
        self.env.close()

    def abort(self) -> None:
        self.env.close()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def write_dataset(images: Iterable[tuple[str, np.ndarray]], dest: str | os.PathLike,
                  fmt: str | None = None, labels: Mapping[str, Any] | None = None, *,
                  meta: Mapping[str, Any] | None = None, total: int | None = None,
                  overwrite: bool = False, compress_level: int = 1,
                  progress: bool = True) -> Path:
    """Write ``(name, uint8 HWC array)`` pairs to ``dest`` as a zip or an LMDB; return ``dest``.

    ``labels`` maps each image name to an int class or a list of numbers (checked by
    :func:`~genforce_core.data.labels.check_labels`); an image without a label or a label
    without an image is an error naming it. ``meta`` is stored under the
    ``genforce`` key (zip) or merged into ``__meta__`` (LMDB). ``fmt`` defaults from the suffix.
    """
    dest = Path(dest)
    fmt = infer_format(dest, fmt)
    if dest.exists() and not overwrite:
        raise DatasetError(f'{dest} already exists. Delete it or pass overwrite=True '
                           '(CLI: --overwrite).')
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f'{dest.name}.tmp-{os.getpid()}')
    _remove(tmp)  # left over from a killed run of the same pid
    sink = _ZipSink(tmp) if fmt == 'zip' else _LMDBSink(tmp)
    written: list[tuple[str, str]] = []  # (source name, stored name)
    first = None
    try:
        bar = tqdm(images, total=total, desc=f'Writing {dest.name}', unit='img',
                   disable=not progress, leave=False)
        for index, (name, array) in enumerate(bar):
            first = _check_image(name, array, first)
            if labels is not None and name not in labels:
                raise DatasetError(f'Image {name} has no entry in the labels ({len(labels)} '
                                   'entries). Add it or drop the labels.')
            written.append((name, sink.add(index, encode_png(array, compress_level))))
        if not written:
            raise DatasetError(f'No images to write to {dest}: the source is empty.')
        label_table = None
        if labels is not None:
            names = {name for name, _ in written}
            extra = [k for k in labels if k not in names]
            if extra:
                raise DatasetError(f'The label entry {extra[0]!r} names no image of the source '
                                   f'({len(extra)} such entries). Remove it or add the image.')
            checked = check_labels({name: labels[name] for name, _ in written}, 'labels')
            label_table = [[stored, checked[name]] for name, stored in written]
        h, _, c = first[1]
        info = dict(meta or {})
        header = dict(count=len(written), resolution=h, channels=c)
        if fmt == 'zip':
            sink.finish(dict(info, **header), label_table)
        else:
            sink.finish(dict(header, genforce=dict(info, **header), names=[n for n, _ in written]),
                        label_table)
    except BaseException:
        sink.abort()
        _remove(tmp)
        raise
    if dest.is_dir():  # a file is replaced atomically by os.replace; a directory is not
        _remove(dest)
    os.replace(tmp, dest)
    if progress:
        print(f'Wrote {len(written)} images ({h}x{h}, {c} channels) to {dest}')
    return dest


def read_dataset_meta(path: str | os.PathLike) -> dict:
    """The ``genforce`` metadata stored by :func:`write_dataset` (empty dict if none)."""
    from .readers import open_reader

    reader = open_reader(path)
    try:
        meta = reader.meta()
        return dict(meta.get('genforce', {})) if reader.format == 'lmdb' else dict(meta)
    finally:
        reader.close()
