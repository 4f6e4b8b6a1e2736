"""Plugin discovery: entry points of the ``genforce.plugins`` group, loaded once per process.

Policy: a plugin that fails to import or declares an incompatible plugin API is
reported with one warning and skipped; ``GENFORCE_STRICT_PLUGINS=1`` turns that into an error;
``GENFORCE_DISABLE_PLUGINS=a,b`` skips plugins by entry-point or distribution name.

Name squatting. Installing a package must never silently replace a plugin:

* Two distributions declaring one entry-point name: the *canonical* distribution of plugin
  ``NAME``, ``genforce-plugin-NAME`` (``_`` and ``-`` alike), is kept and the others are not
  imported at all. When none of the claimants is canonical nothing is imported under that name
  (we cannot tell the real one from the squatter); disabling one of them by distribution name
  keeps the other. Either way a warning names every distribution involved.
* Two plugins registering one key (``StyleGAN2Generator`` in MODELS): the plugin loaded first
  keeps the key; the second fails, everything it registered is rolled back and a warning names
  both plugins and the key. The first-party plugins (:data:`FIRST_PARTY_PLUGINS`, from their
  canonical distributions) load before all others, then the rest by name, so a third-party
  plugin can never take a key of a first-party one. The core registers its own keys on import,
  before any plugin.
* A plugin adding a ``genforce`` subcommand that already exists is refused with a warning.

Every such refusal is an error under ``GENFORCE_STRICT_PLUGINS=1``.
"""
from __future__ import annotations

import importlib.metadata as importlib_metadata
import inspect
import os
import re
import threading
import traceback
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from types import ModuleType, SimpleNamespace
from typing import Any

import pluggy

from . import hookspecs
from .errors import GenforceError
from .hookspecs import PLUGIN_API_VERSION, PROJECT_NAME
from .registry import ALL_REGISTRIES, registering_as, set_plugin_summary

ENTRY_POINT_GROUP = 'genforce.plugins'
API_ATTRIBUTE = 'GENFORCE_PLUGIN_API'
# The plugins published with genforce-core (plugins/ in its repository), each from its
# canonical distribution genforce-plugin-NAME. They load first, in this order.
FIRST_PARTY_PLUGINS = ('converters', 'inversion', 'metrics_fid', 'pggan', 'stylegan',
                       'stylegan2', 'stylegan2ada')


class PluginError(GenforceError, RuntimeError):
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
    status: str = 'loaded'  # loaded | failed | incompatible | disabled | conflict
    error: str | None = None
    api_version: str | None = None
    registered: dict[str, list[str]] = field(default_factory=dict)
    ops: dict[str, str] = field(default_factory=dict)
    traceback: str | None = None
    # Other distributions that declare the same plugin name ("name version"); never imported.
    rivals: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @property
    def label(self) -> str:
        return f'{self.distribution} {self.version}'


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
        to_load = []
        for name, claims in _claims_by_name(
                importlib_metadata.entry_points(group=ENTRY_POINT_GROUP)).items():
            active = [(info, ep) for info, ep in claims if info.distribution not in disabled]
            if name in disabled or not active:
                claims[0][0].status = 'disabled'
                self.plugins[name] = claims[0][0]
                continue
            kept = self._settle_claim(name, active, strict)
            if kept is not None:
                to_load.append(kept)
        for info, ep in sorted(to_load, key=lambda claim: _load_order(claim[0])):
            self.register(info.name, ep.load, info, strict)

    def _settle_claim(self, name: str, claims: list[tuple[PluginInfo, Any]],
                      strict: bool) -> tuple[PluginInfo, Any] | None:
        """Record which of the distributions declaring plugin ``name`` owns it and return its
        (info, entry point), or None when none may be loaded. The others are never imported."""
        infos = [info for info, _ in claims]
        if len(claims) == 1:
            self.plugins[name] = infos[0]
            return claims[0]
        owner = next((claim for claim in claims
                      if _normalize(claim[0].distribution) == canonical_distribution(name)), None)
        if owner is None:
            info = infos[0]
            info.rivals = [other.label for other in infos[1:]]
            info.status = 'conflict'
            info.error = (f'the plugin name {name!r} is declared by the distributions '
                          f'{", ".join(i.label for i in infos)} and none of them is '
                          f'{canonical_distribution(name)}, so none was imported; uninstall '
                          'the one you do not trust or name it in GENFORCE_DISABLE_PLUGINS')
            self.plugins[name] = info
            self._report(info, strict)
            return None
        kept = owner[0]
        self.plugins[name] = kept
        for squatter in infos:
            if squatter is kept:
                continue
            kept.rivals.append(squatter.label)
            squatter.status = 'failed'
            squatter.error = (f'the plugin name {name!r} belongs to {kept.label} (its canonical '
                              f'distribution), so {squatter.distribution} was not imported; '
                              f'uninstall {squatter.distribution} unless you trust it')
            self._report(squatter, strict)
        return owner

    def register(self, name: str, load, info: PluginInfo, strict: bool = False) -> None:
        """Import a plugin (``load()`` returns its module), check its API, run its hook.

        Whatever goes wrong (import error, incompatible API, a key another plugin registered
        already), the plugin is skipped and everything it registered is taken back."""
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
        except Exception as exc:  # a broken plugin must not take the others down
            if self.pm.get_plugin(name) is not None:
                self.pm.unregister(name=name)
            _unregister(_registry_diff(before, _registry_snapshot()))
            if not isinstance(exc, _Skip):
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

    def _report(self, info: PluginInfo, strict: bool, what: str = 'was skipped') -> None:
        message = (f"genforce plugin '{info.name}' from distribution {info.label} "
                   f'{what}: {info.error}')
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
        """The entries of every plugin; a plugin whose hook fails is reported and left out."""
        entries: list[dict[str, Any]] = []
        for impl in reversed(self.pm.hook.genforce_model_zoo.get_hookimpls()):
            try:
                result = list(_call_impl(impl) or [])
            except Exception as exc:
                self._hook_failed(impl.plugin_name, f'its model zoo failed: '
                                                    f'{type(exc).__name__}: {exc}')
                continue
            entries.extend(result)
        return entries

    def add_cli_commands(self, subparsers) -> None:
        """Let each plugin add subcommands; one that fails or would replace an existing
        command is reported and its command left out."""
        owners = {command: 'genforce-core' for command in subparsers.choices}
        for impl in reversed(self.pm.hook.genforce_add_cli_commands.get_hookimpls()):
            guarded = _NoReplacing(subparsers, owners, impl.plugin_name)
            try:
                _call_impl(impl, subparsers=guarded)
            except Exception as exc:
                self._hook_failed(impl.plugin_name, f'its commands were not added: '
                                                    f'{type(exc).__name__}: {exc}')

    def _hook_failed(self, name: str, error: str) -> None:
        info = self.plugins.get(name) or PluginInfo(name, '?', '?', '?')
        info.error = error
        self._report(info, _env_flag('GENFORCE_STRICT_PLUGINS'), what='misbehaved')


class _NoReplacing:
    """The ``subparsers`` a plugin sees: it may add commands, never replace one (argparse
    before Python 3.11 replaces a command of the same name silently)."""

    def __init__(self, subparsers, owners: dict[str, str], plugin: str) -> None:
        self._subparsers, self._owners, self._plugin = subparsers, owners, plugin

    def add_parser(self, name: str, **kwargs):
        for command in [name, *kwargs.get('aliases', ())]:
            if command in self._subparsers.choices:
                raise PluginError(f'the command {command!r} is already provided by '
                                  f'{self._owners.get(command, "another plugin")}')
        parser = self._subparsers.add_parser(name, **kwargs)
        for command in [name, *kwargs.get('aliases', ())]:
            self._owners[command] = self._plugin
        return parser

    def __getattr__(self, attribute: str):
        return getattr(self._subparsers, attribute)


def canonical_distribution(plugin: str) -> str:
    """The distribution that owns plugin name ``plugin``: ``genforce-plugin-NAME``."""
    return _normalize(f'genforce-plugin-{plugin}')


def _normalize(distribution: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r'[-_.]+', '-', distribution).lower()


def _claims_by_name(entry_points) -> dict[str, list[tuple[PluginInfo, Any]]]:
    """The entry points grouped by plugin name, each as (info, entry point); names and the
    claimants of one name sorted, so that the outcome never depends on ``sys.path`` order."""
    claims: dict[str, list[tuple[PluginInfo, Any]]] = defaultdict(list)
    for ep in entry_points:
        dist = ep.dist
        info = PluginInfo(name=ep.name,
                          distribution=dist.metadata['Name'] if dist else '?',
                          version=dist.version if dist else '?',
                          module=ep.value)
        claims[ep.name].append((info, ep))
    return {name: sorted(claims[name], key=lambda c: _normalize(c[0].distribution))
            for name in sorted(claims)}


def _load_order(info: PluginInfo) -> tuple[int, int, str]:
    """First-party plugins (from their canonical distributions) first, then the rest by name."""
    if (info.name in FIRST_PARTY_PLUGINS
            and _normalize(info.distribution) == canonical_distribution(info.name)):
        return (0, FIRST_PARTY_PLUGINS.index(info.name), '')
    return (1, 0, info.name)


class _Skip(Exception):
    pass


def _call_impl(impl: pluggy.HookImpl, **kwargs) -> Any:
    """Call one plugin's implementation of a hook, as pluggy would."""
    return impl.function(*(kwargs[arg] for arg in impl.argnames))


def _call_one(pm: pluggy.PluginManager, module: ModuleType, hook: str, **kwargs) -> None:
    """Call one plugin's implementation of a hook (registration happens per plugin, so that
    everything it registers is attributed to it). As pluggy does, the implementation gets only
    the arguments it names: it may leave out those it does not use."""
    impl = getattr(module, hook, None)
    if impl is not None and pm.parse_hookimpl_opts(module, hook) is not None:
        wanted = inspect.signature(impl).parameters
        impl(**{key: value for key, value in kwargs.items() if key in wanted})


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


set_plugin_summary(plugin_summary)
