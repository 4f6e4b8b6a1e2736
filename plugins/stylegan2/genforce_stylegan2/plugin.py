"""Entry point of the ``stylegan2`` genforce plugin (group ``genforce.plugins``).

:func:`genforce_register_modules` imports :mod:`genforce_stylegan2.networks`, which registers
``StyleGAN2Generator`` and ``StyleGAN2Discriminator``, :mod:`.model` (the ``StyleGAN2`` training
model) and :mod:`.losses` (``PathLengthPenalty``); the registrations are attributed to this
plugin.
"""
from __future__ import annotations

from typing import Any

from genforce_core.api import hookimpl

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


@hookimpl
def genforce_test_models() -> list[dict[str, Any]]:
    """Tiny models for the core's contract suite (``genforce_core.testing``)."""
    nets = dict(c_dim=0, img_resolution=16, img_channels=3)
    return [dict(name='stylegan2_tiny', model=dict(
        type='StyleGAN2',
        generator=dict(type='StyleGAN2Generator', z_dim=16, w_dim=16,
                       mapping_kwargs=dict(num_layers=2),
                       synthesis_kwargs=dict(channel_base=256, channel_max=16, num_fp16_res=0),
                       **nets),
        discriminator=dict(type='StyleGAN2Discriminator', channel_base=256, channel_max=16,
                           num_fp16_res=0, **nets),
        d_reg=dict(type='R1Penalty', gamma=1, interval=4),
        g_reg=dict(type='PathLengthPenalty', interval=4), ema=dict(half_life_kimg=0.01)))]


@hookimpl
def genforce_config_dirs() -> list[str]:
    """The configs shipped in this package (``genforce configs`` lists them)."""
    import os.path as osp

    return [osp.join(osp.dirname(__file__), 'configs')]
