"""Plugin discovery: entry points of the ``genforce.plugins`` group, loaded once per process.

Policy (see DESIGN.md): a plugin that fails to import or declares an incompatible plugin API is
reported with one warning and skipped; ``GENFORCE_STRICT_PLUGINS=1`` turns that into an error;
``GENFORCE_DISABLE_PLUGINS=a,b`` skips plugins by entry-point name. Two plugins registering the
same key are always an error naming both.
"""
from __future__ import annotations

import importlib.metadata as importlib_metadata
import os
import threading
import traceback
import warnings
from dataclasses import dataclass, field
from types import ModuleType, SimpleNamespace
from typing import Any

import pluggy

from . import hookspecs
from .hookspecs import PLUGIN_API_VERSION, PROJECT_NAME
from .registry import ALL_REGISTRIES, RegistrationConflict, registering_as

ENTRY_POINT_GROUP = 'genforce.plugins'
API_ATTRIBUTE = 'GENFORCE_PLUGIN_API'


class PluginError(RuntimeError):
    """A plugin could not be loaded and strict mode is on."""


class PluginWarning(UserWarning):
    """A plugin was skipped."""


@dataclass
class PluginInfo:
    """What is known about one entry point of the ``genforce.plugins`` group."""

    name: str
    distribution: str
    version: str
    module: str
    status: str = 'loaded'  # loaded | failed | incompatible | disabled
    error: str | None = None
    api_version: str | None = None
    registered: dict[str, list[str]] = field(default_factory=dict)
    ops: dict[str, str] = field(default_factory=dict)
    traceback: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class PluginManager:
    """Discovers, checks and registers plugins; a process has one (see :func:`load_plugins`)."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}

    # -- discovery -------------------------------------------------------------------------
    def load_entry_points(self, strict: bool | None = None,
                          disabled: set[str] | None = None) -> None:
        strict = _env_flag('GENFORCE_STRICT_PLUGINS') if strict is None else strict
        disabled = _env_list('GENFORCE_DISABLE_PLUGINS') if disabled is None else disabled
        for ep in sorted(importlib_metadata.entry_points(group=ENTRY_POINT_GROUP),
                         key=lambda ep: ep.name):
            dist = ep.dist
            info = PluginInfo(name=ep.name,
                              distribution=dist.metadata['Name'] if dist else '?',
                              version=dist.version if dist else '?',
                              module=ep.value)
            if ep.name in self.plugins:
                # Two distributions claim one plugin name: keep the first, say so.
                other = self.plugins[ep.name]
                info.status, info.error = 'failed', (
                    f'plugin name {ep.name!r} is also provided by {other.distribution}')
                self._report(info, strict)
                continue
            self.plugins[ep.name] = info
            if ep.name in disabled or info.distribution in disabled:
                info.status = 'disabled'
                continue
            self.register(ep.name, lambda ep=ep: ep.load(), info, strict)

    def register(self, name: str, load, info: PluginInfo, strict: bool = False) -> None:
        """Import a plugin (``load()`` returns its module), check its API, run its hook."""
        before = _registry_snapshot()
        try:
            with registering_as(f'{name} ({info.distribution})'):
                module = load()
                self._check_api(module, info)
                if info.status != 'loaded':
                    raise _Skip()
                self.pm.register(module, name=name)
                _call_one(self.pm, module, 'genforce_register_modules',
                          registries=SimpleNamespace(**ALL_REGISTRIES))
        except RegistrationConflict:
            raise
        except _Skip:
            self._report(info, strict)
            return
        except Exception as exc:  # a broken plugin must not take the others down
            if self.pm.get_plugin(name) is not None:
                self.pm.unregister(name=name)
            _unregister(_registry_diff(before, _registry_snapshot()))
            info.status = 'failed'
            info.error = f'{type(exc).__name__}: {exc}'
            info.traceback = traceback.format_exc(limit=-3)
            self._report(info, strict)
            return
        info.registered = _registry_diff(before, _registry_snapshot())

    def _check_api(self, module: ModuleType, info: PluginInfo) -> None:
        declared = getattr(module, API_ATTRIBUTE, None)
        info.api_version = None if declared is None else str(declared)
        if declared is None:
            info.status = 'incompatible'
            info.error = (f'module {module.__name__} does not declare {API_ATTRIBUTE} '
                          f'(this core speaks plugin API {PLUGIN_API_VERSION})')
        elif not api_compatible(str(declared), PLUGIN_API_VERSION):
            info.status = 'incompatible'
            info.error = (f'it needs plugin API {declared}, this genforce-core speaks '
                          f'{PLUGIN_API_VERSION}; install matching versions')

    def _report(self, info: PluginInfo, strict: bool) -> None:
        message = (f"genforce plugin '{info.name}' from distribution {info.distribution} "
                   f'{info.version} was skipped: {info.error}')
        if strict:
            raise PluginError(message + ' (GENFORCE_STRICT_PLUGINS=1)')
        warnings.warn(message + '. Set GENFORCE_STRICT_PLUGINS=1 to make this an error.',
                      PluginWarning, stacklevel=3)

    # -- queries ---------------------------------------------------------------------------
    def collect_op_status(self) -> None:
        for name, info in self.plugins.items():
            module = self.pm.get_plugin(name)
            if module is not None and hasattr(module, 'genforce_op_status'):
                try:
                    info.ops = dict(module.genforce_op_status() or {})
                except Exception as exc:  # report, never crash a listing
                    info.ops = {'<error>': f'{type(exc).__name__}: {exc}'}

    def model_zoo(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        for result in self.pm.hook.genforce_model_zoo():
            entries.extend(result or [])
        return entries

    def add_cli_commands(self, subparsers) -> None:
        self.pm.hook.genforce_add_cli_commands(subparsers=subparsers)


class _Skip(Exception):
    pass


def _call_one(pm: pluggy.PluginManager, module: ModuleType, hook: str, **kwargs) -> None:
    """Call one plugin's implementation of a hook (registration happens per plugin, so that
    everything it registers is attributed to it)."""
    impl = getattr(module, hook, None)
    if impl is not None and pm.parse_hookimpl_opts(module, hook) is not None:
        impl(**kwargs)


def api_compatible(declared: str, core: str) -> bool:
    """Same major version, and the plugin needs no newer minor than the core offers."""
    try:
        d_major, d_minor = (int(x) for x in (declared.split('.') + ['0'])[:2])
        c_major, c_minor = (int(x) for x in (core.split('.') + ['0'])[:2])
    except ValueError:
        return False
    return d_major == c_major and d_minor <= c_minor


def _registry_snapshot() -> dict[str, set[str]]:
    return {name: set(reg.module_dict) for name, reg in ALL_REGISTRIES.items()}


def _registry_diff(before: dict[str, set[str]], after: dict[str, set[str]]) -> dict[str, list[str]]:
    return {name: sorted(after[name] - before[name])
            for name in after if after[name] - before[name]}


def _unregister(keys: dict[str, list[str]]) -> None:
    """Take back what a failed plugin registered before it failed."""
    for reg_name, names in keys.items():
        registry = ALL_REGISTRIES[reg_name]
        for key in names:
            registry._module_dict.pop(key, None)
            registry.owners.pop(key, None)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, '').strip().lower() in {'1', 'true', 'yes', 'on'}


def _env_list(name: str) -> set[str]:
    return {x.strip() for x in os.environ.get(name, '').split(',') if x.strip()}


_manager: PluginManager | None = None
_lock = threading.RLock()


def load_plugins(*, reload: bool = False) -> PluginManager:
    """Discover and register all installed plugins, once per process; returns the manager."""
    global _manager
    with _lock:
        if _manager is None or reload:
            manager = PluginManager()
            _manager = manager
            manager.load_entry_points()
        return _manager


def plugin_summary() -> str:
    """One line naming the plugins and their status, for error messages."""
    if _manager is None or not _manager.plugins:
        return '(none found in entry-point group genforce.plugins)'
    return ', '.join(f'{p.name} {p.version}' + ('' if p.status == 'loaded' else f' [{p.status}]')
                     for p in _manager.plugins.values())
