"""Entry point of the ``stylegan3`` genforce plugin (group ``genforce.plugins``).

Work in progress. :func:`genforce_register_modules` imports :mod:`genforce_stylegan3.networks`,
which registers ``StyleGAN3Generator`` (it reproduces the official T and R generators), and
:mod:`.model`, the ``StyleGAN3`` training model (StyleGAN2 training with StyleGAN3's EMA rule;
with the blur of the discriminator's inputs at the start) and ``StyleGAN3ADA`` (with the
StyleGAN2-ADA plugin's augmentation). The discriminator is the StyleGAN2 plugin's
``StyleGAN2Discriminator``. The configs (``stylegan3t_*``, ``stylegan3r_*``) ship in
``configs/``.
"""
from __future__ import annotations

from typing import Any

from genforce_core.api import hookimpl

GENFORCE_PLUGIN_API = '1.0'


@hookimpl
def genforce_register_modules() -> None:
    """Import the plugin's modules; their registrations land in the core registries."""
    from . import model, networks  # noqa: F401


@hookimpl
def genforce_config_dirs() -> list[str]:
    """The configs shipped in this package (``genforce configs`` lists them)."""
    import os.path as osp

    return [osp.join(osp.dirname(__file__), 'configs')]


@hookimpl
def genforce_op_status() -> dict[str, str]:
    """Which path ``filtered_lrelu`` takes on CUDA tensors; cheap, never compiles."""
    from .ops import filtered_lrelu_cuda

    return {'filtered_lrelu': filtered_lrelu_cuda.status()}


@hookimpl
def genforce_test_models() -> list[dict[str, Any]]:
    """Tiny models for the core's contract suite (``genforce_core.testing``): T and R, and an
    R with augmentation and the blur of D's inputs (``StyleGAN3ADA``)."""
    nets = dict(c_dim=0, img_resolution=16, img_channels=3)
    models = [dict(name=f'stylegan3{cfg}_tiny', model=dict(
        type='StyleGAN3',
        generator=dict(type='StyleGAN3Generator', z_dim=16, w_dim=16,
                       mapping_kwargs=dict(num_layers=2), channel_base=128, channel_max=8,
                       num_layers=4, num_critical=1, margin_size=2, conv_kernel=kernel,
                       use_radial_filters=radial, **nets),
        discriminator=dict(type='StyleGAN2Discriminator', channel_base=256, channel_max=16,
                           num_fp16_res=0, **nets),
        d_reg=dict(type='R1Penalty', gamma=1, interval=4), ema=dict(half_life_kimg=0.01)))
        for cfg, kernel, radial in (('t', 3, False), ('r', 1, True))]
    ada = dict(models[1]['model'], type='StyleGAN3ADA', blur_init_sigma=2.0, blur_fade_kimg=1.0,
               augment=dict(type='AugmentPipe', preset='bgc', p=0.5), ada_interval=1)
    return [*models, dict(name='stylegan3r_ada_tiny', model=ada)]
