"""Registries of the ``genforce`` scope.

Every plugin registers into these children of mmengine's root registries, so configs name
modules without prefixes (``type='StyleGAN2Generator'``) and sibling plugins see each other.
The registry remembers which plugin registered each key: two plugins claiming the same key is
an error naming both (``force=True`` only lets an owner replace its own key, never another
plugin's or the core's), and an unknown key is an error listing close matches and the plugins.
"""
from __future__ import annotations

import contextvars
import difflib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import Registry

from .errors import GenforceError

SCOPE = 'genforce'
CORE_OWNER = 'genforce-core'

# The plugin whose code is running now (set by the plugin manager while it imports and
# registers a plugin); modules registered outside any plugin belong to the core or the user.
_current_owner: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    'genforce_registry_owner', default=None)


class RegistrationConflict(GenforceError, KeyError):
    """Two plugins registered the same key in one registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class UnknownModuleError(KeyError):
    """A config names a ``type`` that no installed plugin registered."""

    def __str__(self) -> str:
        return str(self.args[0])


def _no_plugins_loaded() -> str:
    return '(none found in entry-point group genforce.plugins)'


# The plugin manager imports this module and installs its summary here
# (:func:`set_plugin_summary`), so that the registry never imports the plugin manager.
_plugin_summary: Callable[[], str] = _no_plugins_loaded


def set_plugin_summary(summary: Callable[[], str]) -> None:
    """Name the function that describes the installed plugins in the error for an unknown
    key (called once by :mod:`genforce_core.plugins`)."""
    global _plugin_summary
    _plugin_summary = summary


@contextmanager
def registering_as(owner: str) -> Iterator[None]:
    """Attribute every registration inside the block to ``owner`` (a plugin name)."""
    token = _current_owner.set(owner)
    try:
        yield
    finally:
        _current_owner.reset(token)


class GenforceRegistry(Registry):
    """An mmengine registry that knows who registered each key and explains lookup misses."""

    def __init__(self, name: str, parent: Registry | None = None):
        super().__init__(name, parent=parent, scope=SCOPE)
        self.owners: dict[str, str] = {}

    def _register_module(self, module, module_name=None, force=False) -> None:
        owner = _current_owner.get() or CORE_OWNER
        names = module_name or module.__name__
        names = [names] if isinstance(names, str) else list(names)
        for name in names:
            previous = self.owners.get(name)
            replaces_another = previous is not None and (not force or previous != owner)
            if name in self._module_dict and replaces_another:
                existing = self._module_dict[name]
                raise RegistrationConflict(
                    f"'{name}' is registered twice in the genforce {self.name} registry: "
                    f'by {previous} ({existing.__module__}.{existing.__qualname__}) and by '
                    f'{owner} ({module.__module__}.{getattr(module, "__qualname__", module)}). '
                    'Uninstall one of the two plugins or disable it with '
                    'GENFORCE_DISABLE_PLUGINS.')
        super()._register_module(module, names, force=force)
        for name in names:
            self.owners[name] = owner

    def get(self, key: str):
        obj = super().get(key)
        if obj is None and _explain_misses.get():
            raise UnknownModuleError(self.describe_miss(key))
        return obj

    def describe_miss(self, key: str) -> str:
        """The error text for an unknown ``key``: close matches and the installed plugins."""
        inherited = self.parent._module_dict if self.parent is not None else {}
        known = sorted(set(self._module_dict) | set(inherited))
        close = difflib.get_close_matches(key, known, n=5, cutoff=0.5)
        lines = [f"Unknown type '{key}' in the genforce {self.name} registry."]
        if close:
            lines.append('Did you mean: ' + ', '.join(close) + '?')
        lines.append(f'Registered {self.name} types: ' + (', '.join(sorted(self._module_dict))
                                                          or '(none)'))
        lines.append('Installed plugins: ' + _plugin_summary())
        lines.append('Install the plugin that provides it, or run `genforce plugins` to see '
                     'what each plugin registers and why a plugin was skipped.')
        return '\n'.join(lines)


# While building from a config, a miss becomes an explanatory error instead of mmengine's
# generic KeyError; `Registry.get` keeps returning None for everyone else (e.g. `in` checks).
_explain_misses: contextvars.ContextVar[bool] = contextvars.ContextVar(
    'genforce_explain_misses', default=False)


@contextmanager
def explaining_misses() -> Iterator[None]:
    """Inside the block, a registry lookup of an unknown key raises
    :class:`UnknownModuleError` listing close matches and the installed plugins (instead of
    mmengine's generic ``KeyError``); build configs inside it."""
    token = _explain_misses.set(True)
    try:
        yield
    finally:
        _explain_misses.reset(token)


MODELS = GenforceRegistry('model', parent=MMENGINE_MODELS)
# Losses and converters have no mmengine counterpart. They are roots of their own: mmengine
# resolves a scope by searching the root's children, so two `genforce` children of one root
# would shadow each other.
LOSSES = GenforceRegistry('loss')
RUNNERS = GenforceRegistry('runner', parent=MMENGINE_RUNNERS)
HOOKS = GenforceRegistry('hook', parent=MMENGINE_HOOKS)
DATASETS = GenforceRegistry('dataset', parent=MMENGINE_DATASETS)
METRICS = GenforceRegistry('metric', parent=MMENGINE_METRICS)
CONVERTERS = GenforceRegistry('converter')
# Beyond the seven above: the runner builds samplers, loops, model wrappers and optimizer
# constructors from these mmengine registries, and the core ships its own of each (resumable
# sampler, kimg-based GAN loop, gradient-syncing GAN wrapper, lazy-regularization Adam).
LOOPS = GenforceRegistry('loop', parent=MMENGINE_LOOPS)
MODEL_WRAPPERS = GenforceRegistry('model_wrapper', parent=MMENGINE_MODEL_WRAPPERS)
DATA_SAMPLERS = GenforceRegistry('data sampler', parent=MMENGINE_DATA_SAMPLERS)
OPTIM_WRAPPER_CONSTRUCTORS = GenforceRegistry('optimizer wrapper constructor',
                                              parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS)


def _scope_children_for_the_rest() -> None:
    """Give every other mmengine root registry an empty ``genforce`` child: mmengine resolves
    ``default_scope`` in each registry it builds from (optimizers, visualizers, collate
    functions, ...) and warns when the scope has no child there."""
    import mmengine.registry as mmengine_registry

    for name in dir(mmengine_registry):
        root = getattr(mmengine_registry, name)
        if isinstance(root, Registry) and root.parent is None and SCOPE not in root.children:
            Registry(root.name, parent=root, scope=SCOPE)


_scope_children_for_the_rest()

ALL_REGISTRIES: dict[str, GenforceRegistry] = {
    'models': MODELS,
    'losses': LOSSES,
    'runners': RUNNERS,
    'hooks': HOOKS,
    'datasets': DATASETS,
    'metrics': METRICS,
    'converters': CONVERTERS,
    'loops': LOOPS,
    'model_wrappers': MODEL_WRAPPERS,
    'data_samplers': DATA_SAMPLERS,
    'optim_wrapper_constructors': OPTIM_WRAPPER_CONSTRUCTORS,
}
