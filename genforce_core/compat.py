"""Work-arounds for mmengine 0.10.x on current Python packaging and PyTorch.

* setuptools >= 82 no longer ships ``pkg_resources``; mmengine's package helpers
  (``is_installed``, ``get_installed_path``, ``package2module``, used for ``pkg::path`` config
  bases) import it. We replace them with ``importlib.metadata`` equivalents when it is missing.
* torch >= 2.6 loads with ``weights_only=True`` by default, which mmengine's checkpoint loader
  does not expect; :mod:`genforce_core.checkpoint` installs a safe loader with an allowlist.
"""
from __future__ import annotations

import importlib.metadata as importlib_metadata
import importlib.util
import os


def _is_installed(package: str) -> bool:
    try:
        importlib_metadata.distribution(package)
        return True
    except importlib_metadata.PackageNotFoundError:
        return importlib.util.find_spec(package) is not None


def _package2module(package: str) -> str:
    dist = importlib_metadata.distribution(package)
    top_level = dist.read_text('top_level.txt')
    if top_level:
        return top_level.split('\n')[0]
    names = {p.parts[0] for p in dist.files or [] if p.suffix == '.py' or len(p.parts) > 1}
    names = sorted(n for n in names if not n.endswith(('.dist-info', '.egg-info'))
                   and n.isidentifier())
    if not names:
        raise ValueError(f'cannot find the module of the package {package!r}')
    return names[0]


def _get_installed_path(package: str) -> str:
    try:
        module = _package2module(package)
    except importlib_metadata.PackageNotFoundError:
        module = package
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None and not spec.submodule_search_locations:
        raise ModuleNotFoundError(f'package {package!r} is not installed')
    if spec.submodule_search_locations:
        return list(spec.submodule_search_locations)[0]
    return os.path.dirname(spec.origin)


def patch_pkg_resources_helpers() -> bool:
    """Point mmengine's pkg_resources helpers at importlib.metadata; True if patched."""
    if importlib.util.find_spec('pkg_resources') is not None:
        return False
    import mmengine.config.config as config_module
    import mmengine.utils as utils
    import mmengine.utils.package_utils as package_utils

    for module in (package_utils, utils, config_module):
        for name, func in (('is_installed', _is_installed),
                           ('get_installed_path', _get_installed_path),
                           ('package2module', _package2module)):
            if hasattr(module, name):
                setattr(module, name, func)
    return True


patch_pkg_resources_helpers()
