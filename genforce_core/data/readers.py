"""Storage readers: list the images of a folder, a zip or an LMDB and read their bytes.

A reader knows nothing about pixels; it gives entry names, raw bytes and the raw label table.
Handles (zip file, LMDB environment) are opened lazily and once per process, and are dropped
when pickled, so a reader can be sent to DataLoader workers (fork or spawn).
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

from genforce_core.errors import DatasetError

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.webp', '.bmp')
LABELS_FILE = 'dataset.json'
LMDB_META_KEY = b'__meta__'
LMDB_DATA_FILE = 'data.mdb'
MAX_LABELS_BYTES = 1 << 30  # a dataset.json this large is a zip bomb, not a label table
MAX_IMAGE_BYTES = 1 << 28  # no training image file is 256 MiB; a zip entry that is, is a bomb


def is_image_name(name: str) -> bool:
    """Whether ``name`` has one of the supported image extensions (case-insensitive)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def lmdb_key(index: int) -> bytes:
    """The LMDB key of image ``index`` (zero-padded decimal, as bytes)."""
    return f'{index:08d}'.encode('ascii')


class StorageReader:
    """Base class: ``names`` are the image entries, sorted; ``read(name)`` returns bytes."""

    format = 'unknown'

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.names: list[str] = []

    def read(self, name: str) -> bytes:
        raise NotImplementedError

    def read_prefix(self, name: str, size: int = 65536) -> bytes:
        """The first ``size`` bytes of an entry (enough for an image header)."""
        return self.read(name)[:size]

    def raw_labels(self) -> Any:
        """The ``labels`` value of the storage's label table, or None when it has none."""
        return None

    def meta(self) -> dict:
        """Extra metadata stored with the dataset (``dataset.json`` / ``__meta__``)."""
        return {}

    def describe(self, name: str) -> str:
        """A human-readable location of ``name``, used in error messages."""
        return f'{self.path}:{name}'

    def close(self) -> None:
        """Release the per-process handle (reopened on the next read)."""

    def _owns_handle(self) -> bool:
        return (getattr(self, '_handle', None) is not None
                and getattr(self, '_pid', None) == os.getpid())

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for key in ('_handle', '_pid'):
            state.pop(key, None)
        return state

    def __del__(self) -> None:  # pragma: no cover - best effort at interpreter shutdown
        try:
            self.close()
        except Exception:
            pass


def _check_labels_size(size: int, where: str) -> None:
    if size > MAX_LABELS_BYTES:
        raise DatasetError(f'{where} holds {size} bytes, more than the {MAX_LABELS_BYTES} a '
                           'label table may have. Recreate the dataset with `genforce '
                           'prepare-dataset`.')


def _load_labels_json(data: bytes, where: str) -> dict:
    try:
        table = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise DatasetError(f'{where} is not valid JSON ({exc}). Fix or delete it.') from exc
    if not isinstance(table, dict):
        raise DatasetError(f'{where} must hold a JSON object like {{"labels": [[name, label], '
                           f'...]}}, got {type(table).__name__}.')
    return table


class FolderReader(StorageReader):
    """A folder of image files, searched recursively; names are POSIX paths relative to it."""

    format = 'folder'

    def __init__(self, path: str | os.PathLike):
        super().__init__(path)
        names = []
        for dirpath, dirnames, filenames in os.walk(self.path, followlinks=True):
            dirnames.sort()
            rel = Path(dirpath).relative_to(self.path)
            for filename in filenames:
                if is_image_name(filename):
                    names.append((rel / filename).as_posix())
        self.names = sorted(names)
        self._table: dict | None = None

    def read(self, name: str) -> bytes:
        return (self.path / name).read_bytes()

    def read_prefix(self, name: str, size: int = 65536) -> bytes:
        with open(self.path / name, 'rb') as f:
            return f.read(size)

    def _labels_table(self) -> dict:
        if self._table is None:
            file = self.path / LABELS_FILE
            self._table = {}
            if file.is_file():
                _check_labels_size(file.stat().st_size, str(file))
                self._table = _load_labels_json(file.read_bytes(), str(file))
        return self._table

    def raw_labels(self) -> Any:
        return self._labels_table().get('labels')

    def meta(self) -> dict:
        return self._labels_table().get('genforce', {})

    def describe(self, name: str) -> str:
        return str(self.path / name)


class ZipReader(StorageReader):
    """A zip archive with images anywhere inside (NVIDIA's ``00000/img00000000.png`` too)."""

    format = 'zip'

    def __init__(self, path: str | os.PathLike):
        super().__init__(path)
        try:
            names = self._zip().namelist()
        except (zipfile.BadZipFile, OSError) as exc:
            raise DatasetError(f'{self.path} is not a readable zip file ({exc}). Recreate it '
                               'with `genforce prepare-dataset SRC DEST.zip`.') from exc
        self.names = sorted(n for n in names if is_image_name(n) and not n.endswith('/'))
        self._table: dict | None = None

    def _zip(self) -> zipfile.ZipFile:
        # One handle per process: a forked worker must not share the parent's file offset.
        if getattr(self, '_pid', None) != os.getpid() or getattr(self, '_handle', None) is None:
            self._handle = zipfile.ZipFile(self.path)
            self._pid = os.getpid()
        return self._handle

    def read(self, name: str) -> bytes:
        # zipfile stops inflating at the declared size, so checking it is enough.
        size = self._zip().getinfo(name).file_size
        if size > MAX_IMAGE_BYTES:
            raise DatasetError(f'{self.describe(name)} inflates to {size} bytes, more than the '
                               f'{MAX_IMAGE_BYTES} an image file may hold (a zip bomb?)')
        return self._zip().read(name)

    def read_prefix(self, name: str, size: int = 65536) -> bytes:
        with self._zip().open(name) as f:
            return f.read(size)

    def _labels_table(self) -> dict:
        if self._table is None:
            table = {}
            if LABELS_FILE in self._zip().namelist():
                where = f'{self.path}:{LABELS_FILE}'
                # zipfile stops inflating at the declared size, so checking it is enough.
                _check_labels_size(self._zip().getinfo(LABELS_FILE).file_size, where)
                table = _load_labels_json(self._zip().read(LABELS_FILE), where)
            self._table = table
        return self._table

    def raw_labels(self) -> Any:
        return self._labels_table().get('labels')

    def meta(self) -> dict:
        return self._labels_table().get('genforce', {})

    def close(self) -> None:
        if self._owns_handle():
            self._handle.close()
        self._handle = None


class LMDBReader(StorageReader):
    """An LMDB directory written by :func:`genforce_core.data.writer.write_dataset`."""

    format = 'lmdb'

    def __init__(self, path: str | os.PathLike):
        super().__init__(path)
        raw = self._get(LMDB_META_KEY)
        if raw is None:
            raise DatasetError(f'{self.path} is an LMDB without a __meta__ entry, so it was not '
                               'written by genforce. Convert the images with `genforce '
                               'prepare-dataset SRC DEST --format lmdb`.')
        try:
            self._meta = json.loads(raw)
            count = self._meta['count']
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            raise DatasetError(f'{self.path}: the __meta__ entry is not valid JSON with a '
                               f'"count" ({exc}). Recreate the LMDB with `genforce '
                               'prepare-dataset`.') from exc
        stored = self._env().stat()['entries'] - 1  # every key but __meta__ is an image
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= stored:
            raise DatasetError(f'{self.path}: __meta__ says "count": {count!r:.40} but the LMDB '
                               f'holds {stored} images. Recreate it with `genforce '
                               'prepare-dataset`.')
        self.names = [lmdb_key(i).decode('ascii') for i in range(count)]

    def _env(self):
        if getattr(self, '_pid', None) != os.getpid() or getattr(self, '_handle', None) is None:
            self._handle = _acquire_lmdb_env(self.path)
            self._pid = os.getpid()
        return self._handle

    def _get(self, key: bytes) -> bytes | None:
        with self._env().begin(write=False) as txn:
            return txn.get(key)

    def read(self, name: str) -> bytes:
        data = self._get(name.encode('ascii'))
        if data is None:
            raise DatasetError(f'{self.describe(name)}: the key is missing although __meta__ '
                               'counts it. The LMDB is incomplete; recreate it with `genforce '
                               'prepare-dataset`.')
        return data

    def read_prefix(self, name: str, size: int = 65536) -> bytes:
        with self._env().begin(write=False, buffers=True) as txn:
            buf = txn.get(name.encode('ascii'))
            if buf is None:
                return self.read(name)  # raises the explanatory error
            return bytes(buf[:size])

    def raw_labels(self) -> Any:
        return self._meta.get('labels')

    def meta(self) -> dict:
        return dict(self._meta)

    def describe(self, name: str) -> str:
        return f'{self.path} (LMDB key {name})'

    def close(self) -> None:
        if self._owns_handle():
            _release_lmdb_env(self._handle)
        self._handle = None


# lmdb allows one Environment per path and process, so readers of the same LMDB share it
# (reference-counted). The key holds the pid (never reuse an environment across fork) and the
# data file's identity (a dataset rewritten in place gets a fresh environment).
_LMDB_ENVS: dict[tuple, list] = {}


def _acquire_lmdb_env(path: Path):
    import lmdb

    try:
        stat = (path / LMDB_DATA_FILE).stat()
    except OSError as exc:
        raise DatasetError(f'{path} is not an LMDB directory ({exc}).') from exc
    key = (os.getpid(), str(path.resolve()), stat.st_ino, stat.st_mtime_ns)
    entry = _LMDB_ENVS.get(key)
    if entry is None:
        for old in [k for k in _LMDB_ENVS if k[:2] == key[:2]]:  # stale: file was replaced
            _LMDB_ENVS.pop(old)[0].close()
        try:
            env = lmdb.open(str(path), readonly=True, lock=False, readahead=False,
                            meminit=False, max_readers=512)
        except lmdb.Error as exc:
            raise DatasetError(f'{path} cannot be opened as an LMDB ({exc}).') from exc
        entry = _LMDB_ENVS[key] = [env, 0]
    entry[1] += 1
    return entry[0]


def _close_inherited_lmdb_envs() -> None:
    """In a forked child: close the parent's environments so they can be reopened here.

    py-lmdb remembers open environments per process and that memory survives fork, so a
    DataLoader worker could not open an LMDB its parent had open. Closing the inherited copy
    only unmaps the child's view; the parent's environment is untouched.
    """
    envs = [entry[0] for entry in _LMDB_ENVS.values()]
    _LMDB_ENVS.clear()
    for env in envs:
        try:
            env.close()
        except Exception:  # pragma: no cover - nothing useful to do in a fresh child
            pass


if hasattr(os, 'register_at_fork'):
    os.register_at_fork(after_in_child=_close_inherited_lmdb_envs)


def _release_lmdb_env(env) -> None:
    for key, entry in list(_LMDB_ENVS.items()):
        if entry[0] is env:
            entry[1] -= 1
            if entry[1] <= 0:
                del _LMDB_ENVS[key]
                env.close()
            return


def open_reader(path: str | os.PathLike) -> StorageReader:
    """Detect the storage of ``path`` (LMDB dir, folder, or zip) and return its reader."""
    path = Path(path)
    if path.is_dir():
        if (path / LMDB_DATA_FILE).is_file():
            return LMDBReader(path)
        return FolderReader(path)
    if path.is_file():
        if path.suffix.lower() == '.zip' or zipfile.is_zipfile(path):
            return ZipReader(path)
        raise DatasetError(f'{path} is a file but not a zip archive. Point the dataset to a '
                           'folder of images, a .zip or an LMDB directory.')
    raise DatasetError(f'Dataset path {path} does not exist. Create it with `genforce '
                       'prepare-dataset SRC DEST` or fix the path in the config.')
