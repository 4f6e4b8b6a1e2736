"""Third-party weight files (Inception for FID, VGG16 for inversion) read without trusting them.

A ``.pth``/``.pt`` file is a pickle (alone, or in a zip archive with the tensor data), and a
pickle can name any Python function to call. Before torch or our own reader opens one,
:func:`check_weight_file` checks, without unpickling or inflating anything:

* the size: the file, and the declared uncompressed size of all its zip members, must stay
  under :func:`max_weight_bytes` (1 GiB, or ``$GENFORCE_MAX_WEIGHT_BYTES``);
* the zip members: ``torch.save`` and ``torch.jit.save`` store tensors and pickles
  uncompressed, so a compressed member (the usual decompression bomb) is refused, except the
  TorchScript source under ``<archive>/code/``, which torch compresses and nothing here reads;
  a stored member must occupy as many bytes as it declares, and no name may appear twice;
* the format: a zip archive or a torch pickle; old tar-format torch files are refused;
* the globals every pickle in the file imports: only tensor rebuilding, storages, dtypes,
  ``OrderedDict`` and TorchScript module classes (which our reader turns into plain
  attribute holders) are allowed.

:func:`load_torch_weights` then loads with ``torch.load(weights_only=True)``; whatever torch
says when it fails is cleaned of its advice to turn that safety off (:func:`clean_torch_message`).
"""
from __future__ import annotations

import os
import pickletools
import re
import tarfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import torch

from .errors import GenforceError

MAX_BYTES_ENV = 'GENFORCE_MAX_WEIGHT_BYTES'
DEFAULT_MAX_BYTES = 1 << 30  # VGG16 with its classifier is 528 MiB, Inception-v3 about 92 MiB
ZIP_MAGIC = b'PK\x03\x04'  # how torch tells a zip archive from a legacy pickle file
PICKLE_PROTO = 0x80  # torch writes pickle protocol 2, which starts with the PROTO opcode

# Globals a state dict or TorchScript archive legitimately imports (besides torch storages,
# torch dtypes and ``__torch__.*`` TorchScript classes, see _is_allowed_global).
ALLOWED_GLOBALS = frozenset({
    'collections.OrderedDict', 'torch.Size', 'torch.device',
    'torch._utils._rebuild_tensor', 'torch._utils._rebuild_tensor_v2',
    'torch._utils._rebuild_parameter', 'torch._utils._rebuild_parameter_with_state',
    # TorchScript archives tag lists with these; each returns its first argument unchanged.
    'torch.jit._pickle.build_intlist', 'torch.jit._pickle.build_doublelist',
    'torch.jit._pickle.build_boollist', 'torch.jit._pickle.build_tensorlist',
    'torch.jit._pickle.restore_type_tag',
})


class WeightFileError(GenforceError):
    """A weight file is unsafe, too large, corrupt, or not the network it should hold."""


def max_weight_bytes() -> int:
    """The size limit of a weight file (``$GENFORCE_MAX_WEIGHT_BYTES`` or 1 GiB)."""
    raw = os.environ.get(MAX_BYTES_ENV, '').strip()
    if not raw:
        return DEFAULT_MAX_BYTES
    if not raw.isdigit() or int(raw) <= 0:
        raise WeightFileError(f'${MAX_BYTES_ENV}={raw!r} is not a positive number of bytes; '
                              f'unset it or set it to e.g. {DEFAULT_MAX_BYTES}.')
    return int(raw)


def is_zip_archive(path: str | os.PathLike) -> bool:
    """True if the file starts like a zip archive (torch's own test)."""
    with open(path, 'rb') as file:
        return file.read(4) == ZIP_MAGIC


def is_torchscript_archive(path: str | os.PathLike) -> bool:
    """True for a zip archive with TorchScript's ``code/`` folder or ``constants.pkl`` (which
    a ``torch.save`` archive does not have). Reads only the member names."""
    if not is_zip_archive(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return False
    return any(name.count('/') >= 1 and name.split('/')[1] in ('code', 'constants.pkl')
               for name in names)


def _is_torchscript_source(member: str) -> bool:
    """``<archive>/code/...``: TorchScript source and debug info, which we never read."""
    parts = member.split('/')
    return len(parts) > 2 and parts[1] == 'code'


def _describe(what: str, path: str | os.PathLike) -> str:
    return f'{what} file {path}'


def check_zip_members(path: str | os.PathLike, *, what: str = 'weight',
                      error: type[GenforceError] = WeightFileError) -> list[zipfile.ZipInfo]:
    """Refuse a zip archive whose members could inflate past a weight file's size.

    Only the central directory is read (torch reads sizes from it too): every member but
    TorchScript source (never read) must be stored uncompressed and occupy the bytes it
    declares; all declared sizes together stay within :func:`max_weight_bytes`.
    """
    name = _describe(what, path)
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise error(f'{name} is not a readable zip archive ({exc}); it may be cut short or '
                    'corrupt: download it again.') from None
    file_size, limit, total = os.path.getsize(path), max_weight_bytes(), 0
    names = [member.filename for member in members]
    if len(set(names)) != len(names):  # readers may disagree on which copy they read
        twice = sorted({n for n in names if names.count(n) > 1})
        raise error(f'refused {name}: it holds {twice[:3]} more than once, which torch never '
                    'writes; nothing was read. Use the original file.')
    for member in members:
        label = f'member {member.filename!r} ({member.file_size} bytes uncompressed)'
        stored = member.compress_type == zipfile.ZIP_STORED
        if not stored and not _is_torchscript_source(member.filename):
            raise error(f'refused {name}: {label} is compressed, which torch never does for '
                        'data (a decompression bomb?); nothing was inflated. Use the original '
                        'file.')
        if ((stored and member.file_size != member.compress_size)
                or member.header_offset + member.compress_size > file_size):
            raise error(f'refused {name}: {label} claims more bytes than the archive stores '
                        f'({member.compress_size}); nothing was read. Use the original file.')
        total += member.file_size
        if total > limit:
            raise error(f'refused {name}: with {label} the archive holds more than {limit} '
                        f'bytes, the limit for a weight file; nothing was read. If the file is '
                        f'genuine, raise the limit with ${MAX_BYTES_ENV}.')
    return members


# ------------------------------------------------------------------ globals of the pickles
_MEMO_PUT = ('PUT', 'BINPUT', 'LONG_BINPUT', 'MEMOIZE')
_MEMO_GET = ('GET', 'BINGET', 'LONG_BINGET')


def pickle_globals(stream: IO[bytes]) -> Iterator[str]:
    """The globals one pickle imports (``module.name``), read opcode by opcode, run nothing.

    ``STACK_GLOBAL`` takes its names from the stack; when they are not the two strings
    pushed just before, it is reported as ``<computed global>``. Extension codes (``EXT*``)
    are reported too: they import through a registry the file does not show.
    """
    pushed: list[str | None] = []  # what the recent opcodes pushed (None: not a string)
    memo: dict[Any, str | None] = {}
    for opcode, arg, _pos in pickletools.genops(stream):
        name = opcode.name
        if name in _MEMO_PUT:
            memo[len(memo) if name == 'MEMOIZE' else arg] = pushed[-1] if pushed else None
            continue
        if name in ('GLOBAL', 'INST'):
            yield str(arg).replace(' ', '.')
        elif name == 'STACK_GLOBAL':
            module, attr = (pushed[-2:] if len(pushed) >= 2 else [None, None])
            yield f'{module}.{attr}' if module and attr else '<computed global>'
        elif name.startswith('EXT'):
            yield f'<extension code {arg}>'
        if 'UNICODE' in name or name.endswith('STRING'):
            pushed.append(str(arg))
        elif name in _MEMO_GET:
            pushed.append(memo.get(arg))
        else:
            pushed.append(None)
        del pushed[:-2]


def _pickle_streams(path: Path) -> Iterable[tuple[IO[bytes], int]]:
    """(stream, number of pickles in it) for every pickle torch would read from the file."""
    if is_zip_archive(path):
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                if member.endswith('.pkl'):
                    with archive.open(member) as stream:
                        yield stream, 1
    else:  # legacy format: magic number, version, system info, the object, storage keys
        with open(path, 'rb') as stream:
            yield stream, 5


def _is_allowed_global(name: str) -> bool:
    module, _, attr = name.rpartition('.')
    if name in ALLOWED_GLOBALS or module == '__torch__' or module.startswith('__torch__.'):
        return True
    value = getattr(torch, attr, None) if module == 'torch' else None
    return isinstance(value, torch.dtype) or (
        attr.endswith('Storage') and isinstance(value, type))


def foreign_globals(path: str | os.PathLike) -> list[str]:
    """The globals the file's pickles import that a weight file has no use for."""
    found: list[str] = []
    for stream, count in _pickle_streams(Path(path)):
        for _ in range(count):
            try:
                for name in pickle_globals(stream):
                    found.append(name)  # kept even if the pickle turns out broken later
            except Exception:  # noqa: BLE001 - end of the pickles, or not a pickle
                break  # the loader refuses what cannot be parsed
    return sorted({name for name in found if not _is_allowed_global(name)})


# ------------------------------------------------------------------------------- checks
def check_weight_file(path: str | os.PathLike, *, what: str = 'weight', hint: str = '',
                      error: type[GenforceError] = WeightFileError) -> None:
    """Refuse a file that is too big, a decompression bomb, in an unexpected format, or
    whose pickles import anything besides tensors (see the module doc). Runs nothing."""
    path, name = Path(path), _describe(what, path)
    limit = max_weight_bytes()
    if os.path.getsize(path) > limit:
        raise error(f'refused {name}: it is larger than {limit} bytes, the limit for a weight '
                    f'file. If it is genuine, raise the limit with ${MAX_BYTES_ENV}.')
    if is_zip_archive(path):
        check_zip_members(path, what=what, error=error)
    else:
        with open(path, 'rb') as file:
            first = file.read(1)
        if first != bytes([PICKLE_PROTO]) or tarfile.is_tarfile(path):
            raise error(f'{name} is not a torch weight file (neither a zip archive nor a '
                        f'torch pickle). {hint}'.rstrip())
    offending = foreign_globals(path)
    if offending:
        raise error(f'refused {name}: it references {", ".join(offending)}, which a weight '
                    f'file has no use for; nothing in it was run. {hint}'.rstrip())


_TORCH_ADVICE = re.compile(
    r'weights[ _-]?only|unpickler|safe_globals|trust|arbitrary code|torch\.(jit\.)?load',
    re.IGNORECASE)


def clean_torch_message(exc: BaseException, max_chars: int = 300) -> str:
    """``Type: message`` of an error from torch's loader, without its advice to load the file
    with the safety checks off (sentences about ``weights_only``, allowlists, trust)."""
    text = str(exc).split('WeightsUnpickler error:', 1)[-1]
    sentences = re.split(r'(?<=[.!?])\s+|\n+', text)
    kept = ' '.join(s.strip() for s in sentences if s.strip() and not _TORCH_ADVICE.search(s))
    kept = re.sub(r'weights[ _-]?only', '', kept, flags=re.IGNORECASE)  # should never remain
    if len(kept) > max_chars:
        kept = kept[:max_chars].rstrip() + '...'
    return f'{type(exc).__name__}: {kept or "the file is not one torch can read"}'


def load_torch_weights(path: str | os.PathLike, *, what: str = 'weight', hint: str = '',
                       error: type[GenforceError] = WeightFileError) -> Any:
    """:func:`check_weight_file`, then ``torch.load(weights_only=True)`` on the CPU; every
    failure becomes ``error`` naming the file, without torch's unsafe advice."""
    check_weight_file(path, what=what, hint=hint, error=error)
    if is_torchscript_archive(path):
        raise error(f'{_describe(what, path)} is a TorchScript archive (a program, not a state '
                    f'dict), which is not loaded here; nothing in it was run. {hint}'.rstrip())
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means: not a usable weight file
        detail = clean_torch_message(exc)
    # Raised outside the handler: the chained torch error would show its advice again.
    raise error(f'{_describe(what, path)} could not be read ({detail}). {hint}'.rstrip())
