"""Entry point of the ``stylegan`` genforce plugin (group ``genforce.plugins``).

:func:`genforce_register_modules` imports :mod:`genforce_stylegan.networks`
(``StyleGANGenerator``, ``StyleGANDiscriminator``) and :mod:`.model` (the ``StyleGAN``
training model); progressive growing itself is the core's ``ProgressiveGrowingHook`` and
``ProgressiveDataPreprocessor``.
"""
from __future__ import annotations

from genforce_core import hookimpl

GENFORCE_PLUGIN_API = '1.0'


@hookimpl
def genforce_register_modules() -> None:
    """Import the plugin's modules; their registrations land in the core registries."""
    from . import model, networks  # noqa: F401


@hookimpl
def genforce_op_status() -> dict[str, str]:
    """Which path the blur takes on CUDA tensors; cheap, never compiles."""
    from .ops import blur2d_cuda

    return {'blur2d': blur2d_cuda.status()}
