"""Entry point of the ``stylegan2ada`` genforce plugin (group ``genforce.plugins``).

:func:`genforce_register_modules` imports :mod:`genforce_stylegan2ada.augment` (registers
``AugmentPipe`` in MODELS) and :mod:`.model` (the ``StyleGAN2ADA`` training model); the
registrations are attributed to this plugin.
"""
from __future__ import annotations

from typing import Any

from genforce_core.api import hookimpl

GENFORCE_PLUGIN_API = '1.0'


@hookimpl
def genforce_register_modules() -> None:
    """Import the plugin's modules; their registrations land in the core registries."""
    from . import augment, model  # noqa: F401


@hookimpl
def genforce_test_models() -> list[dict[str, Any]]:
    """A tiny conditional model for the core's contract suite (``genforce_core.testing``):
    the StyleGAN2 networks trained with augmentation."""
    nets = dict(c_dim=3, img_resolution=16, img_channels=3)
    return [dict(name='stylegan2ada_tiny_conditional', model=dict(
        type='StyleGAN2ADA',
        generator=dict(type='StyleGAN2Generator', z_dim=16, w_dim=16,
                       mapping_kwargs=dict(num_layers=2),
                       synthesis_kwargs=dict(channel_base=256, channel_max=16, num_fp16_res=0),
                       **nets),
        discriminator=dict(type='StyleGAN2Discriminator', channel_base=256, channel_max=16,
                           num_fp16_res=0, **nets),
        augment=dict(type='AugmentPipe', preset='bgc', p=0.5), ada_interval=1,
        d_reg=dict(type='R1Penalty', gamma=1, interval=4), ema=dict(half_life_kimg=0.01)))]


@hookimpl
def genforce_config_dirs() -> list[str]:
    """The configs shipped in this package (``genforce configs`` lists them)."""
    import os.path as osp

    return [osp.join(osp.dirname(__file__), 'configs')]
