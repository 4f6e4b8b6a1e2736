"""Just-in-time build of a plugin's CUDA ops, with the reference PyTorch path as the fallback.

A plugin ships the ``.cu``/``.cpp``/``.h`` sources of its ops as package data and calls
:func:`load_extension` the first time an op runs. The helper

* builds with ninja through :func:`torch.utils.cpp_extension.load` into
  ``$GENFORCE_OPS_CACHE/<name>-<hash>`` (default root ``~/.cache/genforce/ops``), where the hash
  covers the sources and the headers beside them, the flags, the CUDA arch list, torch, CUDA and
  Python versions: a changed source never reuses a stale build, an unchanged one is never rebuilt;
* serialises concurrent builders (several ranks, several jobs on a shared cache) with a lock file
  holding the owner's pid and host, refreshed while the build runs; a lock whose owner died, or
  that has not been refreshed for ``GENFORCE_OPS_STALE_LOCK_MINUTES`` (default 10) minutes, is
  removed with a warning — so a build killed by Ctrl-C, OOM or Slurm never blocks later runs.
  older torch versions (FileBaton) also leave their own ``lock`` behind when killed; it is cleared;
* builds at most once per process and remembers failures, so an op whose build failed falls back
  to its reference implementation without retrying on every call;
* never raises from the op call path: :func:`load_extension` returns ``None`` and records why
  (no CUDA device, no nvcc, no ninja, a compiler error), :func:`op_status` reports it cheaply and
  :func:`warn_reference_once` tells the user once per op which path is in use and why;
* lets a freshly loaded kernel be checked before its first use
  (:class:`~genforce_core.cuda_extension.CudaExtension`'s ``self_check``): a kernel that
  computes wrong values on this GPU is never used; the op takes its reference path and says why.

:func:`compile_only` compiles (and links) the same sources without needing a GPU — only the CUDA
toolkit — which is what CI and ``tools/compile_ops.py`` use to prove the sources compile.
"""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
import shutil
import socket
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch

__all__ = [
    'GenforceOpsWarning', 'BuildError', 'load_extension', 'compile_only', 'op_status',
    'build_log', 'warn_reference_once', 'cache_root', 'build_dir', 'source_hash',
    'acquire_build_lock', 'toolchain_problem', 'reset', 'reference_ops', 'reference_forced',
    'record_unusable',
]

HEADER_SUFFIXES = ('.h', '.hpp', '.cuh', '.inl')
LOCK_NAME = 'genforce.lock'
DEFAULT_STALE_LOCK_MINUTES = 10.0
DEFAULT_ARCH_LIST = '8.0'


class GenforceOpsWarning(UserWarning):
    """Warnings of the ops helper: reference fallback in use, stale lock removed."""


class BuildError(RuntimeError):
    """A custom op could not be compiled (raised by :func:`compile_only` only)."""


@dataclass
class _Result:
    module: ModuleType | None
    reason: str = ''  # short, for op_status: 'no CUDA device', 'build failed: ...'
    detail: str = ''  # the full compiler output / traceback text, for build_log


_results: dict[tuple[str, str], _Result] = {}  # (name, hash) -> outcome of this process
_latest: dict[str, _Result] = {}  # name -> the outcome of its latest load in this process
_warned: set[str] = set()
_mutex = threading.RLock()


# ---------------------------------------------------------------------------------- paths / hash

def cache_root() -> Path:
    """The root of the build cache: ``$GENFORCE_OPS_CACHE`` or ``~/.cache/genforce/ops``."""
    env = os.environ.get('GENFORCE_OPS_CACHE')
    return Path(env).expanduser() if env else Path.home() / '.cache' / 'genforce' / 'ops'


def _stale_minutes(value: float | None) -> float:
    if value is not None:
        return float(value)
    env = os.environ.get('GENFORCE_OPS_STALE_LOCK_MINUTES')
    try:
        return float(env) if env else DEFAULT_STALE_LOCK_MINUTES
    except ValueError:
        return DEFAULT_STALE_LOCK_MINUTES


def _dependency_files(sources: Sequence[Path]) -> list[Path]:
    """The sources, then the headers in their folders (they are #included, so they count)."""
    files = list(sources)
    seen = {p.resolve() for p in files}
    for folder in sorted({p.resolve().parent for p in sources}):
        for header in sorted(folder.iterdir()):
            if header.suffix in HEADER_SUFFIXES and header.resolve() not in seen:
                files.append(header)
                seen.add(header.resolve())
    return files


def _arch_list() -> str:
    arch = os.environ.get('TORCH_CUDA_ARCH_LIST', '').strip()
    if arch:
        return arch
    # Without an explicit list torch builds for the visible devices: key the cache on them.
    try:
        if torch.cuda.is_available():
            caps = sorted({torch.cuda.get_device_capability(i)
                           for i in range(torch.cuda.device_count())})
            return 'devices:' + ';'.join(f'{a}.{b}' for a, b in caps)
    except Exception:  # noqa: BLE001 - a broken driver must not break hashing
        pass
    return ''


def source_hash(sources: Sequence[str | Path], extra_cuda_cflags: Sequence[str] = (),
                extra_cflags: Sequence[str] = ()) -> str:
    """A 16-hex-digit key over everything that makes a build differ.

    It covers the contents (and names) of the sources and of the headers in their folders, the
    flags, the CUDA arch list, the torch, CUDA and Python versions and the CUDA toolkit used.
    """
    from torch.utils import cpp_extension

    _resolve_cuda_home()
    h = hashlib.sha256()

    def add(tag: str, value: str | bytes) -> None:
        data = value.encode() if isinstance(value, str) else value
        h.update(f'{tag}:{len(data)}:'.encode())
        h.update(data)

    for path in _dependency_files([Path(s) for s in sources]):
        add('file', path.name)
        add('content', path.read_bytes())
    add('cuda_cflags', '\0'.join(extra_cuda_cflags))
    add('cflags', '\0'.join(extra_cflags))
    add('torch', torch.__version__)
    add('cuda', str(torch.version.cuda))
    add('cuda_home', str(getattr(cpp_extension, 'CUDA_HOME', None)))
    add('arch', _arch_list())
    add('python', f'{sys.implementation.cache_tag}-{sys.platform}')
    return h.hexdigest()[:16]


def build_dir(name: str, digest: str) -> Path:
    """Where the build of ``name`` with key ``digest`` lives."""
    return cache_root() / f'{name}-{digest}'


# ------------------------------------------------------------------------------------- locking

def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def _read_owner(lock: Path) -> tuple[int, str]:
    """(pid, host) written in a genforce lock file, or (-1, '') when unreadable."""
    try:
        fields = lock.read_text().split()
        return int(fields[0]), fields[1]
    except (OSError, ValueError, IndexError):
        return -1, ''


def _stale_reason(lock: Path, stale_minutes: float, *, has_owner: bool) -> str | None:
    """Why ``lock`` is stale, or None when it looks held (or is gone)."""
    try:
        age = time.time() - lock.stat().st_mtime
    except FileNotFoundError:
        return None
    if has_owner:
        pid, host = _read_owner(lock)
        if pid > 0 and host == socket.gethostname() and not _pid_alive(pid):
            return f'its owner (pid {pid}) is dead'
    if age > stale_minutes * 60:
        return f'not refreshed for {age / 60:.1f} min (limit {stale_minutes:g} min)'
    return None


def _remove_stale(lock: Path, reason: str) -> None:
    # Rename first: of several waiters that judged the same lock stale only one wins the rename,
    # so nobody deletes a lock that a faster waiter has just created.
    grave = lock.with_name(f'{lock.name}.stale-{os.getpid()}-{threading.get_ident()}')
    try:
        os.replace(lock, grave)
    except FileNotFoundError:
        return
    with contextlib.suppress(OSError):
        grave.unlink()
    warnings.warn(f'genforce ops: removed stale build lock {lock} ({reason}); a previous build '
                  'was probably killed. Rebuilding.', GenforceOpsWarning, stacklevel=3)


def _torch_uses_baton() -> bool:
    """Whether torch's JIT build holds a FileBaton (a lock whose existence blocks forever)."""
    from torch.utils import cpp_extension
    return hasattr(cpp_extension, 'FileBaton') and not hasattr(cpp_extension, 'FileLock')


@contextlib.contextmanager
def acquire_build_lock(directory: str | Path, *, stale_minutes: float | None = None,
                       poll_seconds: float = 0.5) -> Iterator[Path]:
    """Hold ``<directory>/genforce.lock`` while building, clearing stale locks.

    The file holds ``<pid> <host>``; a heartbeat thread refreshes its mtime while held, so only a
    lock whose owner is dead (same host) or that has not been refreshed for ``stale_minutes``
    (default ``$GENFORCE_OPS_STALE_LOCK_MINUTES`` or 10) is taken over. Once held, a leftover
    ``lock`` of torch's FileBaton (older torch; left forever by a killed build) is removed too.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    lock = directory / LOCK_NAME
    minutes = _stale_minutes(stale_minutes)
    waited_since = time.monotonic()
    told = False
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            reason = _stale_reason(lock, minutes, has_owner=True)
            if reason is not None:
                _remove_stale(lock, reason)
                continue
            if not told and time.monotonic() - waited_since > 30:
                pid, host = _read_owner(lock)
                print(f'genforce ops: waiting for the build in {directory} held by pid {pid} on '
                      f'{host or "?"} (a lock is taken over after {minutes:g} min without '
                      f'refresh)', file=sys.stderr)
                told = True
            time.sleep(poll_seconds)
            continue
        with os.fdopen(fd, 'w') as f:
            f.write(f'{os.getpid()} {socket.gethostname()} {time.time():.0f}\n')
        break

    stop = threading.Event()

    def heartbeat() -> None:
        period = max(1.0, min(30.0, minutes * 60 / 4))
        while not stop.wait(period):
            with contextlib.suppress(OSError):
                os.utime(lock)

    beat = threading.Thread(target=heartbeat, name='genforce-ops-lock', daemon=True)
    beat.start()
    try:
        torch_lock = directory / 'lock'
        if torch_lock.exists() and _torch_uses_baton():
            # Every genforce builder holds our lock first, so this one belongs to nobody.
            _remove_stale(torch_lock, 'left by a killed torch build; no genforce build holds it')
        yield lock
    finally:
        stop.set()
        beat.join(timeout=5)
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()


# -------------------------------------------------------------------------------- environment

def _ensure_ninja_on_path() -> bool:
    """torch calls ``ninja`` through PATH: add the interpreter's bin dir (a venv) when needed."""
    if shutil.which('ninja'):
        return True
    bindir = os.path.dirname(sys.executable)
    if os.path.exists(os.path.join(bindir, 'ninja')):
        os.environ['PATH'] = bindir + os.pathsep + os.environ.get('PATH', '')
        return True
    return False


_cuda_home_checked = False


def _has_cudart(home: str) -> bool:
    return any(os.path.exists(os.path.join(home, lib, 'libcudart.so'))
               or os.path.exists(os.path.join(home, lib, 'cudart.lib'))
               for lib in ('lib64', 'lib', os.path.join('lib', 'x64')))


def _resolve_cuda_home() -> None:
    """Point torch at a CUDA toolkit it can also link against.

    torch derives CUDA_HOME from ``which nvcc`` when the variable is unset; an ``nvcc`` wrapper
    script in ``/usr/local/bin`` then yields ``/usr/local``, whose ``lib`` has no libcudart, and
    every link fails. Try the usual toolkit folders instead (once per process).
    """
    global _cuda_home_checked
    if _cuda_home_checked:
        return
    _cuda_home_checked = True
    from torch.utils import cpp_extension
    home = getattr(cpp_extension, 'CUDA_HOME', None)
    if not torch.version.cuda or (home and _has_cudart(home)):
        return
    candidates = [os.environ.get('CUDA_PATH', ''), f'/usr/local/cuda-{torch.version.cuda}',
                  '/usr/local/cuda', '/opt/cuda']
    for cand in candidates:
        if cand and os.path.exists(os.path.join(cand, 'bin', 'nvcc')) and _has_cudart(cand):
            cpp_extension.CUDA_HOME = cand
            os.environ.setdefault('CUDA_HOME', cand)
            return


def _nvcc_path() -> str | None:
    from torch.utils import cpp_extension
    _resolve_cuda_home()
    home = getattr(cpp_extension, 'CUDA_HOME', None)
    if home:
        nvcc = os.path.join(home, 'bin', 'nvcc')
        if os.path.exists(nvcc):
            return nvcc
    return None


def toolchain_problem() -> str | None:
    """Why nothing can be compiled here (no GPU needed), or None."""
    if not torch.version.cuda:
        return 'torch built without CUDA'
    if _nvcc_path() is None:
        return 'nvcc not found: install the CUDA toolkit matching torch ' \
               f'(CUDA {torch.version.cuda}) or set CUDA_HOME'
    if not _ensure_ninja_on_path():
        return 'ninja not found: pip install ninja'
    return None


def _summarise(exc: BaseException) -> tuple[str, str]:
    """(one line for op_status, the full text) of a build failure."""
    import traceback

    parts = [str(exc)]
    cause = exc.__cause__
    if cause is not None and getattr(cause, 'output', None):
        out = cause.output
        parts.append(out.decode(errors='replace') if isinstance(out, bytes) else str(out))
    detail = '\n'.join(parts) + '\n' + ''.join(traceback.format_exception(exc))
    lines = [ln.strip() for ln in '\n'.join(parts).splitlines() if ln.strip()]

    def is_command(ln: str) -> bool:  # ninja progress and compiler command lines
        return ln.startswith(('[', 'FAILED:')) or (' -o ' in ln and ' -c ' in ln) or \
            ln.endswith('.so') and ' -shared ' in ln

    # The first compiler/linker diagnostic says more than "Error building extension".
    for keys in (('error:', 'error ', 'cannot find', 'undefined reference', 'undefined symbol'),
                 ('error',)):
        for ln in lines:
            low = ln.lower()
            if is_command(ln) or 'error building extension' in low or low.startswith(
                    ('ninja: build stopped', 'collect2:')):
                continue
            if any(k in low for k in keys):
                return ln[:300], detail
    return (lines[0][:300] if lines else type(exc).__name__), detail


def _as_paths(sources: Sequence[str | Path]) -> list[Path]:
    paths = [Path(s).resolve() for s in sources]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f'genforce ops: missing source file(s): {", ".join(missing)}')
    return paths


def _build(name: str, paths: list[Path], digest: str, extra_cuda_cflags: Sequence[str],
           extra_cflags: Sequence[str], verbose: bool, stale_minutes: float | None,
           ) -> ModuleType:
    from torch.utils import cpp_extension

    directory = build_dir(name, digest)
    with acquire_build_lock(directory, stale_minutes=stale_minutes):
        if verbose:
            print(f'genforce ops: building {name} in {directory}', file=sys.stderr)
        return cpp_extension.load(
            name=name,
            sources=[str(p) for p in paths],
            extra_cflags=list(extra_cflags),
            extra_cuda_cflags=list(extra_cuda_cflags),
            extra_include_paths=sorted({str(p.parent) for p in paths}),
            build_directory=str(directory),
            verbose=verbose,
            with_cuda=any(p.suffix == '.cu' for p in paths),
        )


# ------------------------------------------------------------------------------------ public API

def load_extension(name: str, sources: Sequence[str | Path], *,
                   extra_cuda_cflags: Sequence[str] = (), extra_cflags: Sequence[str] = (),
                   verbose: bool = False, stale_lock_minutes: float | None = None,
                   ) -> ModuleType | None:
    """Build (once per process, cached on disk) and import the extension ``name``.

    Returns the module, or ``None`` when the CUDA path cannot be used here — no CUDA device, no
    nvcc/ninja, or a failed build; the reason is recorded for :func:`op_status` (and the full
    compiler output for :func:`build_log`). Never raises, so an op can always fall back to its
    reference implementation. ``name`` must be a valid Python identifier.
    """
    try:
        key_hash = source_hash(sources, extra_cuda_cflags, extra_cflags)
    except Exception as exc:  # noqa: BLE001 - unreadable sources: record, do not raise
        with _mutex:
            _latest[name] = _Result(None, f'build failed: {exc}', repr(exc))
        return None
    key = (name, key_hash)
    with _mutex:
        if key in _results:
            return _results[key].module
        result = _load_uncached(name, sources, key_hash, extra_cuda_cflags, extra_cflags,
                                verbose, stale_lock_minutes)
        _results[key] = result
        _latest[name] = result
        return result.module


def _load_uncached(name: str, sources: Sequence[str | Path], digest: str,
                   extra_cuda_cflags: Sequence[str], extra_cflags: Sequence[str],
                   verbose: bool, stale_minutes: float | None) -> _Result:
    try:
        if not torch.cuda.is_available():
            return _Result(None, 'no CUDA device')
    except Exception as exc:  # noqa: BLE001
        return _Result(None, f'no CUDA device ({exc})')
    problem = toolchain_problem()
    if problem:
        return _Result(None, problem)
    try:
        paths = _as_paths(sources)
        module = _build(name, paths, digest, extra_cuda_cflags, extra_cflags, verbose,
                        stale_minutes)
    except Exception as exc:  # noqa: BLE001 - any failure means "use the reference path"
        line, detail = _summarise(exc)
        return _Result(None, f'build failed: {line}', detail)
    return _Result(module)


def compile_only(name: str, sources: Sequence[str | Path], *,
                 extra_cuda_cflags: Sequence[str] = (), extra_cflags: Sequence[str] = (),
                 verbose: bool = False, arch_list: str | None = None,
                 stale_lock_minutes: float | None = None) -> Path:
    """Compile and link ``sources`` without a GPU; return the build directory.

    Uses the same ninja build (and the same cache directory) as :func:`load_extension`, so a
    later load on a GPU machine with the same arch list reuses it. ``arch_list`` (default
    ``$TORCH_CUDA_ARCH_LIST`` or ``'8.0'``) picks the GPU architectures; with no GPU torch cannot
    guess them. Importing the built module is attempted too, but only compiling and linking are
    required. Raises :class:`BuildError` with the compiler output on failure.
    """
    problem = toolchain_problem()
    if problem:
        raise BuildError(f'cannot compile {name}: {problem}')
    arch = arch_list or os.environ.get('TORCH_CUDA_ARCH_LIST', '').strip() or DEFAULT_ARCH_LIST
    old = os.environ.get('TORCH_CUDA_ARCH_LIST')
    os.environ['TORCH_CUDA_ARCH_LIST'] = arch
    try:
        paths = _as_paths(sources)
        digest = source_hash(paths, extra_cuda_cflags, extra_cflags)
        directory = build_dir(name, digest)
        try:
            _build(name, paths, digest, extra_cuda_cflags, extra_cflags, verbose,
                   stale_lock_minutes)
        except Exception as exc:  # noqa: BLE001
            library = directory / f'{name}{_so_suffix()}'
            if isinstance(exc, (ImportError, OSError)) and library.exists():
                # Compiled and linked; the import needs what only a GPU machine has.
                return directory
            line, detail = _summarise(exc)
            raise BuildError(f'{name}: {line}\n{detail}') from exc
        return directory
    finally:
        if old is None:
            os.environ.pop('TORCH_CUDA_ARCH_LIST', None)
        else:
            os.environ['TORCH_CUDA_ARCH_LIST'] = old


def _so_suffix() -> str:
    return '.pyd' if sys.platform == 'win32' else '.so'


def op_status(name: str) -> str:
    """Which path the op ``name`` takes in this process; cheap, never compiles.

    One of ``'cuda'``, ``'reference (<why>)'`` — e.g. ``'reference (no CUDA device)'``,
    ``'reference (build failed: <first error line>)'`` — or ``'not built yet'``.
    """
    result = _latest.get(name)  # no lock: a build in another thread must not block a status
    if result is not None:
        return 'cuda' if result.module is not None else f'reference ({result.reason})'
    try:
        if not torch.cuda.is_available():
            return 'reference (no CUDA device)'
    except Exception:  # noqa: BLE001
        return 'reference (no CUDA device)'
    if not torch.version.cuda or _nvcc_path() is None:
        return 'reference (nvcc not found)'
    return 'not built yet'


def build_log(name: str) -> str:
    """The full compiler output of the latest failed build of ``name`` ('' if none)."""
    result = _latest.get(name)
    return result.detail if result is not None else ''


def warn_reference_once(op_name: str, reason: str) -> None:
    """Warn, once per op and process, that ``op_name`` runs its reference PyTorch code."""
    with _mutex:
        if op_name in _warned:
            return
        _warned.add(op_name)
    warnings.warn(f'genforce: {op_name} uses the reference PyTorch implementation ({reason}); '
                  'results are the same but slower. `genforce plugins` shows the status of '
                  'every custom op.', GenforceOpsWarning, stacklevel=3)


# The one switch every plugin's op dispatch honours (instead of per-plugin module globals).
_reference_forced: contextvars.ContextVar[bool] = contextvars.ContextVar(
    'genforce_reference_ops', default=False)


@contextlib.contextmanager
def reference_ops(enabled: bool = True) -> Iterator[None]:
    """Inside the block, every plugin op whose implementation is left to the dispatch runs its
    reference PyTorch path, CUDA tensors included (benchmarks, debugging); an op asked
    explicitly for its CUDA kernel keeps it. ``enabled=False`` lifts an outer block."""
    token = _reference_forced.set(bool(enabled))
    try:
        yield
    finally:
        _reference_forced.reset(token)


def reference_forced() -> bool:
    """Whether the calling code runs inside :func:`reference_ops`: op dispatchers check this
    before they pick a CUDA kernel."""
    return _reference_forced.get()


def reset(name: str | None = None) -> None:
    """Forget cached outcomes and warnings (of ``name``, or all): for tests."""
    with _mutex:
        for key in [k for k in _results if name is None or k[0] == name]:
            del _results[key]
        for n in [n for n in _latest if name is None or n == name]:
            del _latest[n]
        if name is None:
            _warned.clear()
        else:
            _warned.discard(name)


def record_unusable(name: str, reason: str) -> None:
    """Record that the loaded extension ``name`` must not be used (``op_status`` then says
    ``reference (<reason>)``); used by :class:`~genforce_core.cuda_extension.CudaExtension`
    when a kernel fails its self-check."""
    with _mutex:
        _latest[name] = _Result(None, reason)
