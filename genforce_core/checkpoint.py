"""Checkpoint files: atomic save, safe load, and reading original-GenForce checkpoints.

Why this module exists:

* A training job killed while writing ``iter_N.pth`` must not destroy the previous file, so
  :func:`save_checkpoint` writes a temp file next to the target and renames it into place.
* A checkpoint is a pickle, and unpickling can run arbitrary code. :func:`load_checkpoint`
  uses ``torch.load(weights_only=True)`` with :data:`SAFE_GLOBALS`, an explicit allowlist of
  the few non-torch types our checkpoints hold (mmengine's message hub, numpy values).
* A checkpoint damaged on disk or in a copy must not load silently. torch writes checkpoints
  as zip archives with a CRC-32 checksum per record; :func:`verify_checksums` recomputes them
  on every load (torch itself never checks them) and a mismatch is a :class:`CheckpointError`
  naming the file and the record. :func:`save_checkpoint` makes sure the checksums are written.
* mmengine 0.10.x calls plain ``torch.load``, which on torch >= 2.6 refuses its own
  checkpoints (``weights_only`` became the default). :func:`install_mmengine_loader` routes
  mmengine's local-file loading through :func:`load_checkpoint`; importing this module does it.
  That loader also drops ``meta['config']``, which mmengine's ``Runner.resume`` would execute
  as Python (genforce never writes it).
"""
from __future__ import annotations

import collections
import contextlib
import importlib
import os
import pickle
import pickletools
import re
import warnings
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import torch

from .errors import CheckpointError

__all__ = [
    'SAFE_GLOBALS', 'save_checkpoint', 'load_checkpoint', 'verify_checksums',
    'install_mmengine_loader', 'checksums_written', 'drop_executable_meta',
    'read_genforce_v1_checkpoint', 'describe_state_dict_mismatch',
]

_TRUST_HINT = ('If you trust where the file comes from, convert it once with `genforce convert` '
               '(which loads it with full pickle) and use the converted file.')


# --------------------------------------------------------------------------- allowlist

def _torch_supports_named_globals() -> bool:
    """torch >= 2.6 accepts ``(obj, 'module.name')`` pairs in ``safe_globals``."""
    version = tuple(int(p) for p in re.findall(r'\d+', torch.__version__)[:2])
    return version >= (2, 6)


_NAMED_GLOBALS = _torch_supports_named_globals()


def _named(obj: Any, name: str) -> Any:
    """Allowlist ``obj`` under the pickle name ``name`` (a module path the file refers to)."""
    if _NAMED_GLOBALS:
        return (obj, name)
    return obj if f'{obj.__module__}.{obj.__qualname__}' == name else None


def _import_attr(module: str, name: str) -> Any | None:
    """``module.name`` if that module imports and has it, else None (names vary by version)."""
    try:
        return getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None


def _numpy_globals() -> list[Any]:
    """ndarray, dtypes and scalars, under both numpy 1.x (``numpy.core``) and 2.x names."""
    try:
        import numpy as np
    except ImportError:
        return []
    entries: list[Any] = [np.ndarray, np.dtype]
    core = 'numpy._core.multiarray'
    if _import_attr(core, '_reconstruct') is None:
        core = 'numpy.core.multiarray'
    for func_name in ('_reconstruct', 'scalar'):
        func = _import_attr(core, func_name)
        if func is None:
            continue
        # A file written under numpy 1.x names numpy.core; under 2.x numpy._core.
        for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
            entries.append(_named(func, f'{module}.{func_name}'))
    dtypes = importlib.import_module('numpy.dtypes') if hasattr(np, 'dtypes') else None
    for name in dir(dtypes) if dtypes is not None else []:
        cls = getattr(dtypes, name)
        if isinstance(cls, type) and issubclass(cls, np.dtype):
            entries.append(cls)
    for name in ('bool_', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32',
                 'uint64', 'float16', 'float32', 'float64', 'complex64', 'complex128',
                 'str_', 'bytes_'):
        scalar_type = getattr(np, name, None)
        if scalar_type is not None:
            entries.append(_named(scalar_type, f'numpy.{scalar_type.__name__}'))
    return entries


def _history_buffer_getattr(owner: Any, name: str) -> Any:
    """Stand-in for ``builtins.getattr`` during loading.

    mmengine's ``HistoryBuffer`` pickles its statistics methods as ``getattr(HistoryBuffer,
    'mean')``. Allowlisting the real ``getattr`` would let a file reach any attribute of any
    allowed object, so only public functions defined on ``HistoryBuffer`` itself are served.
    """
    from mmengine.logging.history_buffer import HistoryBuffer

    member = vars(HistoryBuffer).get(name) if owner is HistoryBuffer else None
    if name.startswith('_') or not callable(member):
        owner_name = getattr(owner, '__qualname__', type(owner).__name__)
        raise pickle.UnpicklingError(f'refused getattr({owner_name}, {name!r})')
    return member


def _mmengine_globals() -> list[Any]:
    """What mmengine 0.10's ``Runner.save_checkpoint`` adds beyond tensors and builtins."""
    buffer_cls = _import_attr('mmengine.logging.history_buffer', 'HistoryBuffer')
    if buffer_cls is None:
        return []
    if _NAMED_GLOBALS:
        return [buffer_cls, (_history_buffer_getattr, 'builtins.getattr')]

    def getattr_alias(owner: Any, name: str) -> Any:  # torch < 2.6 keys globals by their names
        return _history_buffer_getattr(owner, name)

    getattr_alias.__module__ = 'builtins'
    getattr_alias.__name__ = getattr_alias.__qualname__ = 'getattr'
    return [buffer_cls, getattr_alias]


def _build_safe_globals() -> list[Any]:
    entries = [collections.OrderedDict, torch.Size, *_numpy_globals(), *_mmengine_globals()]
    return [e for e in entries if e is not None]


SAFE_GLOBALS: list[Any] = _build_safe_globals()
"""Non-torch globals a genforce/mmengine checkpoint may reference (``safe_globals`` format)."""


@contextlib.contextmanager
def _allowlisted() -> Iterator[None]:
    """Temporarily add :data:`SAFE_GLOBALS` to torch's weights-only allowlist."""
    serialization = torch.serialization
    if hasattr(serialization, 'safe_globals'):
        with serialization.safe_globals(SAFE_GLOBALS):
            yield
    elif hasattr(serialization, 'add_safe_globals'):  # torch 2.4: no context manager
        serialization.add_safe_globals(SAFE_GLOBALS)
        yield
    else:
        yield  # torch < 2.4: tensors and builtins only


# --------------------------------------------------------------------------- save

def save_checkpoint(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` ``obj`` to ``path`` atomically and return the path.

    The data goes to a temp file in the same folder, is fsync'ed, then renamed onto ``path``
    (``os.replace`` is atomic on one file system), so a crash leaves the old file intact.
    """
    path = Path(path).expanduser()
    tmp = path.with_name(f'.{path.name}.tmp-{os.getpid()}')
    try:
        with open(tmp, 'wb') as file, checksums_written():
            torch.save(obj, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, Exception):
            raise CheckpointError(f'could not save checkpoint {path}: {err}') from err
        raise  # KeyboardInterrupt and friends pass through unchanged
    _fsync_dir(path.parent)
    return path


@contextlib.contextmanager
def checksums_written() -> Iterator[None]:
    """Make ``torch.save`` record a CRC-32 per archive record (its default, unless a user
    turned it off with ``torch.serialization.set_crc32_options(False)``)."""
    serialization = torch.serialization
    if not hasattr(serialization, 'get_crc32_options'):  # older torch: always written
        yield
        return
    previous = serialization.get_crc32_options()
    serialization.set_crc32_options(True)
    try:
        yield
    finally:
        serialization.set_crc32_options(previous)


def _fsync_dir(folder: Path) -> None:
    """Persist the rename itself (best effort; not possible on every platform)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# --------------------------------------------------------------------------- load

_REFUSAL_PATTERNS = (
    r'refused (getattr\(.+?\))',
    r'GLOBAL (\S+) was not an allowed global',
    r'unsupported GLOBAL (\S+) whose module',
    r'unrecognized function (.+?)(?: which belongs to|\n|$)',
    r'allowlisted via `add_safe_globals`,? but got (.+?)(?:\n|$)',
    r'Can only \w+ .*? but got (.+?)(?:\n|$)',
)


def _pickle_globals(file: BinaryIO, max_pickles: int = 5) -> set[str]:
    """Names of the globals a pickle stream imports, found without unpickling it.

    A legacy torch file is several pickles in a row, so up to ``max_pickles`` are scanned.
    ``STACK_GLOBAL`` (protocol 4+) takes module and name from the two strings pushed last.
    """
    found: set[str] = set()
    for _ in range(max_pickles):
        strings: list[str] = []
        memo: dict[int, str | None] = {}
        last: str | None = None  # the string the previous opcode pushed, if any
        try:
            for opcode, arg, _pos in pickletools.genops(file):
                name = opcode.name
                if name in ('MEMOIZE', 'PUT', 'BINPUT', 'LONG_BINPUT'):
                    memo[len(memo) if name == 'MEMOIZE' else arg] = last
                    continue  # the stack is unchanged
                last = None
                if name == 'GLOBAL':
                    found.add(str(arg).replace(' ', '.'))
                elif name == 'STACK_GLOBAL' and len(strings) >= 2:
                    found.add(f'{strings[-2]}.{strings[-1]}')
                    del strings[-2:]
                elif 'UNICODE' in name or name.endswith('STRING'):
                    last = str(arg)
                elif name in ('GET', 'BINGET', 'LONG_BINGET'):
                    last = memo.get(arg)
                if last is not None:
                    strings.append(last)
        except Exception:  # end of the stream, or bytes that are not a pickle
            break
    return found


def _allowed_global_names() -> set[str]:
    """Every global name torch's weights-only loader accepts inside :func:`_allowlisted`."""
    unpickler = importlib.import_module('torch._weights_only_unpickler')
    names: set[str] = set()
    with _allowlisted():
        for getter in ('_get_allowed_globals', '_get_user_allowed_globals'):
            names.update(getattr(unpickler, getter, dict)())
    return {_PY2_NAMES.get(name, name) for name in names}


_PY2_NAMES = {'__builtin__.getattr': 'builtins.getattr'}


def _unsafe_globals(path: Path) -> list[str]:
    """Globals in the file that are outside the allowlist, read without unpickling."""
    finder = getattr(torch.serialization, 'get_unsafe_globals_in_checkpoint', None)
    if finder is not None:
        with contextlib.suppress(Exception), _allowlisted():  # fails for non-zip files
            return sorted(finder(str(path)))
    try:
        with open(path, 'rb') as file:
            found = {_PY2_NAMES.get(name, name) for name in _pickle_globals(file)}
        return sorted(found - _allowed_global_names())
    except Exception:
        return []


def _refusal_error(path: Path, err: pickle.UnpicklingError) -> CheckpointError | None:
    """A CheckpointError if torch refused a global/call, None if the pickle is just broken."""
    message = str(err)
    offending = _unsafe_globals(path)
    if not offending:
        for pattern in _REFUSAL_PATTERNS:
            match = re.search(pattern, message)
            if match:
                offending = [match.group(1).strip()]
                break
    if not offending:
        return None
    return CheckpointError(
        f'refused to load checkpoint {path}: it references {", ".join(offending)}, which is '
        'not on the allowlist of types a checkpoint may hold; nothing in it was run. '
        + _TRUST_HINT)


def _corrupt_error(path: Path, err: BaseException) -> CheckpointError:
    detail = str(err)
    if 'WeightsUnpickler error:' in detail:  # drop torch's advice to use weights_only=False
        detail = detail.split('WeightsUnpickler error:', 1)[1].strip().split('\n')[0]
    return CheckpointError(
        f'checkpoint {path} is incomplete or corrupt ({type(err).__name__}: {detail}). '
        'It may have been cut short by a crash or an interrupted copy; use an earlier one.')


_CHUNK = 1 << 22
_warned_unchecked: set[str] = set()


def verify_checksums(path: str | os.PathLike) -> bool:
    """Recompute the CRC-32 of every record of a torch zip checkpoint.

    Returns True when all match, False when the file carries no checksums (torch's legacy
    non-zip format, or saved with checksums turned off); raises :class:`CheckpointError`
    naming the file and the record when one does not match or the archive is damaged.
    """
    path = Path(path)
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as archive:
            records = archive.infolist()
            if not any(info.CRC for info in records if info.file_size):
                return False
            for info in records:
                crc = 0
                with archive.open(info) as member:  # zipfile checks the CRC at the end too
                    while chunk := member.read(_CHUNK):
                        crc = zlib.crc32(chunk, crc)
                if crc != info.CRC:
                    raise zipfile.BadZipFile(f'Bad CRC-32 for file {info.filename!r}')
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as err:
        raise CheckpointError(
            f'checkpoint {path} is corrupt: its checksums do not match its content ({err}). '
            'The file was damaged after it was written (disk, copy or transfer); use an '
            'earlier checkpoint or copy it again.') from None
    return True


def _verify_or_warn(path: Path) -> None:
    if not verify_checksums(path) and str(path) not in _warned_unchecked:
        _warned_unchecked.add(str(path))
        warnings.warn(f'checkpoint {path} carries no checksums (written by an old torch or '
                      'with checksums turned off): damage to it cannot be detected',
                      stacklevel=3)


def load_checkpoint(path: str | os.PathLike, map_location: Any = 'cpu') -> dict:
    """Load a checkpoint without running code from it (weights-only + :data:`SAFE_GLOBALS`),
    after checking its checksums (:func:`verify_checksums`)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f'checkpoint {path} does not exist (or is not a file)')
    try:
        _verify_or_warn(path)
    except PermissionError as err:
        raise CheckpointError(f'cannot read checkpoint {path}: {err}') from None
    try:
        with _allowlisted():
            obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise (_refusal_error(path, err) or _corrupt_error(path, err)) from None
    except PermissionError as err:
        raise CheckpointError(f'cannot read checkpoint {path}: {err}') from None
    except (EOFError, ValueError, OSError) as err:  # torch reports a cut zip as EINVAL
        raise _corrupt_error(path, err) from None
    except RuntimeError as err:
        if re.search(r'zip|PytorchStreamReader|EOF|magic number|truncat', str(err), re.I):
            raise _corrupt_error(path, err) from None
        raise CheckpointError(f'could not load checkpoint {path}: {err}') from err
    except Exception as err:
        raise CheckpointError(
            f'could not load checkpoint {path}: {type(err).__name__}: {err}') from err
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f'checkpoint {path} holds a {type(obj).__name__}, expected a dict')
    return obj  # type: ignore[return-value]


# --------------------------------------------------------------------------- mmengine

def load_from_local_safe(filename: str, map_location: Any = None) -> dict:
    """Drop-in for mmengine's ``load_from_local`` that loads through :func:`load_checkpoint`.

    ``meta['config']`` is dropped: mmengine's ``Runner.resume`` runs it through
    ``Config.fromstring`` (executing it) only to compare GPU counts, and genforce never
    writes it, so in a file it can only be an attack. mmengine logs the loader's name from
    its 11th character on: "local_safe".
    """
    filename = os.path.expanduser(filename)
    if not os.path.isfile(filename):
        # mmengine callers expect FileNotFoundError here.
        raise FileNotFoundError(f'{filename} can not be found.')
    checkpoint = load_checkpoint(filename, map_location=map_location)
    drop_executable_meta(checkpoint)
    return checkpoint


def drop_executable_meta(checkpoint: Mapping[str, Any]) -> None:
    """Remove the entries of ``checkpoint['meta']`` that mmengine would evaluate as code."""
    meta = checkpoint.get('meta')
    if isinstance(meta, dict):
        meta.pop('config', None)


def install_mmengine_loader() -> None:
    """Make mmengine load local checkpoints with :func:`load_checkpoint` (idempotent)."""
    from mmengine.runner.checkpoint import CheckpointLoader

    if CheckpointLoader._schemes.get('') is not load_from_local_safe:
        CheckpointLoader.register_scheme(prefixes='', loader=load_from_local_safe, force=True)


# --------------------------------------------------------------------------- GenForce v1

_V1_KEYS = ('models', 'running_metadata', 'optimizers', 'learning_rates')
_V1_MODEL_NAMES = {'generator': 'generator', 'discriminator': 'discriminator',
                   'generator_smooth': 'generator_ema'}


def read_genforce_v1_checkpoint(path: str | os.PathLike) -> dict:
    """Read an original GenForce (v1) checkpoint into genforce's names.

    v1 saves ``{'models': {name: state_dict}, 'running_metadata': ..., 'optimizers': ...,
    'learning_rates': ...}`` and calls the EMA generator ``generator_smooth``. Returns
    ``generator``, ``discriminator``, ``generator_ema`` (those present), ``meta``,
    ``optimizers`` and ``learning_rates`` (empty dicts when absent).
    """
    raw = load_checkpoint(path)
    models = raw.get('models')
    if not isinstance(models, Mapping):
        raise CheckpointError(
            f'checkpoint {path} is not an original GenForce checkpoint: expected the keys '
            f'{list(_V1_KEYS)} (at least "models"), found {sorted(map(str, raw))}')
    result: dict[str, Any] = {}
    for v1_name, name in _V1_MODEL_NAMES.items():
        if v1_name in models:
            result[name] = models[v1_name]
    if not result:
        raise CheckpointError(
            f'checkpoint {path}: "models" holds none of {list(_V1_MODEL_NAMES)}, '
            f'found {sorted(map(str, models))}')
    result['meta'] = dict(raw.get('running_metadata') or {})
    result['optimizers'] = dict(raw.get('optimizers') or {})
    result['learning_rates'] = dict(raw.get('learning_rates') or {})
    return result


# --------------------------------------------------------------------------- mismatch

def _shape(value: Any) -> tuple[int, ...] | None:
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, (torch.Size, tuple, list)):
        return tuple(value)
    return None


def _listing(title: str, items: list[str], limit: int) -> str:
    shown = ', '.join(items[:limit])
    more = f', ... ({len(items) - limit} more)' if len(items) > limit else ''
    return f'{title} ({len(items)}): {shown}{more}'


def describe_state_dict_mismatch(expected: Mapping[str, Any], got: Mapping[str, Any],
                                 limit: int = 10) -> str | None:
    """Say how ``got`` differs from ``expected`` (missing/unexpected keys, shapes), or None.

    Meant for errors like "this resume checkpoint comes from a different model": values may
    be tensors or shapes; the first ``limit`` of each kind are listed with their counts.
    """
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    shapes = []
    for key in expected:
        if key in got:
            want, have = _shape(expected[key]), _shape(got[key])
            if want is not None and have is not None and want != have:
                shapes.append(f'{key}: expected {list(want)}, got {list(have)}')
    parts = [_listing(title, items, limit) for title, items in (
        ('missing keys', missing), ('unexpected keys', unexpected),
        ('shape mismatches', shapes)) if items]
    return '; '.join(parts) if parts else None


install_mmengine_loader()
