"""Entry point of the ``stylegan2`` genforce plugin (group ``genforce.plugins``).

:func:`genforce_register_modules` imports :mod:`genforce_stylegan2.networks`, which registers
``StyleGAN2Generator`` and ``StyleGAN2Discriminator``, :mod:`.model` (the ``StyleGAN2`` training
model) and :mod:`.losses` (``PathLengthPenalty``); the registrations are attributed to this
plugin.
"""
from __future__ import annotations

from genforce_core import hookimpl

GENFORCE_PLUGIN_API = '1.0'


@hookimpl
def genforce_register_modules() -> None:
    """Import the plugin's modules; their registrations land in the core registries."""
    from . import losses, model, networks  # noqa: F401


@hookimpl
def genforce_op_status() -> dict[str, str]:
    """Which path each custom op takes: 'cuda', 'reference (<why>)' or 'not built yet'.

    Cheap: reads what the ops helper recorded, never compiles.
    """
    from .ops import bias_act_cuda, upfirdn2d_cuda

    return {'upfirdn2d': upfirdn2d_cuda.status(), 'bias_act': bias_act_cuda.status()}
