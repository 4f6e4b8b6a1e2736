"""Compile every plugin's CUDA ops with nvcc — no GPU needed, only the CUDA toolkit.

Usage::

    python tools/compile_ops.py [--arch '8.0;9.0'] [--only upfirdn2d] [--fresh] [--verbose]

An op is a module ``<plugin package>.ops.<op>_cuda`` that defines ``EXTENSION`` (the extension
name) and ``SOURCES`` (its ``.cpp``/``.cu`` files); ops are found in the installed plugins
(entry-point group ``genforce.plugins``) and in this repository's ``plugins/`` folder. Each is
built by :func:`genforce_core.ops.compile_only`, into the same cache that the just-in-time build
uses (``$GENFORCE_OPS_CACHE``), so a later run with unchanged sources is a quick no-op, or into a
throw-away folder with ``--fresh``. Prints the time of each build; exits 1 with the compiler
output when one fails, 2 when there is nothing to compile with (no nvcc / ninja).
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


@dataclass
class Op:
    extension: str
    sources: list[Path]
    origin: str  # module name or file it came from


def _op_from_module(module, origin: str) -> Op | None:
    extension = getattr(module, 'EXTENSION', None)
    sources = getattr(module, 'SOURCES', None)
    if not extension or not sources:
        return None
    return Op(extension, [Path(s) for s in sources], origin)


def _installed_ops() -> list[Op]:
    """Ops of the plugins installed in this environment (via their entry points)."""
    import pkgutil
    from importlib import metadata

    found: list[Op] = []
    for ep in metadata.entry_points(group='genforce.plugins'):
        package = ep.value.split(':')[0].split('.')[0]
        try:
            ops_pkg = importlib.import_module(f'{package}.ops')
        except ImportError:
            continue
        for info in pkgutil.iter_modules(getattr(ops_pkg, '__path__', [])):
            if not info.name.endswith('_cuda'):
                continue
            name = f'{package}.ops.{info.name}'
            try:
                op = _op_from_module(importlib.import_module(name), name)
            except Exception as exc:  # noqa: BLE001 - report, keep compiling the others
                print(f'[compile_ops] cannot import {name}: {exc}', file=sys.stderr)
                continue
            if op is not None:
                found.append(op)
    return found


def _repo_ops() -> list[Op]:
    """Ops under this repository's plugins/ (for a checkout without installed plugins)."""
    found: list[Op] = []
    for path in sorted(REPO.glob('plugins/*/*/ops/*_cuda.py')):
        name = f'_genforce_compile_ops_{path.parent.parent.name}_{path.stem}'
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # noqa: BLE001
            sys.modules.pop(name, None)
            print(f'[compile_ops] cannot load {path}: {exc}', file=sys.stderr)
            continue
        op = _op_from_module(module, str(path.relative_to(REPO)))
        if op is not None:
            found.append(op)
    return found


def discover_ops() -> list[Op]:
    """Every op, once (keyed by its resolved sources)."""
    ops: dict[tuple[str, ...], Op] = {}
    for op in _installed_ops() + _repo_ops():
        key = tuple(str(s.resolve()) for s in op.sources)
        ops.setdefault(key, op)
    return sorted(ops.values(), key=lambda o: o.extension)


def compile_ops(ops: list[Op], *, arch: str | None = None, verbose: bool = False) -> int:
    """Compile ``ops``; print timings; return the number of failures."""
    from genforce_core import ops as core_ops

    arch = arch or os.environ.get('TORCH_CUDA_ARCH_LIST', '').strip() or core_ops.DEFAULT_ARCH_LIST
    failures = 0
    total = time.perf_counter()
    for op in ops:
        start = time.perf_counter()
        print(f'[compile_ops] {op.extension} ({op.origin}) for arch {arch} ...', flush=True)
        try:
            out = core_ops.compile_only(op.extension, op.sources, arch_list=arch,
                                        verbose=verbose)
        except core_ops.BuildError as exc:
            failures += 1
            print(f'[compile_ops] FAILED {op.extension} after '
                  f'{time.perf_counter() - start:.1f}s:\n{exc}', file=sys.stderr, flush=True)
            continue
        print(f'[compile_ops] ok {op.extension} in {time.perf_counter() - start:.1f}s -> {out}',
              flush=True)
    print(f'[compile_ops] {len(ops) - failures}/{len(ops)} op(s) compiled in '
          f'{time.perf_counter() - total:.1f}s', flush=True)
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--arch', help="CUDA arch list, e.g. '8.0;9.0' (default: "
                        "$TORCH_CUDA_ARCH_LIST or 8.0)")
    parser.add_argument('--only', action='append', default=[],
                        help='compile only ops whose extension name contains this (repeatable)')
    parser.add_argument('--fresh', action='store_true',
                        help='build in a temporary cache instead of $GENFORCE_OPS_CACHE')
    parser.add_argument('--list', action='store_true', help='list the ops and exit')
    parser.add_argument('--verbose', action='store_true', help='show the compiler commands')
    args = parser.parse_args(argv)

    ops = discover_ops()
    if args.only:
        ops = [op for op in ops if any(s in op.extension for s in args.only)]
    if args.list:
        for op in ops:
            print(f'{op.extension}: {", ".join(str(s) for s in op.sources)}')
        return 0
    if not ops:
        print('[compile_ops] no CUDA ops found', file=sys.stderr)
        return 1

    from genforce_core import ops as core_ops
    problem = core_ops.toolchain_problem()
    if problem:
        print(f'[compile_ops] cannot compile: {problem}', file=sys.stderr)
        return 2
    if args.fresh:
        with tempfile.TemporaryDirectory(prefix='genforce-ops-') as tmp:
            os.environ['GENFORCE_OPS_CACHE'] = tmp
            return 1 if compile_ops(ops, arch=args.arch, verbose=args.verbose) else 0
    return 1 if compile_ops(ops, arch=args.arch, verbose=args.verbose) else 0


if __name__ == '__main__':
    sys.exit(main())
