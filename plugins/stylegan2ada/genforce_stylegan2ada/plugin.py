"""Entry point of the ``stylegan2ada`` genforce plugin (group ``genforce.plugins``).

:func:`genforce_register_modules` imports :mod:`genforce_stylegan2ada.augment` (registers
``AugmentPipe`` in MODELS) and :mod:`.model` (the ``StyleGAN2ADA`` training model); the
registrations are attributed to this plugin.
"""
from __future__ import annotations

from genforce_core import hookimpl

GENFORCE_PLUGIN_API = '1.0'


@hookimpl
def genforce_register_modules() -> None:
    """Import the plugin's modules; their registrations land in the core registries."""
    from . import augment, model  # noqa: F401


@hookimpl
def genforce_op_status() -> dict[str, str]:
    """The plugin has no compiled ops: grid sampling wraps PyTorch's own kernels."""
    return {}
