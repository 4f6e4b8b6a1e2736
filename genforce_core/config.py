"""Loading configs with errors that name the file, and the CLI's overrides.

A config is named in one of three ways (:func:`resolve_config`):

* a file path (``configs/stylegan2_ffhq.py``);
* a packaged config name (``stylegan2ada_cifar10``): a config that an installed plugin ships in
  one of its config folders (hook ``genforce_config_dirs``), listed by ``genforce configs``;
* a package reference ``PACKAGE::PATH`` (``genforce_stylegan2ada::stylegan2ada_cifar10.py``),
  PATH inside that package's config folders. The core's own base configs are
  ``genforce_core::_base_/...``.

Package references also work in ``_base_``, so a config shipped in a wheel inherits from
another wheel without any repository path. mmengine's own ``pkg::`` form only knows the
OpenMMLab packages, so :func:`load_config` resolves them itself while mmengine reads the file.
"""
from __future__ import annotations

import contextlib
import difflib
import os
import os.path as osp
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from mmengine.config import Config, DictAction

from .errors import ConfigError

__all__ = ['CORE_CONFIG_DIR', 'PackagedConfig', 'config_dirs', 'load_config',
           'packaged_configs', 'parse_cfg_option', 'resolve_config']

_KEY = re.compile(r'[A-Za-z_]\w*(\.\w+)*')
_PACKAGE = re.compile(r'[A-Za-z_]\w*')
SEPARATOR = '::'
CORE_PACKAGE = 'genforce_core'
# The core ships only base configs (``_base_/gan.py`` and its parts).
CORE_CONFIG_DIR = Path(__file__).resolve().parent / 'configs'
BASE_FOLDER = '_base_'


def parse_cfg_option(item: str) -> tuple[str, Any]:
    """``'a.b=[1,2]'`` -> ``('a.b', [1, 2])`` with mmengine's value syntax; raises
    ValueError for anything that is not ``KEY=VALUE`` with a dotted key."""
    key, sep, value = item.partition('=')
    if not sep:
        raise ValueError(f'{item!r} is not KEY=VALUE (e.g. train_dataloader.batch_size=8)')
    if not _KEY.fullmatch(key):
        raise ValueError(f'{item!r}: {key!r} is not a config key (dotted names, e.g. '
                         'model.generator.z_dim)')
    return key, DictAction._parse_iterable(value)


# --------------------------------------------------------------------------- packaged configs

@dataclass(frozen=True)
class PackagedConfig:
    """One config shipped by an installed plugin."""

    name: str      # path in the config folder without '.py', e.g. 'stylegan2ada_cifar10'
    package: str   # top-level package, e.g. 'genforce_stylegan2ada'
    plugin: str    # plugin (entry-point) name, e.g. 'stylegan2ada'
    path: Path

    @property
    def reference(self) -> str:
        """The ``PACKAGE::PATH`` form, e.g. ``genforce_stylegan2ada::stylegan2ada_cifar10.py``."""
        return f'{self.package}{SEPARATOR}{self.name}.py'

    def as_dict(self) -> dict[str, str]:
        return dict(name=self.name, plugin=self.plugin, package=self.package,
                    reference=self.reference, path=str(self.path))


@dataclass(frozen=True)
class _ConfigFolder:
    package: str
    plugin: str
    path: Path


def config_dirs() -> list[_ConfigFolder]:
    """The core's config folder, then those of every loaded plugin (hook
    ``genforce_config_dirs``). A plugin whose hook fails is reported and left out."""
    from .plugins import load_plugins

    manager = load_plugins()
    folders = [_ConfigFolder(CORE_PACKAGE, 'genforce-core', CORE_CONFIG_DIR)]
    for impl in manager.pm.hook.genforce_config_dirs.get_hookimpls():
        package = getattr(impl.plugin, '__name__', impl.plugin_name).split('.')[0]
        try:
            result = impl.function()
            # one folder instead of a list must not be read as a list of characters ('/')
            dirs = [Path(d) for d in ([result] if isinstance(result, (str, os.PathLike))
                                      else result or [])]
        except Exception as exc:  # a broken plugin must not break every command
            manager._hook_failed(impl.plugin_name, f'its config folders are unknown: '
                                                   f'{type(exc).__name__}: {exc}')
            continue
        folders.extend(_ConfigFolder(package, impl.plugin_name, d) for d in dirs if d.is_dir())
    return folders


def packaged_configs() -> list[PackagedConfig]:
    """Every runnable config of the installed plugins (files under ``_base_`` are parts to
    inherit, not listed), sorted by plugin and name."""
    found = []
    for folder in config_dirs():
        for path in sorted(folder.path.rglob('*.py')):
            relative = path.relative_to(folder.path)
            if BASE_FOLDER in relative.parts or relative.name.startswith('_'):
                continue
            found.append(PackagedConfig(relative.with_suffix('').as_posix(), folder.package,
                                        folder.plugin, path))
    return sorted(found, key=lambda c: (c.plugin, c.name))


def resolve_config(reference: str | os.PathLike) -> str:
    """The file a config reference names: an existing file as given, ``PACKAGE::PATH``, or a
    packaged config name (``genforce configs``). Raises a one-line :class:`ConfigError`."""
    reference = os.fspath(reference)
    if osp.isfile(reference):
        return reference
    if osp.isdir(reference):
        raise ConfigError(f'config file {reference} does not exist (it is a directory)')
    if SEPARATOR in reference:
        return str(_resolve_package_reference(reference))
    return str(_resolve_name(reference))


def _resolve_name(reference: str) -> Path:
    configs = packaged_configs()
    name = reference[:-3] if reference.endswith('.py') else reference
    matches = [c for c in configs if c.name == name]
    if len(matches) == 1:
        return matches[0].path
    if matches:
        raise ConfigError(f'config name {reference!r} is shipped by several plugins; name one: '
                          f'{", ".join(c.reference for c in matches)}')
    looks_like_path = os.sep in reference or '/' in reference or reference.endswith('.py')
    stem = Path(name).name
    close = difflib.get_close_matches(stem, [c.name for c in configs], n=1, cutoff=0.6)
    if looks_like_path:
        hint = f'; the packaged config {close[0]!r} has a similar name' if close else ''
        raise ConfigError(f'config file {reference} does not exist{hint} (`genforce configs` '
                          'lists the packaged configs)')
    hint = f' Did you mean {close[0]!r}?' if close else ''
    raise ConfigError(f'unknown config {reference!r}: neither a file nor the name of a packaged '
                      f'config.{hint} (`genforce configs` lists them)')


def _resolve_package_reference(reference: str, included_from: str | None = None) -> Path:
    """``PACKAGE::PATH`` -> the file, inside one of PACKAGE's config folders only."""
    where = f'{included_from}: _base_ ' if included_from else ''
    package, _, relative = reference.partition(SEPARATOR)
    rel = PurePosixPath(relative)
    if (not _PACKAGE.fullmatch(package) or not relative or SEPARATOR in relative
            or rel.is_absolute() or '..' in rel.parts or '\\' in relative):
        raise ConfigError(f'{where}{reference!r} is not PACKAGE::PATH with a relative PATH '
                          "inside the package's configs (e.g. "
                          "'genforce_stylegan2ada::stylegan2ada_cifar10.py')")
    if rel.suffix != '.py':
        rel = rel.with_name(rel.name + '.py')
    folders = [f for f in config_dirs() if f.package == package]
    if not folders:
        known = sorted({f.package for f in config_dirs()})
        close = difflib.get_close_matches(package, known, n=1, cutoff=0.6)
        hint = f' Did you mean {close[0]!r}?' if close else ''
        raise ConfigError(f'{where}{reference!r}: no installed genforce plugin ships configs in '
                          f'package {package!r}.{hint} (packages with configs: '
                          f'{", ".join(known)})')
    for folder in folders:
        candidate = folder.path.joinpath(*rel.parts)
        if candidate.is_file():
            return candidate
    names = [c.name for c in packaged_configs() if c.package == package]
    close = difflib.get_close_matches(rel.with_suffix('').as_posix(), names, n=1, cutoff=0.6)
    hint = f' Did you mean {package}{SEPARATOR}{close[0]}.py?' if close else ''
    raise ConfigError(f'{where}{reference!r}: package {package} has no config '
                      f'{rel.as_posix()}.{hint}')


_patch_lock = threading.RLock()


@contextlib.contextmanager
def _genforce_base_references() -> Iterator[None]:
    """While mmengine reads a config: ``_base_`` entries ``PACKAGE::PATH`` resolve to our
    packages' config folders, and relative entries next to the real file (a config reached
    through a symlink, as ``configs/*.py`` in the repository, inherits its own siblings)."""
    original = Config._get_cfg_path

    def get_cfg_path(cfg_path: str, filename: str) -> tuple[str, str | None]:
        if SEPARATOR in cfg_path:
            return str(_resolve_package_reference(cfg_path, included_from=filename)), None
        beside_real_file = osp.join(osp.dirname(osp.realpath(filename)), cfg_path)
        if osp.isfile(beside_real_file):
            return beside_real_file, None
        return original(cfg_path, filename)

    with _patch_lock:
        Config._get_cfg_path = staticmethod(get_cfg_path)
        try:
            yield
        finally:
            Config._get_cfg_path = staticmethod(original)


def load_config(path: str | os.PathLike, cfg_options: dict[str, Any] | None = None) -> Config:
    """Read an mmengine config (a file, a packaged config name or ``PACKAGE::PATH``), apply
    ``--cfg-options`` and default to the genforce scope."""
    file = resolve_config(path)
    try:
        with _genforce_base_references():
            cfg = Config.fromfile(file)
    except ConfigError:
        raise
    except Exception as exc:  # SyntaxError, NameError, a missing _base_ file, ...
        raise ConfigError(f'cannot read config {file}: {type(exc).__name__}: {exc}') from exc
    if cfg_options:
        try:
            cfg.merge_from_dict(cfg_options)
        except Exception as exc:
            raise ConfigError(f'cannot apply --cfg-options {cfg_options} to {file}: '
                              f'{exc}') from exc
    cfg.setdefault('default_scope', 'genforce')
    return cfg
