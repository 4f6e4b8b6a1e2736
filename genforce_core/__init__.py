"""genforce-core: registries, plugin discovery and the GAN training engine of genforce."""
# ruff: noqa: I001  (order matters: mmengine work-arounds first, then the registries)
from . import compat as _compat  # noqa: F401
from .hookspecs import PLUGIN_API_VERSION, hookimpl
from .plugins import PluginManager, load_plugins
from .registry import (CONVERTERS, DATA_SAMPLERS, DATASETS, HOOKS, LOOPS, LOSSES, METRICS,
                       MODEL_WRAPPERS, MODELS, OPTIM_WRAPPER_CONSTRUCTORS, RUNNERS)

# Importing these registers the core's own modules (GAN, losses, runner, loop, datasets, ...).
from . import checkpoint, data, hooks, models  # noqa: F401
from .engine import distributed, loop, optim, runner  # noqa: F401
from .inference import load_generator

__version__ = '0.1.0'

__all__ = [
    '__version__', 'PLUGIN_API_VERSION', 'hookimpl', 'load_plugins', 'PluginManager',
    'load_generator',
    'MODELS', 'LOSSES', 'RUNNERS', 'HOOKS', 'DATASETS', 'METRICS', 'CONVERTERS', 'LOOPS',
    'MODEL_WRAPPERS', 'DATA_SAMPLERS', 'OPTIM_WRAPPER_CONSTRUCTORS',
]
