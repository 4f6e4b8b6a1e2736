"""Choosing between a CUDA kernel module and the pure-PyTorch reference path.

Each op module (``upfirdn2d``, ``bias_act``) may have a sibling ``<op>_cuda`` module that exposes
``is_available() -> bool`` and the op itself without the ``impl`` argument. The sibling is
imported lazily, the first time a CUDA tensor reaches the op; when it is missing or reports
itself unavailable, the reference path runs and one warning says so.
"""
from __future__ import annotations

import importlib
import warnings
from types import ModuleType

from genforce_core.api import reference_forced

_modules: dict[str, ModuleType | None] = {}
_warned: set[str] = set()


def cuda_module(op: str) -> ModuleType | None:
    """The loaded ``genforce_stylegan2.ops.<op>_cuda`` module, or None when it is unusable (or
    the caller runs inside :func:`genforce_core.api.reference_ops`)."""
    if reference_forced():
        return None
    if op not in _modules:
        module: ModuleType | None
        try:
            module = importlib.import_module(f'{__package__}.{op}_cuda')
        except ImportError:
            module = None
        if module is not None and not module.is_available():
            module = None
        _modules[op] = module
    return _modules[op]


def warn_reference(op: str) -> None:
    """Warn once per op that a CUDA tensor goes through the slower reference implementation."""
    if op in _warned or reference_forced():
        return
    _warned.add(op)
    warnings.warn(f'genforce_stylegan2: the CUDA kernel of {op} is not available; using the '
                  'pure-PyTorch reference implementation (same results, slower and more '
                  'memory). See `genforce plugins` for why the kernel did not load.',
                  RuntimeWarning, stacklevel=3)


def status(op: str) -> str:
    """'cuda' or 'reference': which path a CUDA tensor takes through ``op`` (imports lazily)."""
    return 'cuda' if cuda_module(op) is not None else 'reference'
